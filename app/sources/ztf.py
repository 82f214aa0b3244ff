"""``ztf``: Zwicky Transient Facility science-image cutouts from IRSA.

IRSA serves ZTF through its Image Server (IBE), the service
``astroquery.ipac.irsa.ibe`` wraps; this module speaks to the same URLs
directly so that every request goes through the shared downloader
(timeouts, retries, validation, cache):

1. metadata: ``{IRSA}/search/ztf/products/sci?POS=ra,dec&ct=ipac_table``
   (with ``columns`` and a ``where`` clause on ``obsjd`` for the time
   window) answers an IPAC table with one row per science image (CCD
   quadrant) containing the position;
2. the night: rows are grouped by night (``nid``) and filter, and the group
   with the most exposures wins, so the frames are one filter over one night;
3. cutouts: ``{IRSA}/data/ztf/products/sci/YYYY/MMDD/dddddd/
   ztf_<filefracday>_<field:06>_<filtercode>_c<ccdid:02>_<imgtypecode>_q<qid>_sciimg.fits
   ?center=ra,dec&size=<2 radius>arcmin&gzip=false``, one per exposure; IBE
   keeps the image header (WCS, DATE-OBS, OBSMJD, EXPTIME, GAIN, SATURATE,
   MAGZP, FILTER) and moves CRPIX to the cutout;
4. with ``survey_reference``, the reference image of the chosen night's
   field, CCD, quadrant and filter: ``{IRSA}/search/ztf/products/ref`` (the
   same IPAC-table search) says whether one exists, and the cutout comes
   from ``{IRSA}/data/ztf/products/ref/<fff>/field<field:06>/<filtercode>/
   ccd<ccdid:02>/q<qid>/ztf_<field:06>_<filtercode>_c<ccdid:02>_q<qid>_refimg.fits``
   (``fff`` the field's thousands, zero-padded), cached with the frames.

Coverage: declination above about -31 degrees, from March 2018. Images in
their proprietary period need an IRSA login, which this source does not do.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import ascii as astropy_ascii
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from detectors.errors import InputError

from ..config import get_settings
from . import FetchProgress, FetchRequest
from .http import Downloader, validate_fits
from .survey import Delivery, FileProgress, SurveySource, parse_window, window_text

__all__ = ["DEC_MIN", "START_MJD", "ZtfSource", "choose_night", "cutout_path", "reference_path"]

#: Southern limit of the ZTF survey (Palomar), degrees.
DEC_MIN = -31.0
#: First ZTF science images (2018-03-17 UTC).
START_MJD = 58194.0
#: Most cutouts taken from one night.
MAX_FRAMES = 20
#: Metadata columns read (names as IBE's ZTF sci table spells them).
COLUMNS = (
    "field",
    "ccdid",
    "qid",
    "filtercode",
    "imgtypecode",
    "filefracday",
    "obsjd",
    "exptime",
    "nid",
    "expid",
    "ra",
    "dec",
    "infobits",
    "seeing",
    "maglimit",
)
_JD_MJD = 2400000.5


def cutout_path(row: Any) -> str:
    """The path of a science image under ``data/ztf/products/sci/`` from its metadata row."""
    day = f"{int(row['filefracday']):014d}"
    filtercode = str(row["filtercode"]).strip()
    imgtypecode = str(row["imgtypecode"]).strip() or "o"
    name = (
        f"ztf_{day}_{int(row['field']):06d}_{filtercode}_c{int(row['ccdid']):02d}_"
        f"{imgtypecode}_q{int(row['qid'])}_sciimg.fits"
    )
    return f"{day[:4]}/{day[4:8]}/{day[8:]}/{name}"


#: Metadata columns read from IBE's ZTF reference-image table.
REF_COLUMNS = ("field", "ccdid", "qid", "filtercode", "nframes", "maglimit")


def reference_path(field: int, filtercode: str, ccdid: int, qid: int) -> str:
    """The path of a reference image under ``data/ztf/products/ref/``."""
    return (
        f"{field // 1000:03d}/field{field:06d}/{filtercode}/ccd{ccdid:02d}/q{qid}/"
        f"ztf_{field:06d}_{filtercode}_c{ccdid:02d}_q{qid}_refimg.fits"
    )


def _separation_deg(ra1: Any, dec1: Any, ra2: float, dec2: float) -> np.ndarray:
    r1, d1 = np.radians(np.asarray(ra1, float)), np.radians(np.asarray(dec1, float))
    r2, d2 = np.radians(ra2), np.radians(dec2)
    cos = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _night(row: Any) -> int:
    """The night of an image: IRSA's night id, else the JD's integer part (noon UTC,
    daytime at Palomar)."""
    if "nid" in row.colnames and not np.ma.is_masked(row["nid"]):
        return int(row["nid"])
    return math.floor(float(row["obsjd"]))


def choose_night(table: Table, *, ra: float, dec: float, max_frames: int = MAX_FRAMES) -> Table:
    """The exposures of the night (and filter) with the most exposures of the position.

    Parameters
    ----------
    table : astropy.table.Table
        IBE's ZTF sci metadata rows (``nid``, ``filtercode``, ``expid``,
        ``obsjd``, ``ra``, ``dec``, ``imgtypecode`` columns).
    ra, dec : float, keyword-only
        The position; when several images of one exposure contain it (CCD
        and field overlaps), the one whose centre is nearest is kept.
    max_frames : int, keyword-only
        At most this many, evenly spread over the night.

    Returns
    -------
    astropy.table.Table
        One row per exposure, sorted by ``obsjd``; empty when ``table`` is.
        Ties between nights go to the later night.
    """
    if len(table) == 0:
        return table
    rows = table
    if "imgtypecode" in rows.colnames:
        rows = rows[[str(c).strip() in ("o", "") for c in rows["imgtypecode"]]]
    night = [_night(row) for row in rows]
    groups: dict[tuple[int, str], dict[Any, int]] = defaultdict(dict)
    sep = _separation_deg(rows["ra"], rows["dec"], ra, dec)
    for i, (n, f, e) in enumerate(zip(night, rows["filtercode"], rows["expid"], strict=True)):
        best = groups[(int(n), str(f).strip())]
        if e not in best or sep[i] < sep[best[e]]:
            best[e] = i
    if not groups:
        return rows[:0]
    key = max(groups, key=lambda k: (len(groups[k]), k[0]))
    picked = rows[sorted(groups[key].values())]
    picked.sort("obsjd")
    if len(picked) > max_frames:
        keep = np.unique(np.round(np.linspace(0, len(picked) - 1, max_frames)).astype(int))
        picked = picked[keep]
    return picked


def _fix_header(path: Path, row: Any) -> None:
    """Give a cutout the time keywords the reader needs when IBE's header lacks them."""
    header = fits.getheader(path)
    missing = {}
    if "DATE-OBS" not in header and "MJD-OBS" not in header:
        mjd = header.get("OBSMJD", float(row["obsjd"]) - _JD_MJD)
        missing["MJD-OBS"] = (float(mjd), "UTC MJD, exposure start (from OBSMJD/obsjd)")
    if "EXPTIME" not in header and "exptime" in row.colnames:
        missing["EXPTIME"] = (float(row["exptime"]), "[s] from IRSA metadata")
    if missing:
        with fits.open(path, mode="update") as hdul:
            hdul[0].header.update(missing)


class ZtfSource(SurveySource):
    name = "ztf"
    description = (
        "ZTF science-image cutouts from IRSA (1 arcsec pixels, 30 s exposures): the night "
        "with the most exposures of the position in the time window"
    )
    coverage = "Dec > -31 deg, 2018-03-17 onward (public data releases)"

    def validate(self, options: dict[str, Any]) -> None:
        _, end = parse_window(options)
        if end is not None and end < START_MJD:
            raise InputError("end: ZTF began on 2018-03-17; the time window is before it")

    def cache_parts(self, request: FetchRequest) -> dict[str, Any]:
        return {
            **super().cache_parts(request),
            "max_frames": self._max_frames(request),
            "survey_reference": bool(request.options.get("survey_reference", False)),
        }

    @staticmethod
    def _max_frames(request: FetchRequest) -> int:
        return int(request.options.get("frames", MAX_FRAMES))

    def metadata(self, request: FetchRequest, http: Downloader) -> Table:
        """IBE's table of ZTF science images containing the position (in the window)."""
        start, end = parse_window(request.options)
        where = []
        if start is not None:
            where.append(f"obsjd>={start + _JD_MJD:.6f}")
        if end is not None:
            where.append(f"obsjd<={end + _JD_MJD:.6f}")
        return self._table("sci", request, http, COLUMNS, where)

    def _table(
        self,
        product: str,
        request: FetchRequest,
        http: Downloader,
        columns: tuple[str, ...],
        where: list[str],
    ) -> Table:
        """IBE's IPAC table of ZTF ``product`` images (``sci`` or ``ref``) containing the position."""
        params: dict[str, Any] = {
            "POS": f"{request.ra:.7f},{request.dec:.7f}",
            "ct": "ipac_table",
            "columns": ",".join(columns),
        }
        if where:
            params["where"] = " AND ".join(where)
        url = get_settings().irsa_url.rstrip("/") + f"/search/ztf/products/{product}"
        text = http.get_text(url, params=params)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return astropy_ascii.read(text, format="ipac", guess=False)
        except Exception as err:
            raise InputError(
                f"ztf: IRSA's answer to {url} is not an IPAC table ({err}): "
                f"{' '.join(text[:200].split())!r}"
            ) from err

    def download(
        self, request: FetchRequest, into: Path, http: Downloader, progress: FetchProgress
    ) -> Delivery:
        if request.dec < DEC_MIN:
            raise InputError(
                f"ztf: Dec {request.dec:.4f} is south of ZTF's limit ({DEC_MIN} deg); "
                "try source 'tess'"
            )
        start, end = parse_window(request.options)
        progress(0, 1, "ztf: asking IRSA which exposures contain the position")
        table = self.metadata(request, http)
        where = f"RA {request.ra:.5f} Dec {request.dec:.5f}{window_text(start, end)}"
        if len(table) == 0:
            raise InputError(f"ztf: IRSA has no ZTF science images of {where}")
        rows = choose_night(
            table, ra=request.ra, dec=request.dec, max_frames=self._max_frames(request)
        )
        if len(rows) < 3:
            raise InputError(
                f"ztf: the best night has only {len(rows)} exposure(s) of {where} "
                f"({len(table)} images in all); a search needs 3 or more in one night. "
                "Widen the time window or try source 'tess'."
            )
        day = Time(float(rows["obsjd"][0]), format="jd", scale="utc").isot[:10]
        filtercode = str(rows["filtercode"][0]).strip()
        notes = [
            f"ztf: night of {day} in {filtercode}: {len(rows)} exposures "
            f"(of {len(table)} images of the position{window_text(start, end)})"
        ]
        size_arcmin = 2.0 * request.radius_arcmin
        base = get_settings().irsa_url.rstrip("/") + "/data/ztf/products/sci/"
        bar = FileProgress("ztf", progress, len(rows))
        names: list[str] = []
        for row in rows:
            path = cutout_path(row)
            name = path.rsplit("/", 1)[-1]
            target = into / name
            nbytes = http.download(
                base + path,
                target,
                params={
                    "center": f"{request.ra:.7f},{request.dec:.7f}",
                    "size": f"{size_arcmin:.4f}arcmin",
                    "gzip": "false",
                },
                validate=validate_fits,
                on_bytes=functools.partial(bar.bytes, label=f" {name}"),
            )
            _fix_header(target, row)
            names.append(name)
            bar.file_done(nbytes)
        template = []
        if request.options.get("survey_reference"):
            template = self._reference(request, rows[0], into, http, notes)
        return Delivery(
            names=names,
            notes=notes,
            meta={"night": day, "filter": filtercode, "size_arcmin": size_arcmin},
            template=template,
        )

    def _reference(
        self, request: FetchRequest, row: Any, into: Path, http: Downloader, notes: list[str]
    ) -> list[str]:
        """ZTF's reference image of the night's field, CCD quadrant and filter, cut out."""
        field, ccdid, qid = int(row["field"]), int(row["ccdid"]), int(row["qid"])
        filtercode = str(row["filtercode"]).strip()
        where = [f"field={field}", f"ccdid={ccdid}", f"qid={qid}", f"filtercode='{filtercode}'"]
        refs = self._table("ref", request, http, REF_COLUMNS, where)
        label = f"field {field} c{ccdid:02d} q{qid} {filtercode}"
        if len(refs) == 0:
            raise InputError(
                f"ztf: IRSA has no reference image of {label}; search without "
                "survey_reference (the night's own median)"
            )
        path = reference_path(field, filtercode, ccdid, qid)
        name = path.rsplit("/", 1)[-1]
        http.download(
            get_settings().irsa_url.rstrip("/") + "/data/ztf/products/ref/" + path,
            into / name,
            params={
                "center": f"{request.ra:.7f},{request.dec:.7f}",
                "size": f"{2.0 * request.radius_arcmin:.4f}arcmin",
                "gzip": "false",
            },
            validate=validate_fits,
        )
        frames = refs["nframes"][0] if "nframes" in refs.colnames else "?"
        notes.append(f"ztf: reference image of {label} ({frames} frames) as the template")
        return [name]
