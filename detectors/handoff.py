"""What the fast detector hands the detailed one: candidate lists and the pixels around them.

The fast detector scans every pixel (differencing, detection, linking, the
slow-mover and the shift-and-stack searches); the detailed detector reads the
difference maps only near its candidates: along the tracklets' fitted paths
(PSF fits and stack samples), along the slow movers' and the faint seeds'
paths (refinement), and around every track for its review stamps. So what
passes between them keeps, of each frame's difference, psi and phi maps
(and, near the faint seeds, the faint search's mask of kept pixels), only the
whole `TILE` x `TILE` tiles within `MARGIN` pixels of a candidate's path in
any frame or within `SLACK` of its review sky box (`cutouts.sky_box`: the
frames at a fixed sky position), plus the template (the field pictures). Elsewhere the detailed detector sees no data
(NaN differences, zero psi and phi), which it never reads: its tracks are
those of the whole maps (``tests/detectors/test_handoff.py``), and the work
file is a few percent of the frames' size instead of three times it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from . import kernels
from .backend import Array, get_xp, keep_freed_memory, to_numpy
from .cutouts import sky_box
from .fit import motion_fit
from .types import Differences, FastResult

__all__ = [
    "MARGIN",
    "SLACK",
    "TILE",
    "Tiles",
    "candidate_paths",
    "cut_tiles",
    "from_tiles",
    "handed_over",
    "paste_faint_maps",
    "paste_tiles",
]

#: Side of a kept tile, pixels.
TILE = 16
#: Pixels by which refitting a tracklet or refining a faint seed may move a path.
SLACK = 9
#: Pixels kept either side of a candidate's path: the review stamps' half-width
#: (31) and the slack.
MARGIN = 31 + SLACK


@dataclass
class Tiles:
    """Whole tiles of every frame's maps, cut from the (N, H, W) maps of shape ``shape``.

    Attributes
    ----------
    shape : (int, int, int)
        ``(N, H, W)`` of the maps the tiles were cut from.
    size : int
        Tile side, pixels.
    index : ndarray of int, shape (K, 2)
        Tile row and column of each kept tile.
    diff, psi, phi : ndarray, shape (K, N, size, size), float32
        The maps there (tiles reaching past the edge are padded: NaN, 0, 0).
    kept : ndarray of bool, shape (F, N, size, size), or None
        The faint search's kept pixels in the tiles near faint seeds, the
        ``kept_rows`` rows of ``index`` (None without a faint search).
    kept_rows : ndarray of int, shape (F,), or None
    """

    shape: tuple[int, int, int]
    size: int
    index: np.ndarray
    diff: np.ndarray
    psi: np.ndarray
    phi: np.ndarray
    kept: np.ndarray | None
    kept_rows: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        arrays = (self.diff, self.psi, self.phi, self.kept)
        return sum(a.nbytes for a in arrays if a is not None)


def candidate_paths(fast: FastResult, *, faint_only: bool = False) -> list[np.ndarray]:
    """Every candidate's positions ``(x, y)`` over the whole sequence, in steps under TILE/2.

    A tracklet's path is the motion fit of its detections (the detailed
    detector's first prediction), a slow mover's and a faint seed's their
    own motion. ``faint_only``: the faint seeds' paths alone.
    """
    mjd = np.asarray(fast.mjd, dtype=float)
    t_mid = float(np.mean(mjd))
    c = fast.candidates
    lines = []  # (x at t_mid, y at t_mid, vx, vy)
    for members in [] if faint_only else fast.tracklets:
        px, py, _ = motion_fit(mjd[c.frame[members]] - t_mid, c.x[members], c.y[members])
        lines.append((px[0], py[0], px[1], py[1]))
    for m in [] if faint_only else fast.slow:
        t0 = mjd[m.frames[0]] - t_mid
        vx, vy = m.vel
        lines.append((m.x[0] - vx * t0, m.y[0] - vy * t0, vx, vy))
    seeds = fast.faint
    if seeds is not None:
        lines.extend(zip(seeds.x, seeds.y, seeds.vx, seeds.vy, strict=True))
    t = np.array([mjd.min(), mjd.max()]) - t_mid
    paths = []
    for x0, y0, vx, vy in lines:
        length = math.hypot(vx, vy) * float(t[1] - t[0])
        s = np.linspace(t[0], t[1], max(2, math.ceil(length / (TILE / 2)) + 1))
        paths.append(np.c_[x0 + vx * s, y0 + vy * s])
    return paths


def tiles_near(
    paths: list[np.ndarray],
    shape: tuple[int, int],
    *,
    size: int = TILE,
    margin: int = MARGIN,
    sky_boxes: bool = False,
) -> np.ndarray:
    """Row and column (K, 2) of every tile with a pixel within ``margin`` of a path point,
    and with ``sky_boxes`` within `SLACK` of each path's review sky box."""
    rows, cols = math.ceil(shape[0] / size), math.ceil(shape[1] / size)
    wanted = np.zeros((rows, cols), dtype=bool)
    paths = [p[np.all(np.isfinite(p), axis=1)] for p in paths]
    points = np.concatenate(paths) if paths else np.zeros((0, 2))
    lo, hi = points - margin, points + margin
    if sky_boxes:
        boxes = np.array([sky_box(p[:, 0], p[:, 1]) for p in paths if len(p)], dtype=float).reshape(
            -1, 3
        )
        corner = boxes[:, :2] - SLACK
        lo = np.concatenate([lo, corner])
        hi = np.concatenate([hi, corner + boxes[:, 2:] - 1 + 2 * SLACK])
    lo = np.maximum(np.floor(lo / size).astype(np.int64), 0)
    hi = np.minimum(np.floor(hi / size).astype(np.int64), [cols - 1, rows - 1])
    for (x0, y0), (x1, y1) in zip(lo, hi, strict=True):
        if x0 <= x1 and y0 <= y1:
            wanted[y0 : y1 + 1, x0 : x1 + 1] = True
    return np.argwhere(wanted)


def _blocks(a: Array, size: int, fill: float | bool) -> Array:
    """``a`` (N, H, W) padded with ``fill`` to whole tiles, as (N, rows, size, cols, size)."""
    xp = get_xp(a)
    n, h, w = a.shape
    pad_h, pad_w = -h % size, -w % size
    if pad_h or pad_w:
        a = xp.pad(a, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=fill)
    return a.reshape(n, (h + pad_h) // size, size, (w + pad_w) // size, size)


def _tiled(blocks: Array) -> Array:
    """(N, rows, size, cols, size) blocks as a (rows, cols, N, size, size) view."""
    return blocks.transpose(1, 3, 0, 2, 4)


def _cut(a: Array, index: np.ndarray, size: int, fill: float | bool) -> np.ndarray:
    xp = get_xp(a)
    rows, cols = xp.asarray(index[:, 0]), xp.asarray(index[:, 1])
    return to_numpy(_tiled(_blocks(a, size, fill))[rows, cols])  # (K, N, size, size)


def cut_tiles(fast: FastResult, *, size: int = TILE, margin: int = MARGIN) -> Tiles:
    """The tiles of the maps (NumPy or CuPy) that the detailed detector reads, as NumPy."""
    d = fast.differences
    n, h, w = d.psi.shape
    index = tiles_near(candidate_paths(fast), (h, w), size=size, margin=margin, sky_boxes=True)
    kept = rows = None
    if fast.faint_kept is not None:
        # The faint refinement reads only near its seeds (a subset of the tiles above).
        near = tiles_near(candidate_paths(fast, faint_only=True), (h, w), size=size, margin=margin)
        cols = -(-w // size)
        rows = np.searchsorted(index[:, 0] * cols + index[:, 1], near[:, 0] * cols + near[:, 1])
        kept = _cut(fast.faint_kept, near, size, False)
    return Tiles(
        shape=(n, h, w),
        size=size,
        index=index,
        diff=_cut(d.diff, index, size, np.nan),
        psi=_cut(d.psi, index, size, 0.0),
        phi=_cut(d.phi, index, size, 0.0),
        kept=kept,
        kept_rows=rows,
    )


def _paste(
    tiles: np.ndarray, t: Tiles, fill: float | bool, dtype, index: np.ndarray | None = None
) -> np.ndarray:
    index = t.index if index is None else index
    n, h, w = t.shape
    shape = (n, h + (-h % t.size), w + (-w % t.size))
    # Zeros come from the OS untouched: only the tiles' pages are ever written. Not
    # in huge pages, though: the kernel would zero 2 MB around each tile (0.4 -> 1.1-1.8 s
    # for a 2048^2 x 8 job's maps in a fresh detailed worker).
    keep_freed_memory()
    full = np.full(shape, fill, dtype=dtype) if fill else np.zeros(shape, dtype=dtype)
    kernels.paste_tiles(full, tiles.astype(dtype, copy=False), index, t.size)
    return full if full.shape == (n, h, w) else np.ascontiguousarray(full[:, :h, :w])


def paste_tiles(t: Tiles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole (N, H, W) maps ``diff, psi, phi``: the tiles, and no data elsewhere."""
    return (
        _paste(t.diff, t, np.nan, np.float32),
        _paste(t.psi, t, 0.0, np.float32),
        _paste(t.phi, t, 0.0, np.float32),
    )


def paste_faint_maps(t: Tiles) -> tuple[np.ndarray, np.ndarray] | None:
    """Whole (N, H, W) psi and phi maps of the faint search (zero where it kept no pixel)."""
    if t.kept is None or t.kept_rows is None:
        return None
    zero, rows = np.float32(0.0), t.kept_rows
    index = t.index[rows]
    return (
        _paste(np.where(t.kept, t.psi[rows], zero), t, 0.0, np.float32, index),
        _paste(np.where(t.kept, t.phi[rows], zero), t, 0.0, np.float32, index),
    )


def from_tiles(fast: FastResult, tiles: Tiles, template: Array) -> FastResult:
    """``fast`` with its maps rebuilt from ``tiles`` (NumPy; the template whole)."""
    diff, psi, phi = paste_tiles(tiles)
    d = fast.differences
    differences = Differences(
        diff=diff,
        psi=psi,
        phi=phi,
        template=to_numpy(template),
        scale=np.asarray(d.scale),
        psf_sigma=np.asarray(d.psf_sigma),
        noise=np.asarray(d.noise),
    )
    return replace(
        fast, differences=differences, faint_kept=None, faint_maps=paste_faint_maps(tiles)
    )


def handed_over(fast: FastResult) -> FastResult:
    """What the detailed detector gets from ``fast`` through the work file, without the file.

    The search run in one process (``astrohunter detect``) goes through the
    same cut as the services, so both find the same tracks.
    """
    return from_tiles(fast, cut_tiles(fast), fast.differences.template)
