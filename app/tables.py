"""The tracks table that ``astrohunter detect`` and ``search`` print.

Built from the tracks contract, so both commands show the same thing, and
narrow enough (about 75 columns) to keep every column whole in an 80-column
terminal or log.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

__all__ = ["tracks_table"]

#: Longest designation shown whole; longer ones end in an ellipsis (the JSON has them all).
OBJECT_WIDTH = 14


def _object(track: dict[str, Any]) -> str:
    return track.get("known_object") or "new"


def _neo(track: dict[str, Any]) -> str:
    score = (track.get("digest2") or {}).get("neo")
    return "-" if score is None else f"{score:.0f}"


def tracks_table(tracks: list[dict[str, Any]], *, title_suffix: str = "") -> Table:
    """One row per track: id, known object or "new", NEO score, motion, brightness, position."""
    table = Table(
        title=f"{len(tracks)} moving object(s) found{title_suffix}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 0),
    )
    for col in ("id", "object", "NEO", "obs", 'rate"/h', "PA", "mag", "SNR", "RA", "Dec"):
        table.add_column(col, justify="left" if col == "object" else "right", no_wrap=True)
    table.columns[1].max_width = OBJECT_WIDTH
    table.columns[1].overflow = "ellipsis"
    for t in tracks:
        first = t["observations"][0]
        mag = first.get("mag")
        table.add_row(
            t["id"],
            _object(t),
            _neo(t),
            str(len(t["observations"])),
            f"{t.get('rate_arcsec_per_hour', float('nan')):.2f}",
            f"{t.get('position_angle_deg', float('nan')):.1f}",
            "-" if mag is None else f"{mag:.2f}",
            f"{t.get('stacked_snr', float('nan')):.1f}",
            f"{first['ra']:.4f}",
            f"{first['dec']:+.4f}",
        )
    return table
