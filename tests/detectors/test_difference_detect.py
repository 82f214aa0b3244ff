import numpy as np
import pytest

from detectors.align import align_frames
from detectors.backend import to_numpy
from detectors.detect import find_candidates
from detectors.difference import difference_frames
from detectors.masks import frame_masks
from detectors.register import register_frames

from .helpers import make_sequence, tan_wcs


def _differences(frames, xp):
    native = [xp.asarray(f.data) - float(np.median(f.data)) for f in frames]
    bad = frame_masks(frames, native, xp)
    registration = register_frames(frames, native, bad)
    aligned = align_frames(frames, bad, xp, registration=registration)
    return aligned, difference_frames(
        aligned.images, aligned.bad, ref=aligned.ref, gain=frames[0].gain
    )


@pytest.fixture(scope="module")
def sequence():
    return make_sequence(seed=5, movers=((60.0, 80.0, 40.0, 10.0, 3000.0),), n=6, n_stars=25)


def test_static_stars_cancel_and_snr_map_is_unit_normal(sequence, xp):
    frames, truth = sequence
    _, diffs = _differences(frames, xp)
    snr = to_numpy(diffs.snr(2))
    phi = to_numpy(diffs.phi[2])
    deep = phi > 0.5 * np.median(phi[phi > 0])
    core = snr[deep]
    assert abs(np.std(core[np.abs(core) < 5]) - 1) < 0.15
    # Away from the mover, no star leaves a residual above 6 sigma.
    yy, xx = np.mgrid[0 : snr.shape[0], 0 : snr.shape[1]]
    x, y = truth[0][2]
    far = np.hypot(xx - x, yy - y) > 10
    assert (snr[deep & far] > 6).sum() == 0
    np.testing.assert_allclose(diffs.scale, 1, atol=0.03)
    assert np.all(np.abs(diffs.psf_sigma - 1.5) < 0.3)


def test_mover_found_in_every_frame_at_the_right_place(sequence, xp):
    frames, truth = sequence
    aligned, diffs = _differences(frames, xp)
    cands = find_candidates(diffs, threshold=5.0)
    ref = frames[aligned.ref].wcs
    base = tan_wcs(frames[0].shape)
    good = 0
    for k in range(len(frames)):
        x, y = ref.world_to_pixel_values(*base.pixel_to_world_values(*truth[0][k]))
        here = cands.frame == k
        d = np.hypot(cands.x[here] - x, cands.y[here] - y)
        j = np.argmin(d)
        good += bool(d[j] < 0.5 and 0.75 < cands.flux[here][j] / 3000.0 < 1.25)
    # In one frame the mover crosses a star's residual and is measured poorly.
    assert good >= len(frames) - 1


def test_cosmic_ray_is_not_a_candidate(xp):
    frames, _ = make_sequence(seed=6, movers=(), n=5)
    frames[2].data[100, 100] += 3000.0  # single hot pixel hit: sharper than any PSF
    frames[3].data[50:52, 150] += 2500.0
    _, diffs = _differences(frames, xp)
    cands = find_candidates(diffs, threshold=4.0)
    near = (np.abs(cands.x - 100) < 6) & (np.abs(cands.y - 100) < 6) & (cands.frame == 2)
    assert not near.any()
    near = (np.abs(cands.x - 150) < 6) & (np.abs(cands.y - 51) < 6) & (cands.frame == 3)
    assert not near.any()
