"""A by-hand per-frame asteroid search, as a competent user would script it.

The yardstick for the speed of AstroHunter's per-frame path: read the
frames, resample each onto the middle frame's WCS (the full pixel grid
through astropy, bilinear ``map_coordinates``, as ``reproject_interp``
does), subtract the median of the stack, run ``sep`` on each difference,
and link detections that fall on straight lines at a constant rate. One
thread, as a script run without thought for threads is (the thread limits
are set before NumPy is imported, so BLAS and OpenMP stay on one core).

Usage::

    python benchmarks/by_hand.py FRAMES_DIR --out tracks.json

Its settings (sep at 1.5 sigma with 5 pixels, as SExtractor's defaults;
7 of 10 frames on a line within 1.5 pixels) were tuned on the speed
field to find the most objects with about one false track.

It writes ``{"tracks": [{"observations": [{"mjd", "ra", "dec"}, ...]}, ...],
"run": {"timings_s": {...}}}``, which ``detectors.score.score_field`` scores.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sep  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS, FITSFixedWarning  # noqa: E402
from astropy.wcs.utils import proj_plane_pixel_scales  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402


def load(folder: Path) -> tuple[list[np.ndarray], list[WCS], np.ndarray]:
    """Images (float32), WCS and mid-exposure MJD of every FITS file, time-ordered."""
    images, wcs, mjd = [], [], []
    for path in sorted(folder.glob("*.fits")):
        with fits.open(path) as hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            header = hdul[0].header
            images.append(hdul[0].data.astype(np.float32))
            wcs.append(WCS(header))
            mjd.append(header["MJD-OBS"] + header.get("EXPTIME", 0.0) / 2 / 86400)
    order = np.argsort(mjd)
    return [images[k] for k in order], [wcs[k] for k in order], np.asarray(mjd)[order]


def align(images: list[np.ndarray], wcs: list[WCS], ref: int) -> np.ndarray:
    """Every frame on the reference frame's pixel grid, NaN outside it."""
    h, w = images[ref].shape
    yy, xx = np.mgrid[0:h, 0:w]
    world = wcs[ref].pixel_to_world_values(xx, yy)
    out = np.empty((len(images), h, w), dtype=np.float32)
    for k, image in enumerate(images):
        if k == ref:
            out[k] = image
            continue
        sx, sy = wcs[k].world_to_pixel_values(*world)
        out[k] = ndimage.map_coordinates(image, [sy, sx], order=1, cval=np.nan)
    return out


def difference(stack: np.ndarray) -> np.ndarray:
    """Each frame minus the median of all of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        template = np.nanmedian(stack, axis=0)
    return stack - template


def detect(diffs: np.ndarray, *, threshold: float) -> list[np.ndarray]:
    """(x, y) of sep's detections on each difference, background subtracted first."""
    found = []
    sep.set_extract_pixstack(2_000_000)
    for diff in diffs:
        mask = ~np.isfinite(diff)
        data = np.ascontiguousarray(np.where(mask, 0.0, diff), dtype=np.float32)
        bkg = sep.Background(data, mask=mask)
        objs = sep.extract(data - bkg.back(), threshold, err=bkg.globalrms, mask=mask, minarea=5)
        objs = objs[objs["flag"] == 0]
        found.append(np.c_[objs["x"], objs["y"]])
    return found


def link(
    found: list[np.ndarray],
    mjd: np.ndarray,
    *,
    rate_min: float,
    rate_max: float,
    radius: float,
    min_detections: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tracks of detections on straight lines: (frame indices, (M, 2) positions) each.

    Every pair of detections half the sequence apart at a plausible rate
    predicts the object in the other frames; a line with at least
    ``min_detections`` detections within ``radius`` pixels is a track, and its
    detections are not used again.
    """
    trees = [cKDTree(xy) if len(xy) else None for xy in found]
    used = [np.zeros(len(xy), dtype=bool) for xy in found]
    step = max(1, len(found) // 2)  # pair frames far apart: the rate is then well known
    tracks = []
    for i in range(len(found) - step):
        j = i + step
        tree_j, dt = trees[j], mjd[j] - mjd[i]
        if tree_j is None:
            continue
        for a, p in enumerate(found[i]):
            if used[i][a]:
                continue
            for b in tree_j.query_ball_point(p, rate_max * dt):
                hits = _line_hits(found, trees, used, mjd, p, found[j][b], i, j, radius)
                if used[j][b] or len(hits) < min_detections:
                    continue
                if np.hypot(*(found[j][b] - p)) / dt < rate_min:
                    continue
                for k, c in hits:
                    used[k][c] = True
                frames = np.array([k for k, _ in hits])
                tracks.append((frames, np.array([found[k][c] for k, c in hits])))
                break
    return tracks


def _line_hits(found, trees, used, mjd, p, q, i, j, radius) -> list[tuple[int, int]]:
    """Unused detections within ``radius`` of the line through ``p`` (frame i) and ``q`` (j)."""
    velocity = (q - p) / (mjd[j] - mjd[i])
    hits = []
    for k, tree in enumerate(trees):
        if tree is None:
            continue
        dist, c = tree.query(p + velocity * (mjd[k] - mjd[i]))
        if dist < radius and not used[k][c]:
            hits.append((k, int(c)))
    return hits


def main(argv: list[str] | None = None) -> int:
    """Search one folder of frames; write the tracks and the seconds per stage."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("frames", type=Path, help="folder of FITS frames with WCS")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--threshold",
        type=float,
        default=1.5,
        help="sep threshold, pixel sigma (SExtractor's DETECT_THRESH)",
    )
    parser.add_argument("--rate-min", type=float, default=1.0, help="arcsec/h")
    parser.add_argument("--rate-max", type=float, default=150.0, help="arcsec/h")
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    images, wcs, mjd = load(args.frames)
    timings["load"] = time.perf_counter() - t
    ref = len(images) // 2
    scale = float(np.mean(proj_plane_pixel_scales(wcs[ref].celestial))) * 3600.0
    per_day = 24.0 / scale  # pixels per day at 1 arcsec/h
    for stage in ("align", "difference", "detect", "link"):
        t = time.perf_counter()
        if stage == "align":
            stack = align(images, wcs, ref)
        elif stage == "difference":
            diffs = difference(stack)
        elif stage == "detect":
            found = detect(diffs, threshold=args.threshold)
        else:
            tracks = link(
                found,
                mjd,
                rate_min=args.rate_min * per_day,
                rate_max=args.rate_max * per_day,
                radius=1.5,
                min_detections=max(3, math.ceil(0.7 * len(images))),
            )
        timings[stage] = time.perf_counter() - t
    timings["total"] = sum(timings.values())
    out = []
    for frames, xy in tracks:
        ra, dec = wcs[ref].pixel_to_world_values(xy[:, 0], xy[:, 1])
        out.append(
            {
                "observations": [
                    {"mjd": float(mjd[k]), "ra": float(r), "dec": float(d)}
                    for k, r, d in zip(frames, ra, dec, strict=True)
                ]
            }
        )
    args.out.write_text(json.dumps({"tracks": out, "run": {"timings_s": timings}}, indent=1))
    print(f"{len(out)} tracks; " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
