"""Is a new track a near-Earth object? The digest2 score.

digest2 (the MPC's public-domain classifier, ``digest2`` on PyPI) turns a
short arc into pseudo-probabilities (0-100) of 15 orbit classes by
statistical ranging against a population model. The MPC posts a tracklet to
its NEO Confirmation Page when its NEO score is 65 or more. Here every
unidentified track gets its scores; the ``noid`` scores (the population
still undiscovered) are the ones the MPC uses.

digest2 needs the MPC's observatory-code list for the observer's parallax
(`astrohunter orbits update` downloads it); its population model ships with
the package. Its C library keeps global state, so calls are serialised.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .identify import ObservedTrack

__all__ = ["Digest2Score", "digest2_scores"]

_LOCK = threading.Lock()
#: Classes reported, in digest2's order.
CLASSES: tuple[str, ...] = (
    *("Int", "NEO", "N22", "N18", "MC", "Hun", "Pho", "MB1", "Pal", "Han", "MB2", "MB3"),
    *("Hil", "JTr", "JFC"),
)


@dataclass(frozen=True)
class Digest2Score:
    """digest2's verdict on one track.

    Attributes
    ----------
    neo : float
        NEO score (0-100, ``noid``): 65 or more and the MPC would post it to the NEOCP.
    scores : dict of str to float
        Every class's ``noid`` score (``NEO``, ``N22``, ``MB1``, ...).
    raw_neo : float
        NEO score over the whole population (known objects included).
    rms_arcsec : float
        Great-circle RMS of the arc about digest2's fit.
    """

    neo: float
    scores: dict[str, float]
    raw_neo: float
    rms_arcsec: float


def _model_paths() -> tuple[str, str | None]:
    import digest2

    data = Path(digest2.__file__).parent / "data"
    model = data / "digest2.model.csv"
    config = data / "MPC.config"
    if not model.is_file():  # an unusual install: let digest2 look for it
        from digest2.model import find_model_path

        return find_model_path(), str(config) if config.is_file() else None
    return str(model), str(config) if config.is_file() else None


def digest2_scores(
    tracks: Sequence[ObservedTrack],
    *,
    obscodes: str | os.PathLike,
    observatory_code: str,
) -> list[Digest2Score | None]:
    """digest2 scores of each track (None for a track it cannot score).

    Parameters
    ----------
    tracks : sequence of ObservedTrack
        UTC MJD, ICRS degrees; ``err_arcsec`` as the per-observation RMS;
        ``mag``/``band`` when known (digest2 assumes V 21 without).
    obscodes : path-like, keyword-only
        The MPC's observatory-code list (``ObsCodes.html`` format).
    observatory_code : str, keyword-only
        The site's MPC code (its parallax constants come from ``obscodes``).

    Returns
    -------
    list of Digest2Score or None
        In the tracks' order; None for fewer than 2 observations or an arc
        digest2 rejects.

    Raises
    ------
    FileNotFoundError
        ``obscodes`` is missing; the message says how to get it.
    """
    path = Path(obscodes)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no observatory-code list for digest2. Run `astrohunter orbits update` "
            "(it downloads the MPC's ObsCodes.html)."
        )
    from digest2 import Digest2, Observation

    model, config = _model_paths()
    out: list[Digest2Score | None] = []
    with _LOCK:
        d2 = Digest2(model_path=model, config_path=config, obscodes_path=str(path))
        try:
            for track in tracks:
                if len(track.mjd) < 2:
                    out.append(None)
                    continue
                mags = track.mag if track.mag is not None else np.full(len(track.mjd), np.nan)
                observations = [
                    Observation(
                        mjd=float(t),
                        ra=float(ra) % 360.0,
                        dec=float(dec),
                        mag=float(m) if np.isfinite(m) and track.band else 0.0,
                        band=track.band or "V",
                        obscode=observatory_code,
                        rms_ra=float(track.err_arcsec),
                        rms_dec=float(track.err_arcsec),
                    )
                    for t, ra, dec, m in zip(track.mjd, track.ra, track.dec, mags, strict=True)
                ]
                try:
                    result = d2.classify_tracklet(observations, is_ades=track.err_arcsec > 0)
                except RuntimeError:
                    out.append(None)
                    continue
                scores = {name: float(result.noid[name]) for name in CLASSES}
                out.append(
                    Digest2Score(
                        neo=scores["NEO"],
                        scores=scores,
                        raw_neo=float(result.raw["NEO"]),
                        rms_arcsec=float(result.rms),
                    )
                )
        finally:
            d2.close()
    return out
