"""The detection chain: frames in, verified tracks out, with timings.

This is what ``astrohunter detect`` runs and what the service actors call
stage by stage; it owns no algorithm of its own, only the order of the
stages, the unit conversions between them, and the bookkeeping (seconds per
stage, peak memory, device).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from astropy.wcs.utils import proj_plane_pixel_scales

from . import __version__
from .align import align_frames
from .backend import device_name, get_xp
from .config import SearchConfig
from .detect import find_candidates
from .difference import Differences, difference_frames
from .fit import FitSettings, fit_tracks
from .link import link_candidates
from .masks import frame_masks
from .slow import find_slow_movers
from .tracks import build_track, merge_tracks
from .types import Candidates, Frame, Track

__all__ = ["Progress", "SearchResult", "find_moving_objects"]

#: ``progress(stage, done, total)``: called as each stage advances.
Progress = Callable[[str, int, int], None]


@dataclass
class SearchResult:
    """Everything a report or a picture of the search needs."""

    frames: list[Frame]
    tracks: list[Track]
    candidates: Candidates
    run: dict
    differences: Differences | None = field(default=None, repr=False)


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def find_moving_objects(
    frames: list[Frame],
    *,
    config: SearchConfig | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
    keep_differences: bool = False,
) -> SearchResult:
    """Find every moving object in a time-ordered sequence of frames of one field.

    Parameters
    ----------
    frames : list of Frame
        At least 3 frames of one field (see :func:`detectors.io.load_frames`).
    config : SearchConfig, keyword-only
    progress : callable, keyword-only
        ``progress(stage, done, total)``.
    timings : dict, keyword-only
        Seconds already spent (e.g. ``{"load": 1.2}``), carried into ``run``.
    keep_differences : bool, keyword-only
        Keep the difference images in the result (for cutouts and overlays).

    Returns
    -------
    SearchResult
        ``tracks`` is empty when nothing moves.
    """
    config = config or SearchConfig()
    xp = get_xp(device=config.device)
    timings = dict(timings or {})
    started = time.perf_counter()

    @contextmanager
    def stage(name: str):
        t = time.perf_counter()
        yield lambda done, total: progress and progress(name, done, total)
        if xp is not np:
            xp.cuda.Stream.null.synchronize()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t

    mjd = np.array([f.mjd for f in frames])
    with stage("align") as tick:
        native = []
        for f in frames:
            image = xp.asarray(f.data, dtype=xp.float32)
            sky = xp.median(image[::4, ::4][xp.isfinite(image[::4, ::4])])
            native.append(image - sky)
        aligned = align_frames(frames, frame_masks(frames, native, xp), xp, progress=tick)
        del native
    ref = frames[aligned.ref]
    with stage("difference") as tick:
        diffs = difference_frames(
            aligned.images, aligned.bad, ref=aligned.ref, gain=ref.gain, progress=tick
        )
        del aligned.images
    with stage("detect") as tick:
        cands = find_candidates(diffs, threshold=config.threshold, progress=tick)
    pixel_arcsec = float(np.mean(proj_plane_pixel_scales(aligned.wcs))) * 3600.0
    per_day = 24.0 / pixel_arcsec  # arcsec/h -> px/day
    with stage("link") as tick:
        tracklets = link_candidates(
            cands,
            mjd,
            rate_min=config.rate_min * per_day,
            rate_max=config.rate_max * per_day,
            radius=config.link_radius,
            min_detections=config.min_detections,
        )
        tick(1, 1)
    with stage("fit") as tick:
        settings = FitSettings(
            rate_min=config.rate_min * per_day,
            rate_max=config.rate_max * per_day,
            min_stacked_snr=config.min_stacked_snr,
        )
        tracks = fit_tracks(
            tracklets,
            cands,
            mjd,
            diffs,
            aligned.wcs,
            settings=settings,
            zero_point=ref.zero_point,
            progress=tick,
        )
    with stage("slow") as tick:
        for mover in find_slow_movers(
            diffs, mjd, rate_min=settings.rate_min, rate_max=settings.rate_max, progress=tick
        ):
            tracks.append(
                build_track(
                    mover["frames"],
                    mjd,
                    mover["x"],
                    mover["y"],
                    mover["err"],
                    flux=mover["flux"],
                    snr=mover["snr"],
                    stacked_snr=mover["stacked"],
                    wcs=aligned.wcs,
                    zero_point=ref.zero_point,
                    origin="slow",
                )
            )
        fwhm = 2.3548 * float(np.median(diffs.psf_sigma))
        tracks = merge_tracks(tracks, radius=2 * fwhm)
    timings["total"] = timings.get("load", 0.0) + time.perf_counter() - started
    run = {
        "version": __version__,
        "device": device_name(xp),
        "options": config.as_dict(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "peak_memory_mb": round(_peak_memory_mb(), 1),
        "reference_frame": ref.name,
        "pixel_scale_arcsec": round(pixel_arcsec, 4),
        "psf_fwhm_px": [round(2.3548 * float(s), 3) for s in diffs.psf_sigma],
        "candidates": len(cands),
        "tracklets": len(tracklets),
    }
    return SearchResult(
        frames=frames,
        tracks=tracks,
        candidates=cands,
        run=run,
        differences=diffs if keep_differences else None,
    )
