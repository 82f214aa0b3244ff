import numpy as np

from detectors.align import align_frames, pixel_map
from detectors.register import register_frames
from detectors.types import Frame

from .helpers import add_gaussians, tan_wcs


def test_pixel_map_of_a_dither_and_rotation_matches_the_wcs():
    shape = (300, 400)
    ref, src = tan_wcs(shape), tan_wcs(shape, dx=3.7, dy=-2.2, rot_deg=0.1)
    ys, xs = pixel_map(src, ref, shape)
    y, x = np.array([0, 150, 299, 17]), np.array([0, 200, 399, 333])
    ex, ey = src.world_to_pixel_values(*ref.pixel_to_world_values(x, y))
    np.testing.assert_allclose(xs[y, x], ex, atol=2e-3)
    np.testing.assert_allclose(ys[y, x], ey, atol=2e-3)


def test_aligned_star_lands_on_the_reference_position(xp):
    shape = (128, 128)
    frames = []
    for k, (dx, dy) in enumerate([(0, 0), (2.3, -1.6), (-3.1, 0.4)]):
        wcs = tan_wcs(shape, dx=dx, dy=dy, rot_deg=0.05 * k)
        x, y = wcs.world_to_pixel_values(*tan_wcs(shape).pixel_to_world_values(64.3, 60.8))
        img = add_gaussians(np.zeros(shape), x, y, 1e4, 1.5).astype(np.float32)
        frames.append(Frame(data=img, wcs=wcs, mjd=60000 + k, exptime=1, name=f"f{k}"))
    bad = [xp.zeros(shape, dtype=bool) for _ in frames]
    bad[2][10, 10] = True
    # One star: too few to correct the WCS on, so the WCS maps the frames alone.
    registration = register_frames(frames, [xp.asarray(f.data) for f in frames], bad)
    assert registration.method == ["wcs", "reference", "wcs"]
    aligned = align_frames(frames, bad, xp, registration=registration)
    assert aligned.ref == 1
    images = aligned.images.get() if hasattr(aligned.images, "get") else aligned.images
    ref_x, ref_y = frames[1].wcs.world_to_pixel_values(
        *tan_wcs(shape).pixel_to_world_values(64.3, 60.8)
    )
    yy, xx = np.mgrid[0:128, 0:128]
    for img in images:
        stamp = (np.abs(xx - ref_x) < 6) & (np.abs(yy - ref_y) < 6)
        w = np.where(stamp, np.nan_to_num(img), 0)
        assert abs((w * xx).sum() / w.sum() - ref_x) < 0.03
        assert abs((w * yy).sum() / w.sum() - ref_y) < 0.03
    # The masked pixel travels with its frame and stays masked (NaN).
    assert (
        bool(aligned.bad[2].any())
        and np.isnan(
            images[2][
                np.asarray(aligned.bad[2].get() if hasattr(aligned.bad, "get") else aligned.bad[2])
            ]
        ).all()
    )
