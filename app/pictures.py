"""A finished job's pictures: the review sheets drawn once, blink strips when asked for.

The detailed stage draws what the review page shows (`review_pictures`: the
field and the sheets of review stamps) and the overview with the tracks.
A track's blink strip for a picture viewer (``<track id>.png``) is the same
stamps, enlarged and labelled: the API cuts it from the sheet the first
time someone asks for it and keeps it beside the others, so a search does
not spend its time on pictures nobody opens, and the strip and the review
page show the same pixels.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from detectors import io
from detectors.cutouts import StripLabel, field_overlay, review_pictures, sprite_strip
from detectors.types import Differences, Track

__all__ = ["LAYOUT", "picture_names", "read_layout", "strip_png", "write_pictures"]

#: Where each track's stamps are on the sheets (read by the review page and here).
LAYOUT = "review.json"


def write_pictures(
    folder: Path, tracks: Sequence[Track], diffs: Differences, mjd: Sequence[float]
) -> float:
    """Write the overview, the review page's field and stamp sheets and their layout
    (`LAYOUT`); returns the seconds it took."""
    started = time.perf_counter()
    # PNG compression releases the GIL: the overview is written while the stamps are cut,
    # and the sheets two at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        written = [
            pool.submit(
                io.write_png, folder / "overview.png", field_overlay(diffs.template, tracks)
            )
        ]
        pictures, layout = review_pictures(tracks, diffs, mjd)
        written += [pool.submit(io.write_png, folder / name, rgb) for name, rgb in pictures.items()]
        for done in written:
            done.result()
    io.write_json(folder / LAYOUT, layout)
    return round(time.perf_counter() - started, 3)


def read_layout(folder: Path) -> dict[str, Any] | None:
    """Where each track's stamps are on the sheets; None for a job finished before
    review stamps were made."""
    path = folder / LAYOUT
    return json.loads(path.read_text()) if path.is_file() else None


def picture_names(folder: Path) -> list[str]:
    """The pictures a job has: those written, and a strip for every track on a sheet."""
    written = {p.name for p in folder.glob("*.png")} if folder.is_dir() else set()
    strips = {f"{track_id}.png" for track_id in (read_layout(folder) or {}).get("tracks", {})}
    return sorted(written | strips)


#: Days within which an observation's time is its frame's (the contract keeps MJD to 1e-9).
_SAME_FRAME_DAYS = 1e-5


def strip_png(folder: Path, track: Mapping[str, Any]) -> Path | None:
    """Write the blink strip of ``track`` (a record of the results contract) from its
    review sprite, and return its path; None if no sheet holds the track."""
    layout = read_layout(folder) or {}
    spot = layout.get("tracks", {}).get(track["id"])
    if spot is None:
        return None
    with Image.open(folder / spot["file"]) as sheet:
        rgb = np.asarray(sheet.convert("RGB"))
    sprite = rgb[spot["top"] : spot["top"] + spot["height"], : spot["width"]]
    mjd = np.asarray(layout["mjd"], dtype=float)
    snr: list[float | None] = [None] * mjd.size
    for obs in track["observations"]:
        i = int(np.argmin(np.abs(mjd - obs["mjd"])))
        if abs(mjd[i] - obs["mjd"]) < _SAME_FRAME_DAYS and spot["measured"][i]:
            snr[i] = math.nan if obs.get("snr") is None else float(obs["snr"])
    label = StripLabel.of(
        name=track["id"],
        rate=track["rate_arcsec_per_hour"],
        pa=track["position_angle_deg"],
        stacked_snr=track["stacked_snr"],
        origin=track.get("origin") or "",
        snr=snr,
    )
    strip = sprite_strip(sprite, spot, mjd, label)
    return io.write_png(folder / f"{track['id']}.png", strip)
