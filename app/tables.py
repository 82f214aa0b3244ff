"""The tracks table that ``astrohunter detect`` and ``search`` print.

Built from the tracks contract, so both commands show the same thing, and
narrow enough (about 70 columns) to keep every column whole in an 80-column
terminal or log.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

__all__ = ["tracks_table"]


def tracks_table(tracks: list[dict[str, Any]], *, title_suffix: str = "") -> Table:
    """One row per track: id, observations, motion, first magnitude and position, stacked SNR."""
    table = Table(
        title=f"{len(tracks)} moving object(s) found{title_suffix}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
    )
    for col in ("id", "obs", 'rate"/h', "PA", "mag", "SNR", "RA deg", "Dec deg"):
        table.add_column(col, justify="right", no_wrap=True)
    for t in tracks:
        first = t["observations"][0]
        mag = first.get("mag")
        table.add_row(
            t["id"],
            str(len(t["observations"])),
            f"{t.get('rate_arcsec_per_hour', float('nan')):.2f}",
            f"{t.get('position_angle_deg', float('nan')):.1f}",
            "-" if mag is None else f"{mag:.2f}",
            f"{t.get('stacked_snr', float('nan')):.1f}",
            f"{first['ra']:.5f}",
            f"{first['dec']:+.5f}",
        )
    return table
