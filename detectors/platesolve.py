"""Plate solving: a sky solution for frames that have no WCS, from their stars.

Raw amateur frames often have no WCS until they are plate-solved. When no
frame of a sequence has one, the reference frame's star catalogue (the one
registration made) is handed to a plate solver; today that is
astrometry.net's ``solve-field`` with whatever index files are installed
(Debian: ``astrometry.net`` and ``astrometry-data-tycho2-*``, whose Tycho-2
indexes solve fields wider than about 22 arcminutes offline). Solvers are a
registry, tried in order; one that is not installed or finds nothing gives
way to the next, and with none the search falls back to an approximate sky
(`detectors.sky`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from .io import read_wcs_file, write_star_list

__all__ = ["PLATE_SOLVERS", "PlateSolution", "available_solvers", "plate_solve"]

#: Seconds a solver may think before it gives up.
SOLVE_TIMEOUT_S = 30.0
#: Brightest stars handed to a solver: catalogue indexes hold bright stars, and
#: a long list of faint ones only makes a failing search slower.
MAX_SOLVE_STARS = 50


@dataclass(frozen=True)
class PlateSolution:
    """A WCS found by a plate solver.

    Attributes
    ----------
    wcs : WCS
        Celestial WCS of the solved image.
    solver : str
        Which solver found it (a key of `PLATE_SOLVERS`).
    """

    wcs: WCS
    solver: str


@dataclass(frozen=True)
class _Solver:
    available: Callable[[], bool]
    solve: Callable[..., WCS | None]


def _astrometry_net(
    stars: np.ndarray,
    shape: tuple[int, int],
    *,
    scale: float | None,
    pointing: tuple[float, float] | None,
    timeout: float,
) -> WCS | None:
    """``solve-field`` on the star list (brightest first), with scale and position hints."""
    with tempfile.TemporaryDirectory(prefix="astrohunter-solve-") as tmp:
        folder = Path(tmp)
        rank = np.arange(len(stars), 0, -1, dtype=float)  # solve-field takes the largest first
        write_star_list(folder / "stars.xy", stars[:, 0], stars[:, 1], rank)
        command = [
            "solve-field",
            str(folder / "stars.xy"),
            "--width", str(shape[1]),
            "--height", str(shape[0]),
            "--x-column", "X",
            "--y-column", "Y",
            "--sort-column", "FLUX",
            "--dir", str(folder),
            "--wcs", str(folder / "solution.wcs"),
            "--cpulimit", str(int(timeout)),
            "--no-plots", "--overwrite",
            "--new-fits", "none", "--corr", "none", "--rdls", "none", "--match", "none",
            "--solved", "none", "--index-xyls", "none", "--axy", "none", "--temp-axy",
        ]  # fmt: skip
        if scale is not None:
            command += ["--scale-units", "arcsecperpix"]
            command += ["--scale-low", f"{0.8 * scale:g}", "--scale-high", f"{1.25 * scale:g}"]
        if pointing is not None:
            command += [
                "--ra",
                f"{pointing[0]:.6f}",
                "--dec",
                f"{pointing[1]:.6f}",
                "--radius",
                "3",
            ]
        try:
            subprocess.run(command, capture_output=True, timeout=timeout + 30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return read_wcs_file(folder / "solution.wcs")


#: Plate solvers, tried in order.
PLATE_SOLVERS: dict[str, _Solver] = {
    "astrometry.net": _Solver(
        available=lambda: shutil.which("solve-field") is not None, solve=_astrometry_net
    ),
}


def available_solvers() -> list[str]:
    """Names of the plate solvers installed here."""
    return [name for name, solver in PLATE_SOLVERS.items() if solver.available()]


def plate_solve(
    stars: np.ndarray,
    shape: tuple[int, int],
    *,
    scale: float | None = None,
    pointing: tuple[float, float] | None = None,
    timeout: float = SOLVE_TIMEOUT_S,
) -> PlateSolution | None:
    """A WCS for an image from its stars, by the first installed solver that finds one.

    Parameters
    ----------
    stars : ndarray, shape (M, 2)
        Star ``(x, y)`` in the image's 0-based pixels, brightest first.
    shape : (int, int)
        Image shape (H, W).
    scale : float, keyword-only
        Approximate arcsec per pixel, to narrow the search (within -20/+25 %).
    pointing : (float, float), keyword-only
        Approximate RA, Dec (degrees) of the image, searched within 3 degrees.
    timeout : float, keyword-only
        Seconds each solver may take.

    Returns
    -------
    PlateSolution or None
        None when no solver is installed or none finds a solution.
    """
    if len(stars) < 4:
        return None
    stars = stars[:MAX_SOLVE_STARS]
    for name in available_solvers():
        wcs = PLATE_SOLVERS[name].solve(
            stars, shape, scale=scale, pointing=pointing, timeout=timeout
        )
        if wcs is not None:
            return PlateSolution(wcs=wcs, solver=name)
    return None
