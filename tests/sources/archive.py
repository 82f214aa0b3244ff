"""A fake MAST TESScut and IRSA IBE on 127.0.0.1, answering in the real formats.

`Archive` is an ``http.server`` in a thread (port 0) that counts every
request and can be told to misbehave (drop the connection mid-file, answer
500, send garbage). The builders repackage `detectors.simulate` fields the
way the services deliver data:

- `tesscut_zip`: TESScut's zip of one astrocut cube (primary with
  ``TIMESYS='TDB'``/``BJDREFI``/``SECTOR``, a ``PIXELS`` table with
  ``TIME`` (BTJD, mid-exposure, barycentric), ``TIMECORR``, ``FLUX`` in
  e-/s, ``QUALITY``, ``FFI_FILE`` and the ``1CTYP5``-style column WCS, an
  ``APERTURE`` image with the WCS), laid out as astroquery's test data
  ``astrocut_107.27_-70.0_5x5.zip`` and astrocut's ``TessCubeCutout`` write it;
- `ZtfArchive`: IBE's IPAC-table answer to ``search/ztf/products/sci`` and
  science-image cutouts at ``data/ztf/products/sci/YYYY/MMDD/dddddd/...``
  cut around ``center`` to ``size`` with CRPIX moved, as IBE does.
"""

from __future__ import annotations

import io
import json
import threading
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.time import Time
from astropy.wcs import WCS

from detectors.simulate import SimulatedField, TemplateNight, simulate_field

#: ``handler(path, query) -> (status, content_type, body)``.
Handler = Callable[[str, dict[str, str]], tuple[int, str, bytes]]


@dataclass
class Archive:
    """Routes by path prefix; faults are consumed one per request, in order."""

    routes: dict[str, Handler] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Archive:
        archive = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                with archive.lock:
                    archive.requests.append((parsed.path, query))
                    fault = archive._take_fault(parsed.path)
                if fault == "500":
                    return self._send(500, "text/plain", b"Internal Server Error: try later")
                route = next(
                    (r for p, r in archive.routes.items() if parsed.path.startswith(p)), None
                )
                if route is None:
                    return self._send(404, "text/plain", f"{parsed.path} not found".encode())
                status, ctype, body = route(parsed.path, query)
                if fault == "corrupt":
                    body = b"SIMPLE  =    T / not really\x00\x01\x02" + bytes(range(256)) * 4
                if fault == "drop":
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self._send(status, ctype, body)

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client that hung up early (e.g. refused a file too big for the disk)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _take_fault(self, path: str) -> str | None:
        for prefix, queue in self.faults.items():
            if path.startswith(prefix) and queue:
                return queue.pop(0)
        return None

    def count(self, prefix: str = "/") -> int:
        """Requests whose path starts with ``prefix``."""
        with self.lock:
            return sum(p.startswith(prefix) for p, _ in self.requests)

    def paths(self) -> Counter:
        with self.lock:
            return Counter(p for p, _ in self.requests)


# --------------------------------------------------------------------------- TESS

SECTOR, CAMERA, CCD = 76, 1, 2  # sector 76 observed in April 2024, when the fields are set
TIMECORR_D = 0.0031  # barycentric correction (~4.5 min), as TESS SPOC applies
TESS_CADENCE_MIN = 10.0
TESS_EXPOSURE_S = 475.2  # 600 s x DEADC 0.792


def tess_field(ra: float, dec: float, *, seed: int = 11) -> SimulatedField:
    """A TESS-like field: 21 arcsec pixels, fixed pointing, 10-minute FFIs, one mover."""
    return simulate_field(
        seed=seed,
        shape=(128, 128),
        n_frames=10,
        n_objects=1,
        snr_range=(25.0, 30.0),
        rate_range=(100.0, 120.0),
        ra=ra,
        dec=dec,
        cadence_min=TESS_CADENCE_MIN,
        exptime_s=TESS_EXPOSURE_S,
        pixel_scale_arcsec=21.0,
        dither_px=0.0,
        rotation_deg=0.0,
        star_density_arcmin2=0.05,
        satellite_prob=0.0,
        hot_pixel_fraction=0.0,
        n_bad_columns=0,
        cosmic_rays_per_mpix_min=0.0,
    )


def _btjd(mjd_utc: np.ndarray) -> np.ndarray:
    """UTC MJD at the spacecraft -> TESS TIME (BJD_TDB - 2457000, barycentric)."""
    return Time(mjd_utc, format="mjd", scale="utc").tdb.jd - 2457000.0 + TIMECORR_D


def tesscut_cube(sim: SimulatedField, *, ra: float, dec: float) -> fits.HDUList:
    """A TESScut cube of ``sim``: its frames as good cadences, plus flagged and empty ones.

    Rows: the frames in order, with a QUALITY-flagged cadence after frames 2
    and 5, an empty (all-NaN, off-CCD) cadence after frame 7, and three good
    cadences 8 hours later that a 4-hour window must leave out.
    """
    gain = sim.truth["frames"][0]["gain"]
    mids = np.array([f["mjd_mid"] for f in sim.truth["frames"]])
    step = TESS_CADENCE_MIN / 1440.0
    images, times, quality = [], [], []
    for k, (_, data, _) in enumerate(sim.frames):
        images.append(data * gain / TESS_EXPOSURE_S)  # ADU -> e-/s
        times.append(mids[k])
        quality.append(0)
        if k in (2, 5):  # a momentum dump: flagged, junk pixels
            images.append(np.full_like(data, 1e6))
            times.append(mids[k] + step / 2)
            quality.append(32)
        if k == 7:  # the cutout fell off the CCD
            images.append(np.full_like(data, np.nan))
            times.append(mids[k] + step / 2)
            quality.append(0)
    for j in range(3):  # good data later in the sector
        images.append(sim.frames[j][1] * gain / TESS_EXPOSURE_S)
        times.append(mids[-1] + 8.0 / 24.0 + j * step)
        quality.append(0)
    flux = np.array(images, dtype=np.float32)
    n, h, w = flux.shape
    btjd = _btjd(np.array(times))
    ffi = [
        f"tess{Time(t, format='mjd').strftime('%Y%j%H%M%S')}-s{SECTOR:04d}-{CAMERA}-{CCD}-0205-s_ffic"
        for t in times
    ]
    dim = f"({w}, {h})"
    cols = [
        fits.Column(name="TIME", format="D", unit="BJD - 2457000, days", disp="D14.7", array=btjd),
        fits.Column(
            name="TIMECORR", format="E", unit="d", disp="E14.7", array=np.full(n, TIMECORR_D)
        ),
        fits.Column(name="CADENCENO", format="J", disp="I10", array=np.zeros(n, np.int32)),
        fits.Column(
            name="RAW_CNTS",
            format=f"{h * w}J",
            unit="count",
            dim=dim,
            disp="I8",
            null=-1,
            array=np.full((n, h, w), -1, np.int32),
        ),
        fits.Column(
            name="FLUX", format=f"{h * w}E", unit="e-/s", dim=dim, disp="E14.7", array=flux
        ),
        fits.Column(
            name="FLUX_ERR",
            format=f"{h * w}E",
            unit="e-/s",
            dim=dim,
            disp="E14.7",
            array=np.sqrt(np.abs(flux) / TESS_EXPOSURE_S),
        ),
        fits.Column(
            name="FLUX_BKG", format=f"{h * w}E", unit="e-/s", dim=dim, array=np.zeros_like(flux)
        ),
        fits.Column(
            name="FLUX_BKG_ERR", format=f"{h * w}E", unit="e-/s", dim=dim, array=np.zeros_like(flux)
        ),
        fits.Column(name="QUALITY", format="J", disp="B16.16", array=np.array(quality, np.int32)),
        fits.Column(name="POS_CORR1", format="E", unit="pixel", array=np.zeros(n)),
        fits.Column(name="POS_CORR2", format="E", unit="pixel", array=np.zeros(n)),
        fits.Column(name="FFI_FILE", format="38A", unit="pixel", array=np.array(ffi)),
    ]
    table = fits.BinTableHDU.from_columns(cols)
    wcs = WCS(sim.frames[0][2])
    wh = wcs.to_header()  # PC + CDELT form, as astrocut writes it
    th = table.header
    th["EXTNAME"] = "PIXELS"
    th["INHERIT"] = True
    for n_col in (4, 5, 6, 7, 8):  # the image columns carry the WCS (astrocut's layout)
        th[f"WCAX{n_col}"] = 2
        for i in (1, 2):
            th[f"{i}CTYP{n_col}"] = wh[f"CTYPE{i}"]
            th[f"{i}CRPX{n_col}"] = wh[f"CRPIX{i}"]
            th[f"{i}CRVL{n_col}"] = wh[f"CRVAL{i}"]
            th[f"{i}CUNI{n_col}"] = wh[f"CUNIT{i}"]
            th[f"{i}CDLT{n_col}"] = wh[f"CDELT{i}"]
            for j in (1, 2):
                th[f"{i}{j}PC{n_col}"] = wh.get(f"PC{i}_{j}", 1.0 if i == j else 0.0)
        th[f"WCSN{n_col}P"] = "PHYSICAL"
        th[f"1CRV{n_col}P"] = 1021
        th[f"2CRV{n_col}P"] = 388
    for key, value in {
        "TIMEDEL": TESS_CADENCE_MIN / 1440.0,
        "EXPOSURE": TESS_EXPOSURE_S / 86400.0,
        "DEADC": 0.792,
        "INT_TIME": 1.98,
        "FRAMETIM": 2.0,
        "NUM_FRM": 300,
        "TIMEPIXR": 0.5,
        "GAINA": 5.2,
        "GAINB": 5.1,
        "GAINC": 5.2,
        "GAIND": 5.1,
        # per-read noise chosen so that 300 co-added reads give the simulator's 5 e-
        **{f"READNOI{c}": 5.0 / np.sqrt(300) for c in "ABCD"},
    }.items():
        th[key] = value
    primary = fits.PrimaryHDU()
    ph = primary.header
    for key, value in {
        "ORIGIN": "STScI/MAST",
        "TELESCOP": "TESS",
        "INSTRUME": "TESS Photometer",
        "CREATOR": "astrocut",
        "FFI_TYPE": "SPOC",
        "SECTOR": SECTOR,
        "CAMERA": CAMERA,
        "CCD": CCD,
        "RA_OBJ": ra,
        "DEC_OBJ": dec,
        "TIMEREF": "SOLARSYSTEM",
        "TASSIGN": "SPACECRAFT",
        "TIMESYS": "TDB",
        "BJDREFI": 2457000,
        "BJDREFF": 0.0,
        "TIMEUNIT": "d",
        "TSTART": float(btjd[0]),
        "TSTOP": float(btjd[-1]),
        "RADESYS": "ICRS",
        "EQUINOX": 2000.0,
    }.items():
        ph[key] = value
    aperture = fits.ImageHDU(np.ones((h, w), np.int32), name="APERTURE")
    for card in wh.cards:
        aperture.header[card.keyword] = (card.value, card.comment)
    aperture.header["WCS_MSEP"] = (0.0, "[deg] Max offset between cutout WCS and FFI WCS")
    aperture.header["WCS_SIG"] = (0.0, "[deg] Error measurement of cutout WCS fit")
    aperture.header["INHERIT"] = True
    return fits.HDUList([primary, table, aperture])


def tesscut_zip(cube: fits.HDUList, *, ra: float, dec: float) -> bytes:
    """TESScut's answer: a zip holding the cube under astrocut's file name."""
    _, h, w = cube[1].data["FLUX"].shape
    buffer = io.BytesIO()
    cube.writeto(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        name = f"tess-s{SECTOR:04d}-{CAMERA}-{CCD}_{ra:.6f}_{dec:.6f}_{h}x{w}_astrocut.fits"
        archive.writestr(name, buffer.getvalue())
    return out.getvalue()


def serve_tesscut(archive: Archive, *, ra: float, dec: float, zipped: bytes) -> None:
    """TESScut's ``sector`` and ``astrocut`` services under ``/tesscut/api/v0.1/``."""

    def sector(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        assert {"ra", "dec", "radius"} <= set(query), query
        results = [
            {
                "sectorName": f"tess-s{s:04d}-{CAMERA}-{CCD}",
                "sector": f"{s:04d}",
                "camera": str(CAMERA),
                "ccd": str(CCD),
            }
            for s in (50, SECTOR)
        ]
        return 200, "application/json", json.dumps({"results": results}).encode()

    def astrocut(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        assert query["units"] == "px" and int(query["sector"]) == SECTOR, query
        assert abs(float(query["ra"]) - ra) < 1e-6 and abs(float(query["dec"]) - dec) < 1e-6
        return 200, "application/zip", zipped

    archive.routes["/tesscut/api/v0.1/sector"] = sector
    archive.routes["/tesscut/api/v0.1/astrocut"] = astrocut


# --------------------------------------------------------------------------- ZTF

ZTF_FIELD, ZTF_CCD, ZTF_QID = 600, 5, 2


def ztf_field(ra: float, dec: float, *, seed: int = 5, reference: bool = False) -> SimulatedField:
    """A ZTF-like night: 1.01 arcsec pixels, 30 s exposures 15 minutes apart, two movers.

    With ``reference``, also one exposure of the field from a night a month
    earlier (``template``), to serve as ZTF's reference image.
    """
    return simulate_field(
        template=TemplateNight(frames=1, days=-30.0, offset_px=(3.0, -2.0)) if reference else None,
        seed=seed,
        shape=(256, 256),
        n_frames=6,
        n_objects=2,
        snr_range=(15.0, 25.0),
        rate_range=(30.0, 80.0),
        ra=ra,
        dec=dec,
        mjd_start=60410.20,
        cadence_min=15.0,
        exptime_s=30.0,
        pixel_scale_arcsec=1.01,
        gain=6.2,
        saturate_adu=45000.0,
        zero_point=26.3,
        filter_name="ZTF_r",
        satellite_prob=0.0,
    )


def _filefracday(mjd: float) -> str:
    t = Time(mjd, format="mjd", scale="utc")
    day = int(np.floor(mjd))
    return t.strftime("%Y%m%d") + f"{round((mjd - day) * 1e6):06d}"


@dataclass
class ZtfArchive:
    """IBE's ZTF sci metadata table and image cutouts for one simulated night."""

    sim: SimulatedField
    ra: float
    dec: float
    images: dict[str, tuple[np.ndarray, fits.Header]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        nid = 2295
        for k, (_, data, header) in enumerate(self.sim.frames):
            start = float(Time(header["DATE-OBS"], scale="utc").mjd)
            row = self._row(start, nid=nid, expid=90000 + k, filtercode="zr")
            path = _ztf_path(row)
            h = header.copy()
            del h["MJD-OBS"]
            h["OBSMJD"] = (start, "UTC MJD at start of exposure")
            h["OBSJD"] = (start + 2400000.5, "UTC JD at start of exposure")
            h["FILTERID"] = 2
            h["FIELDID"] = ZTF_FIELD
            h["CCDID"] = ZTF_CCD
            h["QID"] = ZTF_QID
            h["TELESCOP"] = "P48"
            h["INSTRUME"] = "ZTF/MOSAIC"
            h["IMGTYPE"] = "object"
            if k == 1:  # some headers give only OBSMJD: the source must add MJD-OBS
                del h["DATE-OBS"]
            self.images[path] = (data, h)
            self.rows.append(row)
            if k in (0, 3):  # the same exposure also on an overlapping field, farther off
                self.rows.append(
                    self._row(
                        start, nid=nid, expid=90000 + k, filtercode="zr", field_id=1650, off=0.3
                    )
                )
        for j in range(2):  # another night, fewer exposures (not chosen)
            self.rows.append(
                self._row(60300.3 + j * 0.01, nid=2185, expid=80000 + j, filtercode="zg")
            )

    def _row(self, start, *, nid, expid, filtercode, field_id=ZTF_FIELD, off=0.0) -> dict:
        return {
            "field": field_id,
            "ccdid": ZTF_CCD,
            "qid": ZTF_QID,
            "filtercode": filtercode,
            "imgtypecode": "o",
            "filefracday": _filefracday(start),
            "obsjd": start + 2400000.5,
            "exptime": 30.0,
            "nid": nid,
            "expid": expid,
            "ra": self.ra + off,
            "dec": self.dec - off,
            "infobits": 0,
            "seeing": 2.1,
            "maglimit": 20.6,
        }

    def ipac_table(self) -> bytes:
        """The rows as IBE's IPAC table (``ct=ipac_table``)."""
        cols = [
            ("field", "int"),
            ("ccdid", "int"),
            ("qid", "int"),
            ("filtercode", "char"),
            ("imgtypecode", "char"),
            ("filefracday", "long"),
            ("obsjd", "double"),
            ("exptime", "double"),
            ("nid", "int"),
            ("expid", "int"),
            ("ra", "double"),
            ("dec", "double"),
            ("infobits", "int"),
            ("seeing", "double"),
            ("maglimit", "double"),
        ]
        units = {"obsjd": "d", "exptime": "s", "ra": "deg", "dec": "deg", "seeing": "arcsec"}
        width = 20

        def line(values) -> str:
            return "|" + "|".join(f"{v:>{width}}" for v in values) + "|"

        out = ["\\fixlen = T", f"\\RowsRetrieved = {len(self.rows)}"]
        out.append(line(c for c, _ in cols))
        out.append(line(t for _, t in cols))
        out.append(line(units.get(c, "") for c, _ in cols))
        out.append(line("null" for _ in cols))
        for row in self.rows:
            cells = []
            for c, t in cols:
                v = row[c]
                cells.append(f"{v:.8f}" if t == "double" else str(v))
            out.append(" " + " ".join(f"{v:>{width}}" for v in cells) + " ")
        return ("\n".join(out) + "\n").encode()

    def cutout(self, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if path not in self.images:
            return 404, "text/plain", f"{path}: no such file".encode()
        data, header = self.images[path]
        ra, dec = map(float, query["center"].split(","))
        size = query["size"]
        assert size.endswith("arcmin") and query.get("gzip") == "false", query
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # datfix notes about DATE-OBS
            wcs = WCS(header)
        cut = Cutout2D(
            data,
            SkyCoord(ra * u.deg, dec * u.deg),
            float(size.removesuffix("arcmin")) * u.arcmin,
            wcs=wcs,
            mode="partial",
            fill_value=np.nan,
        )
        out = header.copy()
        x0, y0 = cut.origin_original
        out["CRPIX1"] = header["CRPIX1"] - x0
        out["CRPIX2"] = header["CRPIX2"] - y0
        buffer = io.BytesIO()
        fits.PrimaryHDU(cut.data.astype(np.float32), out).writeto(buffer)
        return 200, "image/fits", buffer.getvalue()

    def reference(self) -> tuple[str, np.ndarray, fits.Header] | None:
        """The reference image (path under ``ref/``, pixels, header) when the field has one.

        Its header is a coadd's as IRSA writes it: WCS, MAGZP, SATURATE,
        NFRAMES, no observation time of its own.
        """
        if not self.sim.template:
            return None
        _, data, header = self.sim.template[0]
        h = header.copy()
        for key in ("DATE-OBS", "MJD-OBS"):
            del h[key]
        h["NFRAMES"] = (1, "number of frames in the coadd")
        h["FIELDID"], h["CCDID"], h["QID"] = ZTF_FIELD, ZTF_CCD, ZTF_QID
        path = (
            f"000/field{ZTF_FIELD:06d}/zr/ccd{ZTF_CCD:02d}/q{ZTF_QID}/"
            f"ztf_{ZTF_FIELD:06d}_zr_c{ZTF_CCD:02d}_q{ZTF_QID}_refimg.fits"
        )
        return path, data, h

    def ref_table(self, query: dict[str, str]) -> bytes:
        """IBE's ``search/ztf/products/ref`` answer: one row when the where clause matches."""
        cols = [("field", "int"), ("ccdid", "int"), ("qid", "int"), ("filtercode", "char")]
        cols += [("nframes", "int"), ("maglimit", "double")]
        wanted = f"field={ZTF_FIELD} AND ccdid={ZTF_CCD} AND qid={ZTF_QID} AND filtercode='zr'"
        rows = [[ZTF_FIELD, ZTF_CCD, ZTF_QID, "zr", 1, "21.50000000"]]
        if self.reference() is None or query.get("where") != wanted:
            rows = []

        def line(values) -> str:
            return "|" + "|".join(f"{v:>12}" for v in values) + "|"

        out = ["\\fixlen = T", f"\\RowsRetrieved = {len(rows)}"]
        out += [line(c for c, _ in cols), line(t for _, t in cols), line("" for _ in cols)]
        out.append(line("null" for _ in cols))
        out += [" " + " ".join(f"{v!s:>12}" for v in row) + " " for row in rows]
        return ("\n".join(out) + "\n").encode()

    def serve(self, archive: Archive) -> None:
        """IBE's ``search/ztf/products/{sci,ref}`` and ``data/ztf/products/{sci,ref}/``."""
        prefix = "/ibe/data/ztf/products/sci/"
        ref_prefix = "/ibe/data/ztf/products/ref/"

        def search(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
            assert query["ct"] == "ipac_table" and "POS" in query, query
            return 200, "text/plain", self.ipac_table()

        def ref_search(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
            assert query["ct"] == "ipac_table" and "POS" in query, query
            return 200, "text/plain", self.ref_table(query)

        reference = self.reference()
        if reference is not None:
            self.images["ref/" + reference[0]] = reference[1:]
        archive.routes["/ibe/search/ztf/products/sci"] = search
        archive.routes["/ibe/search/ztf/products/ref"] = ref_search
        archive.routes[prefix] = lambda path, query: self.cutout(path.removeprefix(prefix), query)
        archive.routes[ref_prefix] = lambda path, query: self.cutout(
            "ref/" + path.removeprefix(ref_prefix), query
        )


def _ztf_path(row: dict) -> str:
    day = row["filefracday"]
    return (
        f"{day[:4]}/{day[4:8]}/{day[8:]}/ztf_{day}_{row['field']:06d}_{row['filtercode']}_"
        f"c{row['ccdid']:02d}_{row['imgtypecode']}_q{row['qid']}_sciimg.fits"
    )
