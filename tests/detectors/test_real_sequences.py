"""Real sequences: warm pixels, drifting pointings, rough or missing WCS, mixed frame sizes.

Seeded simulated fields with the traits of `detectors.simulate.RealTraits`,
searched end to end (per-frame, slow and faint searches), scored against
their truth.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from detectors.config import SearchConfig
from detectors.masks import frame_masks
from detectors.report import ApproximateAstrometryWarning, mpc_report, tracks_to_contract
from detectors.search import find_moving_objects
from detectors.simulate import RealTraits, simulate_field
from detectors.types import Frame

from ..conftest import check_contract
from .helpers import add_gaussians

# An unguided mount drifts smoothly: no dithers on top of the drift.
SMALL = {
    "shape": (384, 384),
    "n_frames": 8,
    "cadence_min": 12.0,
    "fwhm_range_px": (2.5, 3.0),
    "dither_px": 0.3,
}
DRIFTING = RealTraits(warm_pixel_fraction=2e-3, drift_px_per_hour=60.0)


def _frames(field, *, wcs: bool = True) -> list[Frame]:
    from astropy.wcs import WCS

    out = []
    for name, data, header in field.frames:
        out.append(
            Frame(
                data=data.copy(),
                wcs=WCS(header) if wcs else None,
                mjd=0.0,
                exptime=header.get("EXPTIME", header.get("EXPOSURE")),
                name=name,
                gain=header["GAIN"],
                read_noise=header["RDNOISE"],
                saturation=header["SATURATE"],
                zero_point=header["MAGZP"],
                header=header,
            )
        )
    for frame, info in zip(out, field.truth["frames"], strict=True):
        frame.mjd = info["mjd_mid"]
    return out


def _matches(track, obj, frames, *, radius_px: float = 1.5) -> bool:
    """Every observation within ``radius_px`` of the truth, in the frame's own pixels."""
    truth = {o["frame"]: (o["x"], o["y"]) for o in obj["observations"]}
    names = [frames[k].name for k in track.frames]
    d = [
        np.hypot(fx - truth[n][0], fy - truth[n][1])
        for n, fx, fy in zip(names, track.frame_x, track.frame_y, strict=True)
    ]
    return len(d) >= 3 and float(np.max(d)) < radius_px


def test_warm_pixels_on_a_drifting_detector_give_no_track():
    field = simulate_field(seed=21, n_objects=0, traits=DRIFTING, **SMALL)
    result = find_moving_objects(_frames(field), config=SearchConfig(rate_max=300.0))
    assert result.tracks == [], [(t.origin, t.rate_arcsec_per_hour) for t in result.tracks]
    assert result.run["trajectories_tested"] > 0  # the faint search ran too


def test_star_like_spots_fixed_on_the_detector_are_rejected_whichever_search_finds_them():
    """Ghosts and warm-pixel clusters as wide as a star: no defect map takes them for
    defects, and on the drifting sky they move like asteroids. Mapped back into each
    frame's own pixels, they stay put."""
    field = simulate_field(seed=21, n_objects=0, traits=DRIFTING, **SMALL)
    rng = np.random.default_rng(5)
    spots = rng.uniform(40, 340, (6, 2))
    for _, data, _ in field.frames:
        add_gaussians(data, spots[:, 0], spots[:, 1], np.full(6, 6000.0), 1.2)
    result = find_moving_objects(_frames(field), config=SearchConfig(rate_max=300.0))
    assert result.tracks == [], [(t.origin, t.rate_arcsec_per_hour) for t in result.tracks]
    assert result.run["detector_fixed_rejected"] >= 4


def test_a_mover_crossing_a_warm_pixel_is_still_found():
    field = simulate_field(
        seed=22,
        n_objects=1,
        snr_range=(12.0, 12.0),
        rate_range=(40.0, 40.0),
        traits=DRIFTING,
        **SMALL,
    )
    obj = field.truth["objects"][0]
    mid = obj["observations"][len(field.frames) // 2]
    for _, data, _ in field.frames:  # a warm pixel where the mover is in the middle frame
        data[round(mid["y"]), round(mid["x"])] += 400.0
    frames = _frames(field)
    result = find_moving_objects(frames, config=SearchConfig(faint=False))
    assert len(result.tracks) == 1
    assert _matches(result.tracks[0], obj, frames)


def test_rough_wcs_jumps_and_mixed_heights():
    """2' jumps between three blocks, drift, 3-px WCS errors, EXPOSURE, heights off by rows."""
    traits = RealTraits(
        warm_pixel_fraction=1e-3,
        drift_px_per_hour=30.0,
        blocks=3,
        jump_px=100.0,
        wcs_error_px=3.0,
        exposure_keyword="EXPOSURE",
        height_loss_rows=4,
    )
    field = simulate_field(
        seed=23,
        n_objects=3,
        snr_range=(10.0, 14.0),
        rate_range=(20.0, 60.0),
        traits=traits,
        shape=(512, 512),
        n_frames=9,
        cadence_min=8.0,
    )
    frames = _frames(field)
    assert len({f.shape for f in frames}) > 1
    result = find_moving_objects(frames, config=SearchConfig(faint=False))
    assert len(result.tracks) == 3
    for obj in field.truth["objects"]:
        assert any(_matches(t, obj, frames) for t in result.tracks), obj["id"]
        # on the sky too: the median of nine rough WCS is good to about a pixel
        track = next(t for t in result.tracks if _matches(t, obj, frames))
        truth = {o["mjd"]: (o["ra"], o["dec"]) for o in obj["observations"]}
        off = [
            np.hypot((ra - truth[m][0]) * np.cos(np.radians(dec)), dec - truth[m][1]) * 3600
            for m, ra, dec in zip(track.mjd, track.ra, track.dec, strict=True)
        ]
        assert np.median(off) < 3.0
    reg = result.run["registration"]
    assert all(r["method"] in ("wcs+stars", "reference") for r in reg)
    assert max(r["rms_px"] or 0 for r in reg) < 0.3


@pytest.fixture(scope="module")
def bright_field():
    return simulate_field(
        seed=24,
        n_objects=3,
        snr_range=(12.0, 15.0),
        rate_range=(20.0, 60.0),
        traits=RealTraits(drift_px_per_hour=40.0),
        **SMALL,
    )


def test_frames_without_wcs_give_tracks_in_pixels(bright_field):
    frames = _frames(bright_field, wcs=False)
    result = find_moving_objects(frames, config=SearchConfig(faint=False, pixel_scale=1.2))
    assert result.run["astrometry"] == "none"
    assert {r["method"] for r in result.run["registration"]} == {"stars", "reference"}
    assert len(result.tracks) == 3
    for obj in bright_field.truth["objects"]:
        track = next(t for t in result.tracks if _matches(t, obj, frames))
        assert np.isnan(track.ra).all() and track.astrometry == "none"
        assert track.rate_arcsec_per_hour == pytest.approx(obj["rate_arcsec_per_hour"], rel=0.05)
    doc = tracks_to_contract(result.tracks, frames=frames, run=result.run)
    check_contract(doc)
    obs = doc["tracks"][0]["observations"][0]
    assert "ra" not in obs and {"x", "y"} <= set(obs)
    with pytest.raises(ValueError, match="no sky positions"):
        mpc_report(result.tracks, frames=frames)


def test_frames_without_wcs_but_a_pointing_get_approximate_sky(bright_field):
    frames = _frames(bright_field, wcs=False)
    centre = bright_field.truth["field"]
    for f in frames:  # a mount's idea of where it points, in sexagesimal text, and a scale
        ra_h = centre["ra"] / 15.0
        f.header["OBJCTRA"] = f"{int(ra_h):02d} {int(ra_h * 60) % 60:02d} {ra_h * 3600 % 60:06.3f}"
        d = abs(centre["dec"])
        sign = "-" if centre["dec"] < 0 else "+"
        f.header["OBJCTDEC"] = f"{sign}{int(d):02d} {int(d * 60) % 60:02d} {d * 3600 % 60:05.2f}"
        f.header["SECPIX"] = 1.2
    result = find_moving_objects(frames, config=SearchConfig(faint=False))
    assert result.run["astrometry"] == "approximate"
    assert "APPROXIMATE" in result.run["astrometry_note"]
    assert all(t.astrometry == "approximate" for t in result.tracks)
    for obj in bright_field.truth["objects"]:
        track = next(t for t in result.tracks if _matches(t, obj, frames))
        o = next(o for o in obj["observations"] if o["mjd"] == track.mjd[0])
        # the field centre is right (the simulator points there), north is up: arcsec, not more
        assert abs(track.dec[0] - o["dec"]) * 3600 < 90
    with pytest.raises(ValueError, match="APPROXIMATE"):
        mpc_report(result.tracks, frames=frames)
    with pytest.warns(ApproximateAstrometryWarning):
        assert mpc_report(result.tracks, frames=frames, allow_approximate=True)


def test_defect_map_works_across_frames_of_different_heights():
    rng = np.random.default_rng(3)
    frames, native = [], []
    for k, height in enumerate((200, 197, 199, 200, 196)):
        image = rng.normal(0, 3, (height, 150)).astype(np.float32)
        image[50, 60] += 300.0  # a hot pixel, fixed on the detector
        image[120, 30 + 4 * k] += 300.0  # a bright single pixel that moves: not a defect
        frames.append(Frame(data=image, wcs=None, mjd=60000 + k, exptime=1, name=f"f{k}"))
        native.append(image)
    bad = frame_masks(frames, native, np)
    assert all(b[50, 60] for b in bad)
    assert not any(b[120, 30 + 4 * k] for k, b in enumerate(bad))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [b.shape for b in bad] == [f.shape for f in frames]
