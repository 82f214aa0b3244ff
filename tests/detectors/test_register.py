"""Registration on the stars: frames land on the reference grid whatever their WCS says."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import RegistrationError
from detectors.register import fit_affine, register_frames
from detectors.types import Frame

from .helpers import add_gaussians, tan_wcs

SHAPE = (300, 320)


def _star_field(seed: int = 1, n: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-60, 380, n), rng.uniform(-60, 360, n), 10 ** rng.uniform(3.8, 5.0, n)


def _frame(k: int, matrix: np.ndarray, *, wcs=None, seed: int = 1) -> Frame:
    """Stars of one sky, seen through ``matrix`` (reference grid -> this frame's pixels)."""
    x, y, flux = _star_field(seed)
    px, py = (np.c_[x, y] @ matrix[:, :2].T + matrix[:, 2]).T
    rng = np.random.default_rng(100 + k)
    image = rng.normal(0.0, 5.0, SHAPE)
    inside = (px > 8) & (px < SHAPE[1] - 9) & (py > 8) & (py < SHAPE[0] - 9)
    add_gaussians(image, px[inside], py[inside], flux[inside], 1.4)
    return Frame(
        data=image.astype(np.float32), wcs=wcs, mjd=60000 + k / 24, exptime=60, name=f"f{k}.fits"
    )


def _turn(deg: float, dx: float, dy: float) -> np.ndarray:
    t = np.radians(deg)
    c, s = np.cos(t), np.sin(t)
    centre = np.array([(SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2])
    a = np.array([[c, -s], [s, c]])
    return np.c_[a, centre - a @ centre + [dx, dy]]


def _register(frames: list[Frame]):
    bad = [np.zeros(f.shape, dtype=bool) for f in frames]
    return register_frames(frames, [f.data for f in frames], bad)


def test_fit_affine_ignores_outliers():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (50, 2))
    truth = _turn(0.7, 12.0, -40.0)
    dst = src @ truth[:, :2].T + truth[:, 2] + rng.normal(0, 0.05, src.shape)
    dst[:5] += 30.0
    matrix, inlier, rms = fit_affine(src, dst)
    assert not inlier[:5].any() and inlier[5:].all()
    fitted, expected = (src @ m[:, :2].T + m[:, 2] for m in (matrix, truth))
    np.testing.assert_allclose(fitted, expected, atol=0.05)
    assert rms < 0.1


@pytest.mark.parametrize(
    "motion",
    [(0.0, 37.0, -58.0), (0.6, -90.0, 20.0), (180.0, 4.0, 3.0)],
    ids=["drift", "drift-and-turn", "meridian-flip"],
)
def test_frames_without_wcs_register_on_stars(motion):
    """Offsets of tens of pixels, a small turn, a meridian flip: no WCS needed."""
    truth = _turn(*motion)
    frames = [_frame(0, _turn(0, 0, 0)), _frame(1, _turn(0, 0, 0)), _frame(2, truth)]
    reg = _register(frames)
    assert reg.ref == 1 and reg.method == ["stars", "reference", "stars"]
    x, y = np.array([20.0, 160.0, 300.0]), np.array([30.0, 150.0, 280.0])
    fx, fy = reg.to_frame(2, x, y)
    expected = np.c_[x, y] @ truth[:, :2].T + truth[:, 2]
    np.testing.assert_allclose(np.c_[fx, fy], expected, atol=0.1)
    assert reg.stars[2] >= 20 and reg.rms_px[2] < 0.15


def test_wrong_wcs_is_corrected_on_the_stars():
    """Two header WCS are 4 px off the truth; the stars put the frames where they are."""
    shifts, errors = [(0.0, 0.0), (3.0, -2.0), (-2.0, 1.0)], [(4.0, 0.0), (0.0, 0.0), (0.0, -4.0)]
    frames = [
        _frame(k, _turn(0, dx, dy), wcs=tan_wcs(SHAPE, dx=dx + ex, dy=dy + ey))
        for k, ((dx, dy), (ex, ey)) in enumerate(zip(shifts, errors, strict=True))
    ]
    reg = _register(frames)
    assert reg.method == ["wcs+stars", "reference", "wcs+stars"]
    for k, (dx, dy) in enumerate(shifts):
        fx, fy = reg.to_frame(k, np.array([160.0]), np.array([150.0]))
        assert fx[0] == pytest.approx(160.0 + dx - 3.0, abs=0.1)
        assert fy[0] == pytest.approx(150.0 + dy + 2.0, abs=0.1)


def test_a_frame_of_another_field_is_refused_by_name():
    frames = [
        _frame(0, _turn(0, 0, 0)),
        _frame(1, _turn(0, 0, 0)),
        _frame(2, _turn(0, 5, 5), seed=9),
    ]
    with pytest.raises(RegistrationError, match=r"^f2\.fits: cannot be registered") as err:
        _register(frames)
    assert err.value.frame == "f2.fits"
    assert "\n" not in str(err.value)
