"""Known objects from IMCCE's SkyBoT cone search, when no orbit catalogue is at hand.

One query at mid-sequence through ``astroquery.imcce`` returns every
catalogued body predicted in a cone around the field, with its position,
motion, V and positional uncertainty; `detectors.predict.predict_linear`
moves them to each observation time and `identify_tracks` matches them.

Topocentric, really. astroquery (<= 0.4.11) sends the observatory code as
``-loc``, which SkyBoT's current API reads as geodetic coordinates, so any
code is silently answered geocentrically: up to 8.8"/Delta off, 2.5" for a
main-belt asteroid (astroquery issue #3515). `SkybotQuery` sends it as
``-observer``, the parameter SkyBoT documents for MPC codes.

When SkyBoT cannot be reached (no network, timeout, an error page), the
job goes on: every track is unidentified with the reason.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from astroquery.imcce import SkybotClass

from detectors.identify import Identification, IdentifyResult, ObservedTrack, identify_tracks
from detectors.orbits import pack_designation
from detectors.predict import Footprint, KnownObject, predict_linear

__all__ = [
    "SkybotAnswer",
    "SkybotQuery",
    "SkybotUnavailable",
    "identify_with_skybot",
    "skybot_cone",
]


class SkybotUnavailable(ConnectionError):
    """SkyBoT could not be asked, or did not answer usably."""


class SkybotQuery(SkybotClass):
    """astroquery's SkyBoT client with the observatory sent as ``-observer``.

    Parameters
    ----------
    url : str
        The cone-search endpoint (``ASTROHUNTER_SKYBOT_URL``).
    timeout_s : float
        Connect and read timeout.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__()
        self._url = url
        self._timeout = timeout_s

    def cone_search_async(self, coo: Any, rad: Any, epoch: Any, **kwargs: Any) -> Any:
        get_payload = kwargs.pop("get_query_payload", False)
        self._get_raw_response = kwargs.pop("get_raw_response", False)
        kwargs.pop("cache", None)
        payload = super().cone_search_async(coo, rad, epoch, get_query_payload=True, **kwargs)
        payload["-observer"] = payload.pop("-loc")
        if get_payload:
            return payload
        response = self._request(
            method="GET", url=self._url, params=payload, timeout=self._timeout, cache=False
        )
        response.raise_for_status()
        self._uri = response.url
        return response


@dataclass(frozen=True)
class SkybotAnswer:
    """SkyBoT's bodies in the cone, at ``epoch_mjd`` (UTC), column-wise (arrays of N)."""

    epoch_mjd: float
    objects: list[KnownObject]
    ra: np.ndarray
    dec: np.ndarray
    ra_rate: np.ndarray
    dec_rate: np.ndarray
    v_mag: np.ndarray
    delta_au: np.ndarray
    position_error_arcsec: np.ndarray


def _known(number: Any, name: str) -> KnownObject:
    name = str(name).strip()
    num = None if np.ma.is_masked(number) or int(number) <= 0 else int(number)
    designation = f"({num}) {name}" if num is not None else name
    try:
        packed = pack_designation(str(num) if num is not None else name)
    except ValueError:
        packed = None
    named = num is not None and not name[:4].isdigit()
    return KnownObject(
        designation=designation,
        packed=packed,
        number=num,
        name=name if named else None,
        source="skybot",
    )


def _column(table: Any, name: str, unit: Any = None) -> np.ndarray:
    col = table[name]
    value = col.to_value(unit) if unit is not None and hasattr(col, "to_value") else col
    return np.ma.filled(np.ma.asarray(value, dtype=float), np.nan)


def skybot_cone(
    ra: float,
    dec: float,
    radius_deg: float,
    epoch_mjd: float,
    *,
    observatory_code: str,
    url: str,
    timeout_s: float,
) -> SkybotAnswer:
    """Ask SkyBoT which bodies are in a cone at one epoch, seen from an observatory.

    Parameters
    ----------
    ra, dec : float
        Cone centre, ICRS degrees.
    radius_deg : float
        Cone radius (SkyBoT allows up to 10 deg).
    epoch_mjd : float
        UTC MJD.
    observatory_code : str, keyword-only
        MPC code (``500`` for the geocentre).
    url : str, keyword-only
    timeout_s : float, keyword-only

    Returns
    -------
    SkybotAnswer
        Empty when SkyBoT finds nothing.

    Raises
    ------
    SkybotUnavailable
        Network failure, timeout, an HTTP error, or an answer that is not
        SkyBoT's VOTable; the message says which.
    """
    import requests

    query = SkybotQuery(url, timeout_s)
    epoch = Time(epoch_mjd, format="mjd", scale="utc")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NoResultsWarning and VOTable nits
            table = query.cone_search(
                SkyCoord(ra * u.deg, dec * u.deg),
                radius_deg * u.deg,
                epoch,
                location=observatory_code,
                position_error=120,
                find_planets=False,
                find_comets=True,
                find_asteroids=True,
            )
    except requests.exceptions.Timeout as err:
        raise SkybotUnavailable(f"SkyBoT at {url} did not answer within {timeout_s:g} s") from err
    except requests.exceptions.RequestException as err:
        raise SkybotUnavailable(
            f"SkyBoT at {url} unreachable ({type(err).__name__}: {err})"
        ) from err
    except Exception as err:  # astropy's VOTable reader raises many kinds
        raise SkybotUnavailable(
            f"SkyBoT at {url} answered something that is not its VOTable "
            f"({type(err).__name__}: {err})"
        ) from err
    if len(table) == 0:
        empty = np.zeros(0)
        return SkybotAnswer(epoch_mjd, [], empty, empty, empty, empty, empty, empty, empty)
    objects = [_known(n, name) for n, name in zip(table["Number"], table["Name"], strict=True)]
    return SkybotAnswer(
        epoch_mjd=float(epoch_mjd),
        objects=objects,
        ra=_column(table, "RA", u.deg),
        dec=_column(table, "DEC", u.deg),
        ra_rate=_column(table, "RA_rate", u.arcsec / u.hour),
        dec_rate=_column(table, "DEC_rate", u.arcsec / u.hour),
        v_mag=_column(table, "V"),
        delta_au=_column(table, "geodist", u.au),
        position_error_arcsec=_column(table, "posunc", u.arcsec),
    )


def identify_with_skybot(
    tracks: list[ObservedTrack],
    *,
    footprint: Footprint,
    frame_mjd: np.ndarray,
    observatory_code: str,
    url: str,
    timeout_s: float,
) -> IdentifyResult:
    """Identify tracks with one SkyBoT query at mid-sequence.

    Returns
    -------
    IdentifyResult
        ``source="skybot"``. When SkyBoT is unavailable every track is
        unidentified with ``reason`` ``"SkyBoT unavailable: ..."`` and
        ``known_in_field`` is empty; no exception escapes.
    """
    frame_mjd = np.asarray(frame_mjd, dtype=float)
    mid = 0.5 * (frame_mjd.min() + frame_mjd.max())
    cra, cdec, radius = footprint.centre_radius()
    half_span_h = 0.5 * float(np.ptp(frame_mjd)) * 24.0
    # Room for bodies moving up to 1 deg/day that enter or leave during the sequence.
    reach = radius + 150.0 * half_span_h / 3600.0 + 2.0 / 60.0
    try:
        answer = skybot_cone(
            cra,
            cdec,
            reach,
            mid,
            observatory_code=observatory_code,
            url=url,
            timeout_s=timeout_s,
        )
    except SkybotUnavailable as err:
        reason = f"SkyBoT unavailable: {err}"
        return IdentifyResult(
            tracks=[Identification(track_id=t.id, reason=reason) for t in tracks],
            source="skybot",
        )
    times = np.concatenate([frame_mjd, *[np.asarray(t.mjd, float) for t in tracks]])
    finite = np.isfinite(answer.delta_au)
    predictions = predict_linear(
        answer.objects,
        epoch_mjd=answer.epoch_mjd,
        ra=answer.ra,
        dec=answer.dec,
        ra_rate=answer.ra_rate,
        dec_rate=answer.dec_rate,
        v_mag=answer.v_mag,
        delta_au=np.where(finite, answer.delta_au, 1.0),
        position_error_arcsec=np.where(
            np.isfinite(answer.position_error_arcsec), answer.position_error_arcsec, math.inf
        ),
        mjd=times,
    )
    return identify_tracks(
        tracks,
        predictions,
        footprint=footprint,
        frame_mjd=frame_mjd,
        source="skybot",
        catalog_size=len(answer.objects),
    )
