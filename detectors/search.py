"""The detection chain: frames in, verified tracks out, with timings.

This is what ``astrohunter detect`` runs and what the service actors call
stage by stage; it owns no algorithm of its own, only the order of the
stages, the unit conversions between them, and the bookkeeping (seconds per
stage, peak memory, device per stage).

The fast detector runs everything that scans pixels, on the GPU when there
is one: registration, alignment, differencing, detection, linking, the slow
movers and the shift-and-stack scan of the faint search. The detailed
detector (CPU) fits, refines and checks the candidates it was handed, and
reads the maps only near them (`detectors.handoff`).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .align import align_frames, reference_index
from .backend import device_name, get_xp, keep_freed_memory, to_numpy
from .budget import check_per_frame, fastest_useful_rate
from .config import SearchConfig
from .detect import find_candidates
from .difference import TemplateBuilder, difference_frames
from .faint import FaintSettings, kept_maps, scan_faint
from .faint_verify import refine_faint
from .fit import FitSettings, fit_tracks
from .fixed import reject_detector_fixed
from .handoff import handed_over
from .link import default_min_detections, link_candidates
from .masks import frame_masks
from .register import register_frames, star_catalogue
from .sky import sky_solution
from .slow import find_slow_movers
from .template import exclusion_templates, reference_template, same_night_info
from .tracks import build_track, merge_tracks
from .types import (
    FWHM_PER_SIGMA,
    Candidates,
    Differences,
    FastResult,
    Frame,
    Mover,
    Progress,
    SkySolution,
    Track,
)

__all__ = [
    "SearchResult",
    "detailed_detect",
    "fast_detect",
    "find_moving_objects",
    "run_info",
]


@dataclass
class SearchResult:
    """Everything a report or a picture of the search needs."""

    frames: list[Frame]
    tracks: list[Track]
    candidates: Candidates
    run: dict
    differences: Differences | None = field(default=None, repr=False)
    sky: SkySolution | None = None


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Stages:
    """Times each stage (synchronising a GPU first) and forwards its progress."""

    def __init__(
        self, xp, progress: Progress | None, timings: dict[str, float], devices: dict[str, str]
    ) -> None:
        self.xp, self.progress, self.timings, self.devices = xp, progress, timings, devices

    @contextmanager
    def __call__(
        self, name: str, *, device: str | None = None
    ) -> Iterator[Callable[[int, int], None]]:
        """Time stage ``name``; ``device`` when it runs elsewhere than the arrays' device."""
        t = time.perf_counter()
        yield lambda done, total: self.progress and self.progress(name, done, total)
        if self.xp is not np:
            self.xp.cuda.Stream.null.synchronize()
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t
        self.devices[name] = device or device_name(self.xp)


def fast_detect(
    frames: list[Frame],
    *,
    config: SearchConfig,
    template: list[Frame] | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
) -> FastResult:
    """The fast detector (CPU or GPU): every stage that scans pixels.

    Align, difference, detect and link; find the slow movers; and, with
    ``config.faint``, stack every motion of the rate range from every start
    pixel and keep the peaks (`detectors.faint.scan_faint`).

    Parameters
    ----------
    frames : list of Frame
        At least 3 time-ordered frames of one field.
    config : SearchConfig, keyword-only
    template : list of Frame, keyword-only
        Frames of the same field from another night (or one deep coadd),
        subtracted instead of the night's own median (`detectors.template`).
    progress : callable, keyword-only
        ``progress(stage, done, total)``.
    timings : dict, keyword-only
        Seconds already spent, carried along.

    Returns
    -------
    FastResult
    """
    xp = get_xp(device=config.device)
    keep_freed_memory()
    timings = dict(timings or {})
    devices: dict[str, str] = {}
    stage = _Stages(xp, progress, timings, devices)
    mjd = np.array([f.mjd for f in frames])
    h, w = frames[reference_index(frames)].shape
    check_per_frame(len(frames), h, w, budget_bytes=config.memory_gb * 1e9)
    with stage("register") as tick:
        native = []
        for f in frames:
            image = xp.asarray(f.data, dtype=xp.float32)
            level = xp.median(image[::4, ::4][xp.isfinite(image[::4, ::4])])
            native.append(image - level)
        bad = frame_masks(frames, native, xp)
        registration = register_frames(frames, native, bad, progress=tick)
        # The reference frame's stars, for a plate solver when no frame has a WCS.
        ref_stars = (
            None
            if any(f.wcs is not None for f in frames)
            else star_catalogue(to_numpy(native[registration.ref]), to_numpy(bad[registration.ref]))
        )
        sky = sky_solution(frames, registration, pixel_scale=config.pixel_scale, stars=ref_stars)
        del native
    with stage("align") as tick:
        aligned = align_frames(frames, bad, xp, registration=registration, progress=tick)
        del bad
    ref_index = aligned.ref
    ref = frames[ref_index]
    per_day = 24.0 / sky.pixel_scale
    static: TemplateBuilder | None = None
    if template:
        with stage("template"):
            reference = reference_template(
                template, ref, aligned.images[ref_index], aligned.bad[ref_index]
            )
        static, template_info = reference.builder(), reference.info
    elif config.same_night_template == "exclusion":
        static = exclusion_templates(mjd, rate_px_per_day=config.rate_min * per_day)
        template_info = same_night_info("temporal exclusion", len(frames))
    else:
        template_info = same_night_info("same-night median", len(frames))
    with stage("difference") as tick:
        diffs = difference_frames(
            aligned.images,
            aligned.bad,
            ref=aligned.ref,
            gain=ref.gain,
            template=static,
            progress=tick,
        )
        del aligned, static
    with stage("detect") as tick:
        cands = find_candidates(diffs, threshold=config.threshold, progress=tick)
    result = FastResult(
        mjd=mjd,
        wcs=sky.wcs,
        ref=ref_index,
        zero_point=ref.zero_point,
        differences=diffs,
        candidates=cands,
        tracklets=[],
        timings=timings,
        registration=registration,
        sky=sky,
        template=template_info,
        devices=devices,
    )
    need = config.min_detections or default_min_detections(len(frames))
    # Nothing faster than the field's diagonal per `need` frames can be linked.
    link_max = fastest_useful_rate(mjd, (h, w), frames=need)
    if link_max < config.rate_max * per_day:
        result.limits["link_rate_max"] = link_max
    with stage("link") as tick:
        result.tracklets = link_candidates(
            cands,
            mjd,
            rate_min=config.rate_min * per_day,
            rate_max=min(config.rate_max * per_day, link_max),
            radius=config.link_radius,
            min_detections=config.min_detections,
            progress=tick,
        )
    rate_min, rate_max = config.rate_min * per_day, config.rate_max * per_day
    with stage("slow", device="cpu") as tick:  # sep measures the sources on the CPU
        result.slow = find_slow_movers(
            diffs, mjd, rate_min=rate_min, rate_max=rate_max, progress=tick
        )
    if config.faint:
        with stage("faint_search") as tick:
            seeds, result.faint_kept = scan_faint(
                diffs, mjd, settings=_faint_settings(config, per_day), progress=tick
            )
        result.faint = seeds
        if seeds.limited_by is not None:
            result.limits["faint_rate_max"] = seeds.rate_max
            result.limits["faint_limited_by"] = seeds.limited_by
    return result


def _faint_settings(config: SearchConfig, per_day: float) -> FaintSettings:
    return FaintSettings(
        rate_min=config.rate_min * per_day,
        rate_max=config.rate_max * per_day,
        min_stacked_snr=config.faint_min_stacked_snr,
        memory_bytes=config.memory_gb * 1e9,
    )


def detailed_detect(
    fast: FastResult, *, config: SearchConfig, progress: Progress | None = None
) -> list[Track]:
    """The detailed detector (CPU): verify and measure the candidates the fast one found.

    Nothing here scans the field: tracklets are fitted and measured along
    their paths, faint seeds refined along their trajectories, and slow
    movers taken as measured.

    Parameters
    ----------
    fast : FastResult
        Output of :func:`fast_detect`, whole or as handed over
        (`detectors.handoff`); its ``timings`` gain ``fit`` and ``faint_verify``.
    config : SearchConfig, keyword-only
    progress : callable, keyword-only
        ``progress(stage, done, total)``.

    Returns
    -------
    list of Track
        Strongest first, duplicates merged; empty when nothing moves.
    """
    stage = _Stages(np, progress, fast.timings, fast.devices)
    per_day = fast.pixels_per_day
    settings = FitSettings(
        rate_min=config.rate_min * per_day,
        rate_max=config.rate_max * per_day,
        min_stacked_snr=config.min_stacked_snr,
    )
    diffs = fast.differences
    with stage("fit") as tick:
        tracks = fit_tracks(
            fast.tracklets,
            fast.candidates,
            fast.mjd,
            diffs,
            fast.wcs,
            settings=settings,
            zero_point=fast.zero_point,
            pixel_scale=24.0 / per_day,
            progress=tick,
        )
    tracks.extend(_mover_tracks(fast.slow, fast, origin="slow"))
    # Handed over, the faint maps come pasted from tiles; whole, they are masked here.
    maps = fast.faint_maps
    if maps is None and fast.faint_kept is not None:
        maps = kept_maps(diffs, fast.faint_kept)
    if fast.faint is not None and maps is not None:
        with stage("faint_verify") as tick:
            faint = refine_faint(
                fast.faint,
                maps,
                fast.mjd,
                settings=_faint_settings(config, per_day),
                sigma=float(np.median(diffs.psf_sigma)),
                progress=tick,
            )
            tracks.extend(_mover_tracks(faint, fast, origin="faint"))
    if fast.registration is not None:
        tracks, fast.detector_fixed = reject_detector_fixed(tracks, fast.registration)
    for track in tracks:
        track.astrometry = fast.sky.astrometry if fast.sky is not None else "wcs"
    return merge_tracks(tracks, radius=2 * diffs.fwhm)


def _mover_tracks(movers: list[Mover], fast: FastResult, *, origin: str) -> list[Track]:
    return [
        build_track(
            m.frames,
            fast.mjd,
            m.x,
            m.y,
            m.err,
            flux=m.flux,
            snr=m.snr,
            stacked_snr=m.stacked,
            wcs=fast.wcs,
            zero_point=fast.zero_point,
            origin=origin,
            pixel_scale=24.0 / fast.pixels_per_day,
        )
        for m in movers
    ]


def run_info(fast: FastResult, frames: list[Frame], config: SearchConfig) -> dict:
    """The output's ``run`` block: version, device, options, timings, memory, registration."""
    timings = dict(fast.timings)
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    seeds = fast.faint
    return {
        **_sky_info(fast, frames),
        "version": __version__,
        "device": fast.devices.get("difference", "cpu"),
        "devices": {k: fast.devices.get(k, "cpu") for k in timings if k != "total"},
        "options": config.as_dict(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "peak_memory_mb": round(_peak_memory_mb(), 1),
        "reference_frame": frames[fast.ref].name,
        "pixel_scale_arcsec": round(24.0 / fast.pixels_per_day, 4),
        "psf_fwhm_px": [round(FWHM_PER_SIGMA * float(s), 3) for s in fast.differences.psf_sigma],
        "candidates": len(fast.candidates),
        "tracklets": len(fast.tracklets),
        "trajectories_tested": 0 if seeds is None else seeds.trajectories,
        "faint_binning": 1 if seeds is None else seeds.binning,
        "faint_threshold": None if seeds is None else round(seeds.threshold, 3),
        "template": fast.template,
        **{
            f"{k}_arcsec_per_hour" if isinstance(v, float) else k: (
                round(v / fast.pixels_per_day, 2) if isinstance(v, float) else v
            )
            for k, v in fast.limits.items()
        },
    }


def _sky_info(fast: FastResult, frames: list[Frame]) -> dict:
    """The ``run`` block's registration and astrometry entries."""
    reg = fast.registration
    info: dict = {"detector_fixed_rejected": fast.detector_fixed}
    if fast.sky is not None:
        info.update(astrometry=fast.sky.astrometry, astrometry_note=fast.sky.note)
    if reg is not None:
        centre = (np.array(frames[reg.ref].shape) - 1) / 2.0
        info["registration"] = [
            {
                "frame": frame.name,
                "method": reg.method[k],
                "stars": int(reg.stars[k]),
                "rms_px": None if np.isnan(reg.rms_px[k]) else round(float(reg.rms_px[k]), 3),
                "offset_px": [
                    round(float(v) - c, 2)
                    for v, c in zip(
                        reg.to_frame(k, centre[1], centre[0]), centre[::-1], strict=True
                    )
                ],
            }
            for k, frame in enumerate(frames)
        ]
    return info


def find_moving_objects(
    frames: list[Frame],
    *,
    config: SearchConfig | None = None,
    template: list[Frame] | None = None,
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
    template : list of Frame, keyword-only
        Frames of the same field from another night, or one deep coadd.
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
    fast = fast_detect(frames, config=config, template=template, progress=progress, timings=timings)
    # Through the same cut as the services' work file, so both find the same tracks.
    started = time.perf_counter()
    handed = handed_over(fast)
    handed.timings["handoff"] = time.perf_counter() - started
    tracks = detailed_detect(handed, config=config, progress=progress)
    return SearchResult(
        frames=frames,
        tracks=tracks,
        candidates=fast.candidates,
        run=run_info(handed, frames, config),
        differences=fast.differences if keep_differences else None,
        sky=fast.sky,
    )
