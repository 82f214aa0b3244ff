"""The one array-module switch: NumPy on the CPU, CuPy on a GPU.

Every stage is written once against ``xp`` (the module that holds its
arrays), so the NumPy tests exercise the same lines the GPU runs. CuPy is
imported lazily and only here.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, Literal

import numpy as np

__all__ = [
    "Array",
    "Device",
    "Ticker",
    "asarray",
    "device_name",
    "get_ndimage",
    "get_xp",
    "gpu_available",
    "keep_freed_memory",
    "map_frames",
    "to_numpy",
]

Device = Literal["cpu", "gpu"]

#: A NumPy or CuPy array. CuPy's ndarray mirrors NumPy's API, so code typed
#: against NumPy's is checked for both.
Array = np.ndarray


@functools.cache
def _cupy() -> ModuleType | None:
    try:
        import cupy  # lazy: CPU installs have no CuPy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # ImportError, or a CUDA runtime without a device
        return None
    return cupy


def gpu_available() -> bool:
    """Return True when CuPy imports and sees at least one CUDA device."""
    return _cupy() is not None


def get_xp(obj: Any = None, *, device: Device | None = None) -> ModuleType:
    """Return the array module for an array, or for a requested device.

    Parameters
    ----------
    obj : array, optional
        The backend follows the data: a CuPy array gives ``cupy``.
    device : {"cpu", "gpu"}, optional
        Used when ``obj`` is None.

    Raises
    ------
    RuntimeError
        ``device="gpu"`` on a machine without CuPy or a CUDA device.
    """
    if obj is not None:
        return np if isinstance(obj, np.ndarray) or np.isscalar(obj) else _require_cupy()
    if device == "gpu":
        return _require_cupy()
    return np


def _require_cupy() -> ModuleType:
    cp = _cupy()
    if cp is None:
        raise RuntimeError(
            "--device gpu needs CuPy and a CUDA device; install 'astrohunter[gpu]' on a "
            "machine with an NVIDIA GPU, or run with --device cpu"
        )
    return cp


def get_ndimage(xp: ModuleType) -> ModuleType:
    """``scipy.ndimage`` for NumPy, ``cupyx.scipy.ndimage`` for CuPy."""
    if xp is np:
        from scipy import ndimage

        return ndimage
    from cupyx.scipy import ndimage

    return ndimage


def asarray(a: Any, xp: ModuleType, dtype: Any = np.float32) -> Any:
    """Move ``a`` onto ``xp``'s device with ``dtype``."""
    return xp.asarray(a, dtype=dtype)


def to_numpy(a: Any) -> np.ndarray:
    """Return ``a`` as a NumPy array (copies off the GPU when needed)."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if get is not None else np.asarray(a)


def device_name(xp: ModuleType) -> str:
    """A human name for the device: ``cpu`` or ``gpu (<model>)``."""
    if xp is np:
        return "cpu"
    props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
    name = props["name"]
    return f"gpu ({name.decode() if isinstance(name, bytes) else name})"


def map_frames(fn: Callable[[int], Any], n: int, xp: ModuleType) -> list[Any]:
    """``[fn(0), ..., fn(n - 1)]``, on all CPU cores for NumPy.

    SciPy's ndimage filters and NumPy's large-array kernels release the GIL,
    so threads over frames use every core without copying arrays. On a GPU
    the device is already parallel and work stays on one stream.
    """
    if xp is not np or n < 2:
        return [fn(i) for i in range(n)]
    with ThreadPoolExecutor(max_workers=min(n, os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, range(n)))


class Ticker:
    """Thread-safe step counter that reports ``progress(done, total)``."""

    def __init__(self, progress, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.done += 1
            if self.progress:
                self.progress(self.done, self.total)


#: glibc's mallopt parameters, and what the per-frame path sets them to.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MALLOPT = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 1 << 30, _M_TOP_PAD: 256 << 20}


@functools.cache
def keep_freed_memory() -> bool:
    """Let the C heap keep freed image-sized blocks for reuse (glibc only; once per process).

    A 2048^2 float32 temporary is 16 MB, above glibc's default threshold
    for handing memory straight back to the kernel, so each of the
    thousands the per-frame path makes is a fresh mapping whose pages the
    kernel zeroes on first touch: a quarter of the CPU time went to that.
    Kept on the heap (up to 1 GB of slack), freed blocks are simply reused.
    NumPy's transparent-huge-page advice on large arrays is turned off too:
    the kernel zeroed (and compacted memory for) a 2 MB page at each first
    touch, 2-3 s of system time per 2048^2 x 10 field against 1 s without.
    Returns False where there is no glibc ``mallopt``.
    """
    core = getattr(np, "_core", None)  # NumPy 2's private module
    hugepages = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if hugepages is not None:
        hugepages(False)
    try:
        libc = ctypes.CDLL(None)
        return all(libc.mallopt(k, v) == 1 for k, v in _MALLOPT.items())
    except (OSError, AttributeError):
        return False
