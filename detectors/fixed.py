"""Fixed on the detector means not moving: reject tracks that stay on the same pixels.

A warm pixel, a charge trap or a ghost sits on the same detector pixels in
every frame. When the pointing drifts (an unguided mount, a spacecraft), the
sky moves under it, so on the reference grid it moves too - at the drift's
rate, steadily, like an asteroid. Masks catch the defects the sequence makes
obvious; this catches the rest, whichever search found them: each track's
positions are mapped back through the registration into each frame's own
detector pixels, and a track that stays put there while it moves on the sky
is dropped. With a guided (still) pointing, sky and detector motion are the
same, and nothing is dropped.
"""

from __future__ import annotations

import numpy as np

from .types import Registration, Track

__all__ = ["FIXED_PX", "frame_positions", "is_detector_fixed", "reject_detector_fixed"]

#: A track moving less than this on the detector over its span (pixels) is
#: fixed on it, if it also moves at least 1/FIXED_SHARE times more on the sky.
FIXED_PX = 1.0
FIXED_SHARE = 0.25


def frame_positions(
    frames: np.ndarray, x: np.ndarray, y: np.ndarray, registration: Registration
) -> tuple[np.ndarray, np.ndarray]:
    """Each point's position in its own frame's pixels.

    Parameters
    ----------
    frames : ndarray of int, shape (M,)
        Frame index of each point.
    x, y : ndarray, shape (M,)
        Positions on the reference grid.
    registration : Registration

    Returns
    -------
    fx, fy : ndarray, shape (M,)
        0-based pixel positions in each frame's own image.
    """
    fx, fy = np.empty(frames.size), np.empty(frames.size)
    for k in np.unique(frames):
        sel = frames == k
        fx[sel], fy[sel] = registration.to_frame(int(k), x[sel], y[sel])
    return fx, fy


def _motion(t: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Distance travelled over the span by the least-squares line through (t, x, y)."""
    if np.ptp(t) <= 0:
        return 0.0
    a = np.c_[np.ones_like(t), t - t.mean()]
    vx = np.linalg.lstsq(a, x, rcond=None)[0][1]
    vy = np.linalg.lstsq(a, y, rcond=None)[0][1]
    return float(np.hypot(vx, vy) * np.ptp(t))


def is_detector_fixed(
    frames: np.ndarray, mjd: np.ndarray, x: np.ndarray, y: np.ndarray, registration: Registration
) -> bool:
    """True when points that move on the reference grid stay put on the detector.

    Parameters
    ----------
    frames : ndarray of int, shape (M,)
        Frame index of each point.
    mjd : ndarray, shape (M,)
        Time of each point.
    x, y : ndarray, shape (M,)
        Positions on the reference grid.
    registration : Registration

    Returns
    -------
    bool
        The detector motion (line fit plus scatter about it) is under
        `FIXED_PX` and under `FIXED_SHARE` of the sky motion.
    """
    fx, fy = frame_positions(frames, x, y, registration)
    origin = registration.origin[frames]
    dx, dy = fx + origin[:, 1], fy + origin[:, 0]
    on_sky = _motion(mjd, x, y)
    spread = np.hypot(dx - np.median(dx), dy - np.median(dy))
    on_detector = max(_motion(mjd, dx, dy), float(np.percentile(spread, 80)))
    return on_detector < FIXED_PX and on_detector < FIXED_SHARE * on_sky


def reject_detector_fixed(
    tracks: list[Track], registration: Registration
) -> tuple[list[Track], int]:
    """Drop tracks fixed on the detector; give the rest their positions in each frame.

    Parameters
    ----------
    tracks : list of Track
        From any search (per-frame, slow, faint).
    registration : Registration

    Returns
    -------
    kept : list of Track
        Same order, with ``frame_x``/``frame_y`` filled in.
    rejected : int
        How many were fixed on the detector.
    """
    kept = []
    for track in tracks:
        if is_detector_fixed(track.frames, track.mjd, track.x, track.y, registration):
            continue
        track.frame_x, track.frame_y = frame_positions(track.frames, track.x, track.y, registration)
        kept.append(track)
    return kept, len(tracks) - len(kept)
