"""``simulated``: the engine's simulator, deterministic per position and seed.

The offline default: a realistic field with known moving objects, so the
whole system can be run and checked with no network and no telescope. Its
results are always labelled simulated.
"""

from __future__ import annotations

import hashlib
from typing import Any

from detectors import io
from detectors.simulate import simulate_field

from . import FetchProgress, FetchRequest, FetchResult, Source

__all__ = ["SimulatedSource"]

PIXEL_SCALE_ARCSEC = 1.2


def field_seed(ra: float, dec: float, seed: int) -> int:
    """A seed fixed by position and user seed: the same search, the same sky."""
    digest = hashlib.sha256(f"{ra:.6f},{dec:.6f},{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class SimulatedSource(Source):
    name = "simulated"
    simulated = True
    description = "Realistic simulated field with injected asteroids (offline; for demos and tests)"
    coverage = "whole sky, any time"

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> FetchResult:
        opts: dict[str, Any] = request.options
        size = int(min(max(2 * request.radius_arcmin * 60 / PIXEL_SCALE_ARCSEC, 128), 2048))
        field = simulate_field(
            seed=field_seed(request.ra, request.dec, int(opts.get("seed", 0))),
            shape=(size, size),
            n_frames=int(opts.get("frames", 8)),
            n_objects=int(opts.get("objects", max(3, size * size // 60000))),
            snr_range=(6.0, 20.0),
            rate_range=(5.0, 100.0),
            ra=request.ra,
            dec=request.dec,
            pixel_scale_arcsec=PIXEL_SCALE_ARCSEC,
        )
        request.dest.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, (name, data, header) in enumerate(field.frames):
            paths.append(io.write_fits(request.dest / name, data, header))
            progress(i + 1, len(field.frames), f"simulated {name}")
        io.write_json(request.dest.parent / "truth.json", field.truth)
        return FetchResult(paths=paths, source=self.name)
