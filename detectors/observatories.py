"""Where the telescope was: MPC observatory codes and site keywords in FITS headers.

A known object's predicted position depends on where it is seen from: from a
site on the Earth's surface instead of the geocentre it shifts by up to
8.8"/Delta (AU), 2.5" for a main-belt asteroid near opposition and arcminutes
for a close NEO. So the observer comes from the FITS header's site keywords
when they are there, else from the observatory code's parallax constants in
the MPC's list, else the geocentre (with a warning, never silently).

The MPC's list (``ObsCodes.html``) has one line per code: the code (columns
1-3), east longitude in degrees (4-13), rho cos phi' (14-21) and rho sin phi'
(22-30) in Earth equatorial radii, and the name. Space telescopes have blank
constants and no fixed site.

A `Site` holds the geocentric Earth-fixed (ITRS) position in metres.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation

__all__ = [
    "ObservatoryCodes",
    "Site",
    "SiteWarning",
    "match_site",
    "observer_site",
    "parse_obscodes",
    "site_from_header",
]

EARTH_RADIUS_M = 6378137.0  # the parallax constants' unit (WGS84 equatorial radius)
_CODE = re.compile(r"[0-9A-Z]\d\d")


class SiteWarning(UserWarning):
    """The observer's site is a fallback (geocentre) or was guessed."""


@dataclass(frozen=True)
class Site:
    """An observer fixed on the Earth.

    Attributes
    ----------
    itrs_m : (float, float, float)
        Geocentric Earth-fixed (ITRS) position, metres; (0, 0, 0) is the geocentre.
    code : str or None
        MPC observatory code, when known.
    name : str
        What it is, for messages.
    source : str
        Where it came from (header keywords, the code list, or the geocentre).
    """

    itrs_m: tuple[float, float, float]
    code: str | None = None
    name: str = ""
    source: str = ""

    @classmethod
    def geocentre(cls) -> Site:
        return cls((0.0, 0.0, 0.0), code="500", name="geocentre", source="geocentric")

    @classmethod
    def from_geodetic(
        cls, lon_deg: float, lat_deg: float, height_m: float = 0.0, **kwargs: Any
    ) -> Site:
        """A site from WGS84 east longitude, geodetic latitude (degrees) and height (m)."""
        if not (-90.0 <= lat_deg <= 90.0 and math.isfinite(lon_deg)):
            raise ValueError(f"latitude {lat_deg} / longitude {lon_deg}: not a site on the Earth")
        loc = EarthLocation.from_geodetic(lon_deg * u.deg, lat_deg * u.deg, height_m * u.m)
        return cls(tuple(float(v) for v in loc.to_value(u.m)), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_parallax(cls, lon_deg: float, rho_cos: float, rho_sin: float, **kwargs: Any) -> Site:
        """A site from the MPC's parallax constants (east longitude, rho cos phi', rho sin phi')."""
        lon = math.radians(lon_deg)
        xy = rho_cos * EARTH_RADIUS_M
        return cls((xy * math.cos(lon), xy * math.sin(lon), rho_sin * EARTH_RADIUS_M), **kwargs)

    @property
    def is_geocentric(self) -> bool:
        return not any(self.itrs_m)

    @property
    def location(self) -> EarthLocation:
        return EarthLocation.from_geocentric(*self.itrs_m, unit=u.m)


@dataclass(frozen=True)
class ObservatoryCodes:
    """The MPC's observatory-code list, column-wise.

    Attributes
    ----------
    code : ndarray of str, shape (N,)
    lon_deg, rho_cos, rho_sin : ndarray of float, shape (N,)
        NaN for space-based and roving codes.
    name : ndarray of str
    """

    code: np.ndarray
    lon_deg: np.ndarray
    rho_cos: np.ndarray
    rho_sin: np.ndarray
    name: np.ndarray

    def __len__(self) -> int:
        return int(self.code.size)

    def site(self, code: str) -> Site:
        """The fixed site of ``code``.

        Raises
        ------
        KeyError
            The code is not in the list, or has no fixed site (a space telescope).
        """
        hits = np.flatnonzero(self.code == code.strip().upper())
        if hits.size == 0:
            raise KeyError(
                f"observatory code {code!r} is not in the MPC's list; check the code, or run "
                "`astrohunter orbits update` to fetch the current list."
            )
        i = int(hits[0])
        if not np.isfinite(self.rho_cos[i]):
            raise KeyError(
                f"observatory code {code!r} ({self.name[i]}) has no fixed site on the Earth "
                "(space-based or roving); give the site in the FITS header instead."
            )
        return Site.from_parallax(
            float(self.lon_deg[i]),
            float(self.rho_cos[i]),
            float(self.rho_sin[i]),
            code=str(self.code[i]),
            name=str(self.name[i]),
            source=f"MPC code {self.code[i]}",
        )


def parse_obscodes(text: str) -> ObservatoryCodes:
    """Parse the MPC's observatory-code list (``ObsCodes.html`` or its plain text).

    HTML tags and the header line are ignored; a line counts when it starts
    with a three-character code. Space-based codes keep NaN constants.

    Parameters
    ----------
    text : str

    Returns
    -------
    ObservatoryCodes

    Raises
    ------
    ValueError
        No code line at all (the file is not the code list).
    """
    codes, lons, coss, sins, names = [], [], [], [], []
    for raw in re.sub(r"<[^>]*>", "", text).splitlines():
        line = raw.rstrip()
        if len(line) < 4 or not _CODE.fullmatch(line[:3]) or line[3] != " ":
            continue
        values = []
        for start, end in ((4, 13), (13, 21), (21, 30)):
            try:
                values.append(float(line[start:end]))
            except ValueError:
                values.append(math.nan)
        codes.append(line[:3])
        lons.append(values[0])
        coss.append(values[1])
        sins.append(values[2])
        names.append(line[30:].strip())
    if not codes:
        raise ValueError(
            "no observatory code lines found: expected the MPC's ObsCodes list "
            "(lines like '688 248.4640 0.82675 +0.56080 Lowell Observatory')."
        )
    return ObservatoryCodes(
        code=np.array(codes),
        lon_deg=np.array(lons),
        rho_cos=np.array(coss),
        rho_sin=np.array(sins),
        name=np.array(names),
    )


def match_site(
    codes: ObservatoryCodes, site: Site, *, tolerance_m: float = 5000.0
) -> tuple[str, float] | None:
    """The observatory code nearest a site, when one lies within ``tolerance_m``.

    Parameters
    ----------
    codes : ObservatoryCodes
    site : Site
    tolerance_m : float, keyword-only
        Largest distance between the site and the listed one, metres. The
        list's constants are rounded to about 60 m; headers often give the
        site to 0.01 deg (1 km).

    Returns
    -------
    (str, float) or None
        The code and its distance in metres, or None when none is close enough
        (or the site is the geocentre).
    """
    if site.is_geocentric or len(codes) == 0:
        return None
    lon = np.radians(codes.lon_deg)
    xyz = np.stack(
        [
            codes.rho_cos * np.cos(lon) * EARTH_RADIUS_M,
            codes.rho_cos * np.sin(lon) * EARTH_RADIUS_M,
            codes.rho_sin * EARTH_RADIUS_M,
        ],
        axis=1,
    )
    dist = np.linalg.norm(xyz - np.asarray(site.itrs_m), axis=1)
    dist[~np.isfinite(dist)] = np.inf
    best = int(np.argmin(dist))
    if dist[best] > tolerance_m:
        return None
    return str(codes.code[best]), float(dist[best])


# --------------------------------------------------------------------------- FITS headers

# (latitude, longitude, height) keyword sets, most specific first.
_SITE_KEYS = (
    ("OBSGEO-B", "OBSGEO-L", "OBSGEO-H"),
    ("LATITUDE", "LONGITUD", "ALTITUDE"),
    ("SITELAT", "SITELONG", "SITEELEV"),
    ("OBS-LAT", "OBS-LONG", "OBS-ELEV"),
    ("LAT-OBS", "LONG-OBS", "ALT-OBS"),
    ("HIERARCH ESO TEL GEOLAT", "HIERARCH ESO TEL GEOLON", "HIERARCH ESO TEL GEOELEV"),
)
_ANGLE = re.compile(
    r"^\s*([NSEW+-]?)\s*(\d+(?:\.\d*)?)(?:[\s:dh°]+(\d+(?:\.\d*)?))?"
    r"(?:[\s:m']+(\d+(?:\.\d*)?))?\s*[s\"]?\s*([NSEW]?)\s*$",
    re.I,
)


def _angle(value: Any) -> tuple[float, str] | None:
    """Degrees from a number or a sexagesimal string, and any N/S/E/W letter."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return (float(value), "") if math.isfinite(value) else None
    match = _ANGLE.match(str(value))
    if not match:
        return None
    sign, d, m, s, letter = match.groups()
    degrees = float(d) + float(m or 0) / 60.0 + float(s or 0) / 3600.0
    hemisphere = (letter or (sign if sign.upper() in "NSEW" and sign else "")).upper()
    if sign == "-":
        degrees = -degrees
    return degrees, hemisphere


def _height(header: Mapping[str, Any], key: str, comment: str) -> float:
    """Height in metres, or 0 when the keyword is missing or is not a height.

    ``ALTITUDE`` in many headers is the telescope's pointing altitude in
    degrees; it counts as a height only when its comment says metres or the
    value could not be an angle. A height 1 km off moves a prediction by
    less than 0.02" beyond 0.1 AU, so 0 is a safe default.
    """
    value = header.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return 0.0
    text = comment.lower()
    says_metres = bool(re.search(r"\bm\b|meter|metre|\[m\]|elev|height|above sea", text))
    if key in ("ALTITUDE", "ALT-OBS") and not says_metres and abs(value) <= 90.0:
        return 0.0
    if "km" in text:
        return float(value) * 1000.0
    return float(value)


def site_from_header(header: Any) -> Site | None:
    """The observatory site given by a FITS header's keywords, if any.

    Reads ``OBSGEO-X/Y/Z`` (metres), or a latitude/longitude/height set:
    ``OBSGEO-B/L/H``, ``LATITUDE/LONGITUD/ALTITUDE``, ``SITELAT/SITELONG/
    SITEELEV``, ``OBS-LAT/OBS-LONG/OBS-ELEV``, ``LAT-OBS/LONG-OBS/ALT-OBS``
    and ESO's ``TEL GEOLAT/GEOLON/GEOELEV``. Values may be numbers or
    sexagesimal strings with N/S/E/W letters. Longitude is east-positive (the
    FITS convention) unless the value says ``W`` or the keyword's comment says
    west longitude, as some observatories write it.

    Parameters
    ----------
    header : astropy.io.fits.Header or mapping

    Returns
    -------
    Site or None
        None when the header has no usable site.
    """
    comments = getattr(header, "comments", None)

    def comment(key: str) -> str:
        try:
            return str(comments[key]) if comments is not None else ""
        except KeyError:
            return ""

    xyz = [header.get(k) for k in ("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z")]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in xyz):
        radius = math.sqrt(sum(float(v) ** 2 for v in xyz))
        if 6.3e6 < radius < 6.4e6:
            return Site(tuple(float(v) for v in xyz), source="header OBSGEO-X/Y/Z")  # type: ignore[arg-type]
    for lat_key, lon_key, height_key in _SITE_KEYS:
        if lat_key not in header or lon_key not in header:
            continue
        lat = _angle(header[lat_key])
        lon = _angle(header[lon_key])
        if lat is None or lon is None:
            continue
        lat_deg = -abs(lat[0]) if lat[1] == "S" else lat[0]
        lon_deg = lon[0]
        lon_comment = comment(lon_key).lower()
        if lon[1] == "W" or ("west" in lon_comment and "east" not in lon_comment):
            lon_deg = -lon_deg if lon[1] != "W" else -abs(lon_deg)
        if not -90.0 <= lat_deg <= 90.0 or not -360.0 <= lon_deg <= 360.0:
            continue
        height = _height(header, height_key, comment(height_key))
        return Site.from_geodetic(
            lon_deg, lat_deg, height, source=f"header {lat_key}/{lon_key}/{height_key}"
        )
    return None


def observer_site(
    header: Any | None = None,
    *,
    code: str | None = None,
    codes: ObservatoryCodes | None = None,
) -> Site:
    """The observer for predictions: header site, else the code's site, else the geocentre.

    Parameters
    ----------
    header : FITS header or mapping, optional
        Read with `site_from_header`.
    code : str, keyword-only, optional
        MPC observatory code (from the user, the settings or the header).
    codes : ObservatoryCodes, keyword-only, optional
        The code list, to look ``code`` up and to name the header's site.

    Returns
    -------
    Site
        With ``code`` set when given or when the header's site matches a
        listed one within 5 km.

    Warns
    -----
    SiteWarning
        When falling back to the geocentre (predictions then miss the
        topocentric parallax, up to 8.8"/Delta).
    """
    site = site_from_header(header) if header is not None else None
    if site is not None:
        matched = match_site(codes, site) if codes is not None else None
        name = ""
        if code is None and matched is not None:
            code = matched[0]
        if code is not None and codes is not None and code in set(codes.code.tolist()):
            name = str(codes.name[codes.code == code][0])
        return Site(site.itrs_m, code=code, name=name, source=site.source)
    if code is not None and code != "500" and codes is not None:
        return codes.site(code)
    if code is not None and code != "500":
        warnings.warn(
            f"observatory code {code} without the MPC's code list and no site in the FITS "
            'header: predicting from the geocentre (up to 8.8"/Delta off). Run '
            "`astrohunter orbits update` to fetch the code list.",
            SiteWarning,
            stacklevel=2,
        )
        return Site(
            (0.0, 0.0, 0.0), code=code, name="geocentre", source="geocentric (no code list)"
        )
    if code is None:
        warnings.warn(
            "no observatory site in the FITS header and no observatory code: predicting from "
            'the geocentre (up to 8.8"/Delta off). Give --observatory CODE.',
            SiteWarning,
            stacklevel=2,
        )
    return Site.geocentre()
