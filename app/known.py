"""Which tracks are known objects: the catalogue offline, SkyBoT online, or neither.

`identify_known` is the one call the engine's callers (CLI ``detect``, the
pipeline) make after the search: it picks the observer (header site, else
the observatory code's site, else the geocentre with a warning), the source
(``--known auto|mpcorb|skybot|none``) and returns the identifications, the
objects predicted in the field, and how long it took. ``auto`` uses the
catalogue when one is given or downloaded, else asks SkyBoT; a SkyBoT that
cannot be reached leaves every track unidentified with the reason, and the
job finishes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from detectors.errors import InputError
from detectors.identify import Identification, IdentifyResult, ObservedTrack, identify_tracks
from detectors.observatories import (
    ObservatoryCodes,
    Site,
    SiteWarning,
    match_site,
    observer_site,
    site_from_header,
)
from detectors.predict import Footprint, predict_catalog

from .catalog import catalog_path, load_obscodes, load_orbits, obscodes_path
from .config import Settings
from .skybot import identify_with_skybot

__all__ = ["KnownOutcome", "identify_known", "resolve_observatory_code"]

Mode = Literal["auto", "mpcorb", "skybot", "none"]


@dataclass(frozen=True)
class KnownOutcome:
    """The result of `identify_known`.

    ``site`` is the observer used; ``observatory_code`` the MPC code for
    reports (None when none could be found: then reports must ask for one);
    ``notes`` what was assumed (a geocentric fallback, a missing catalogue);
    ``seconds`` the identification's wall time (for ``timings_s.identify``).
    """

    result: IdentifyResult
    site: Site
    observatory_code: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)


def resolve_observatory_code(
    *,
    given: str | None,
    settings: Settings,
    header_code: str | None,
    site: Site | None,
    codes: ObservatoryCodes | None,
) -> str | None:
    """The MPC code for reports: given, else settings, else the header's, else the header site's.

    Parameters
    ----------
    given : str or None, keyword-only
        ``--observatory``.
    settings : Settings, keyword-only
        ``ASTROHUNTER_OBSERVATORY``.
    header_code : str or None, keyword-only
        A code the FITS header names (``MPCCODE``, ``OBSCODE``...).
    site, codes : keyword-only
        The header's site (`site_from_header`) and the code list: the nearest
        listed site within 5 km names the code.

    Returns
    -------
    str or None
        Never a silent ``500``: None when nothing names the site, so a report
        can ask for ``--observatory``.
    """
    for code in (given, settings.observatory_code, header_code):
        if code:
            return code.strip().upper()
    if site is not None and codes is not None:
        matched = match_site(codes, site)
        if matched is not None:
            return matched[0]
    return None


def identify_known(
    tracks: Sequence[ObservedTrack],
    *,
    footprint: Footprint | None,
    frame_mjd: np.ndarray,
    header: Any,
    settings: Settings,
    mode: Mode | None = None,
    orbits: Path | None = None,
    observatory_code: str | None = None,
    header_code: str | None = None,
) -> KnownOutcome:
    """Identify tracks as known objects, with what was predicted in the field.

    Parameters
    ----------
    tracks : sequence of ObservedTrack
    footprint : Footprint or None
        The reference grid's sky solution and shape (None only with mode "none").
    frame_mjd : array_like
        Every frame's UTC MJD at mid-exposure.
    header : FITS header
        The reference frame's header (site keywords).
    settings : Settings
    mode : {"auto", "mpcorb", "skybot", "none"}, keyword-only, optional
        Default ``settings.known``.
    orbits : Path, keyword-only, optional
        ``--orbits``; default ``ASTROHUNTER_ORBITS`` or the downloaded catalogue.
    observatory_code : str, keyword-only, optional
        ``--observatory``.
    header_code : str, keyword-only, optional
        A code the header names (``Frame.observatory_code``).

    Returns
    -------
    KnownOutcome

    Raises
    ------
    InputError
        ``mode="mpcorb"`` without any catalogue, or an unreadable catalogue.
    """
    t0 = time.perf_counter()
    mode = mode or settings.known
    notes: list[str] = []
    codes_file = obscodes_path(settings)
    codes = load_obscodes(codes_file) if codes_file is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SiteWarning)
        code = resolve_observatory_code(
            given=observatory_code,
            settings=settings,
            header_code=header_code,
            site=site_from_header(header) if header is not None else None,
            codes=codes,
        )
        site = observer_site(header, code=code, codes=codes)
    notes += [str(w.message) for w in caught if issubclass(w.category, SiteWarning)]
    frame_mjd = np.asarray(frame_mjd, dtype=float)

    if mode == "none":
        result = IdentifyResult(
            tracks=[
                Identification(track_id=t.id, reason="identification off (--known none)")
                for t in tracks
            ],
            source="none",
        )
        return KnownOutcome(result, site, code, time.perf_counter() - t0, notes)

    if footprint is None:
        raise InputError("known objects need the field's sky positions; the frames have none")
    path = catalog_path(settings, orbits) if mode in ("auto", "mpcorb") else None
    if mode == "mpcorb" and path is None:
        raise InputError(
            "--known mpcorb needs an orbit catalogue: run `astrohunter orbits update`, or give "
            "--orbits FILE (or ASTROHUNTER_ORBITS)."
        )
    if path is not None:
        catalog = load_orbits(settings, path)
        assert catalog is not None
        times = np.concatenate([frame_mjd, *[np.asarray(t.mjd, float) for t in tracks]])
        predictions = predict_catalog(catalog, times, site=site, footprint=footprint)
        result = identify_tracks(
            tracks,
            predictions,
            footprint=footprint,
            frame_mjd=frame_mjd,
            source="mpcorb",
            catalog_size=len(catalog),
        )
        if catalog.skipped:
            notes.append(f"{catalog.skipped} malformed line(s) of {path} skipped")
        return KnownOutcome(result, site, code, time.perf_counter() - t0, notes)

    if not code:
        notes.append("no observatory code for SkyBoT: asked for geocentric positions (500)")
    result = identify_with_skybot(
        list(tracks),
        footprint=footprint,
        frame_mjd=frame_mjd,
        observatory_code=code or "500",
        url=settings.skybot_url,
        timeout_s=settings.skybot_timeout_s,
    )
    return KnownOutcome(result, site, code, time.perf_counter() - t0, notes)
