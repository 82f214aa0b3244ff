"""Linking: join per-frame candidates into constant-velocity tracklets.

Every pair of candidates in two frames well apart in time, whose separation
fits the rate range, proposes a velocity; the proposal is checked against
every other frame by predicting the position there and looking for a
candidate within a radius. Proposals supported in enough frames become
tracklets, best first, each candidate used once. Pairs and predictions are
handled as whole arrays through k-d trees, so a frame with thousands of
candidates costs milliseconds, not a Python loop per candidate.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from .types import Candidates

__all__ = ["default_min_detections", "link_candidates"]

#: Seed pairs tested at once (their predictions are (pairs, frames) arrays).
PAIRS_PER_CHUNK = 200_000


def default_min_detections(n_frames: int) -> int:
    """Frames a tracklet must be detected in: 40% of them, at least 3."""
    return max(3, math.ceil(0.4 * n_frames))


def _pairs(tree_a: cKDTree, tree_b: cKDTree, r_min: float, r_max: float) -> np.ndarray:
    m = tree_a.sparse_distance_matrix(tree_b, r_max, output_type="ndarray")
    return m[m["v"] >= r_min]


def link_candidates(
    cands: Candidates,
    mjd: np.ndarray,
    *,
    rate_min: float,
    rate_max: float,
    radius: float = 1.5,
    min_detections: int | None = None,
    progress=None,
) -> list[np.ndarray]:
    """Group candidates into tracklets of constant velocity on the pixel grid.

    Parameters
    ----------
    cands : Candidates
        Per-frame detections on the common pixel grid.
    mjd : ndarray, shape (N,)
        Mid-exposure time of each frame (days).
    rate_min, rate_max : float, keyword-only
        Allowed motion in pixels per day.
    radius : float, keyword-only
        Match radius in pixels for a predicted position (grows when the
        prediction extrapolates beyond the seed pair).
    min_detections : int, keyword-only
        Frames a tracklet needs; default :func:`default_min_detections`.
    progress : callable, optional
        ``progress(done, total)`` after each pair of seed frames.

    Returns
    -------
    list of ndarray of int
        Candidate indices of each tracklet, one per frame it was found in,
        best supported first.
    """
    n = len(mjd)
    need = min_detections or default_min_detections(n)
    if len(cands) == 0 or n < 3:
        return []
    per_frame = [np.flatnonzero(cands.frame == k) for k in range(n)]
    xy = np.c_[cands.x, cands.y]
    trees = [cKDTree(xy[idx]) if idx.size else None for idx in per_frame]
    min_gap = max(1, (n - 1) // 2)

    proposals: list[np.ndarray] = []
    seeds = [(i, j) for i in range(n) for j in range(i + min_gap, n)]
    for done, (i, j) in enumerate(seeds, start=1):
        if progress:
            progress(done, len(seeds))
        if trees[i] is None or trees[j] is None:
            continue
        dt = mjd[j] - mjd[i]
        pairs = _pairs(trees[i], trees[j], rate_min * dt - radius, rate_max * dt + radius)
        # In chunks: a crowded or noisy pair of frames may propose millions of pairs.
        for first in range(0, pairs.size, PAIRS_PER_CHUNK):
            chunk = pairs[first : first + PAIRS_PER_CHUNK]
            a, b = per_frame[i][chunk["i"]], per_frame[j][chunk["j"]]
            vel = (xy[b] - xy[a]) / dt
            hits = np.full((a.size, n), -1, dtype=np.int64)
            for k in range(n):
                tree = trees[k]
                if tree is None:
                    continue
                reach = radius * max(1.0, abs(mjd[k] - mjd[i]) / dt, abs(mjd[k] - mjd[j]) / dt)
                pred = xy[a] + vel * (mjd[k] - mjd[i])
                _, nearest = tree.query(pred, distance_upper_bound=reach)
                found = nearest < per_frame[k].size
                hits[found, k] = per_frame[k][nearest[found]]
            keep = (hits >= 0).sum(axis=1) >= need
            proposals.extend(hits[keep])
    if not proposals:
        return []

    rows = np.array(proposals)
    support = (rows >= 0).sum(axis=1)
    strength = np.where(rows >= 0, cands.snr[np.maximum(rows, 0)], 0.0).sum(axis=1)
    order = np.lexsort((-strength, -support))
    used = np.zeros(len(cands), dtype=bool)
    tracklets = []
    for row in rows[order]:
        members = row[row >= 0]
        members = members[~used[members]]
        if members.size >= need:
            used[members] = True
            tracklets.append(members)
    return tracklets
