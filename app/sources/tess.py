"""``tess``: TESS full-frame-image cutouts from MAST's TESScut.

TESScut (the service ``astroquery.mast.Tesscut`` wraps) is spoken to
directly, at the URLs astroquery builds from ``{TESSCUT}`` =
``https://mast.stsci.edu/tesscut/api/v0.1/``:

1. ``{TESSCUT}sector?ra=&dec=&radius=`` answers JSON
   ``{"results": [{"sectorName", "sector", "camera", "ccd"}, ...]}``;
2. ``{TESSCUT}astrocut?ra=&dec=&y=&x=&units=px&sector=`` answers a zip of
   one cube per camera/CCD holding the position (or JSON ``{"msg"}`` when
   there is nothing); `tesscube` describes the cube and unpacks it.

The sector is the one asked for (option ``sector``), else the one observing
during the search's time window (estimated from the date, then checked
against the cube's own times, trying the neighbouring sector too), else the
latest. The cube is cached by position, size and sector
(``DATA_DIR/cache/tess-cubes/``), so another time window in the same
sector downloads nothing; the frames are cached as every survey's are.
"""

from __future__ import annotations

import math
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from detectors.errors import InputError

from ..config import get_settings
from . import FetchProgress, FetchRequest
from .cache import Cache, cache_key
from .http import Downloader, validate_fits, validate_zip
from .survey import Delivery, FileProgress, SurveySource, parse_window, window_text
from .tesscube import DEFAULT_FRAMES, DEFAULT_HOURS, cube_times, frames_from_cube

__all__ = ["PIXEL_ARCSEC", "TessSource", "cutout_pixels", "estimated_sector"]

#: TESS pixel scale, arcsec.
PIXEL_ARCSEC = 21.0
#: First TESS science data (sector 1 start, 2018-07-25 UTC).
START_MJD = 58324.8
#: Rough sector length (days), to pick a sector for a time window before asking for it.
_SECTOR_DAYS = 27.3
_MIN_PX, _MAX_PX = 16, 200


def cutout_pixels(radius_arcmin: float) -> int:
    """TESScut cutout side in pixels for a field half-width (16 to 200)."""
    return int(min(max(math.ceil(2.0 * radius_arcmin * 60.0 / PIXEL_ARCSEC), _MIN_PX), _MAX_PX))


def estimated_sector(mjd: float) -> int:
    """The TESS sector observing at UTC ``mjd``, roughly (sectors last about 27.3 days)."""
    return max(1, int((mjd - START_MJD) // _SECTOR_DAYS) + 1)


def _validate_cube_zip(path: Path, name: str, url: str) -> None:
    validate_zip(path, name, url)
    with zipfile.ZipFile(path) as archive:
        if not any(m.lower().endswith((".fits", ".fits.gz")) for m in archive.namelist()):
            raise InputError(f"{name}: the zip from {url} holds no FITS cube")


class TessSource(SurveySource):
    name = "tess"
    description = (
        "TESS full-frame-image cutouts from MAST TESScut (21 arcsec pixels): a few hours of "
        "cadences from one sector, unpacked into frames"
    )
    coverage = (
        "nearly the whole sky (each ~27-day sector sees a 24x96 deg strip), 2018-07-25 onward"
    )

    def validate(self, options: dict[str, Any]) -> None:
        _, end = parse_window(options)
        if end is not None and end < START_MJD:
            raise InputError("end: TESS began on 2018-07-25; the time window is before it")

    def cache_parts(self, request: FetchRequest) -> dict[str, Any]:
        opts = request.options
        return {
            **super().cache_parts(request),
            "pixels": cutout_pixels(request.radius_arcmin),
            "sector": opts.get("sector"),
            "frames": int(opts.get("frames", DEFAULT_FRAMES)),
            "hours": float(opts.get("hours", DEFAULT_HOURS)),
        }

    def sectors(self, request: FetchRequest, http: Downloader) -> list[int]:
        """Sectors whose footprint holds the position (TESScut ``sector`` service)."""
        url = get_settings().tesscut_url.rstrip("/") + "/sector"
        answer = http.get_json(
            url, params={"ra": f"{request.ra:.7f}", "dec": f"{request.dec:.7f}", "radius": 0}
        )
        results = answer.get("results", []) if isinstance(answer, dict) else []
        return sorted({int(r["sector"]) for r in results})

    def _candidate_sectors(
        self, request: FetchRequest, http: Downloader, start: float | None, end: float | None
    ) -> tuple[list[int], str]:
        """Sectors to try, best first, and why: the asked one, the latest, or the window's."""
        if request.options.get("sector") is not None:
            return [int(request.options["sector"])], "as asked"
        sectors = self.sectors(request, http)
        where = f"RA {request.ra:.5f} Dec {request.dec:.5f}"
        if not sectors:
            raise InputError(f"tess: TESScut lists no TESS sector containing {where}")
        if start is None and end is None:
            return [sectors[-1]], f"the latest of {len(sectors)} sectors"
        # Sector dates are only estimated here; the cube's own times decide.
        target = estimated_sector(start if start is not None else float(end or 0.0))
        near = sorted((s for s in sectors if abs(s - target) <= 1), key=lambda s: abs(s - target))
        if not near:
            raise InputError(
                f"tess: no TESS sector observed {where}{window_text(start, end)} (about sector "
                f"{target}); sectors with this position: {', '.join(map(str, sectors))}"
            )
        return near, f"observing{window_text(start, end)}"

    def _cube(
        self, request: FetchRequest, http: Downloader, sector: int, progress: FetchProgress
    ) -> tuple[Path, bool]:
        """The cutout cube for ``sector``, from the cube cache or TESScut."""
        settings = get_settings()
        cubes = Cache(settings.data_dir / "cache", "tess-cubes")
        pixels = cutout_pixels(request.radius_arcmin)
        key = cache_key(
            ra=round(request.ra, 6), dec=round(request.dec, 6), pixels=pixels, sector=sector
        )
        entry = cubes.lookup(key)
        if entry is not None:
            return self._best(entry.files), True
        bar = FileProgress("tess", progress, 1)
        url = settings.tesscut_url.rstrip("/") + "/astrocut"
        with cubes.staging(key) as staging:
            zipped = staging / f"tesscut_s{sector:04d}.zip"
            nbytes = http.download(
                url,
                zipped,
                params={
                    "ra": f"{request.ra:.7f}",
                    "dec": f"{request.dec:.7f}",
                    "y": pixels,
                    "x": pixels,
                    "units": "px",
                    "sector": sector,
                },
                validate=_validate_cube_zip,
                on_bytes=lambda d, t: bar.bytes(d, t, label=f" sector {sector} cube"),
            )
            bar.file_done(nbytes, label=f" sector {sector} cube")
            names = []
            with zipfile.ZipFile(zipped) as archive:
                for member in archive.namelist():
                    if not member.lower().endswith(".fits"):
                        continue
                    target = staging / Path(member).name
                    target.write_bytes(archive.read(member))
                    validate_fits(target, target.name, f"{url} ({zipped.name})")
                    names.append(target.name)
            zipped.unlink()
            entry = cubes.commit(key, staging, names, {"sector": sector, "pixels": pixels})
        return self._best(entry.files), False

    @staticmethod
    def _best(files: list[Path]) -> Path:
        """Of several cubes (the position on more than one CCD), the one with most good data."""

        if len(files) == 1:
            return files[0]

        def good(path: Path) -> int:
            with fits.open(path) as hdul:
                table = hdul[1].data
                return int(np.count_nonzero(np.asarray(table["QUALITY"]) == 0))

        return max(files, key=good)

    def download(
        self, request: FetchRequest, into: Path, http: Downloader, progress: FetchProgress
    ) -> Delivery:
        start, end = parse_window(request.options)
        opts = request.options
        progress(0, 1, "tess: asking TESScut which sectors hold the position")
        sectors, why = self._candidate_sectors(request, http, start, end)
        misses = []
        for sector in sectors:
            cube, cached = self._cube(request, http, sector, progress)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(cube) as hdul:
                    frames, notes = frames_from_cube(
                        hdul,
                        start=start,
                        end=end,
                        hours=float(opts.get("hours", DEFAULT_HOURS)),
                        frames=int(opts.get("frames", DEFAULT_FRAMES)),
                    )
                    span = cube_times(hdul)
            if len(frames) >= 3:
                break
            first, last = (
                Time(t, format="mjd").isot[:16] for t in (np.nanmin(span), np.nanmax(span))
            )
            misses.append(f"sector {sector} ({first} to {last} UTC) has {len(frames)}")
        else:
            raise InputError(
                f"tess: too few usable cadences{window_text(start, end)}: {'; '.join(misses)}; "
                "a search needs 3 or more. Move the time window into a sector."
            )
        names = []
        for name, data, header in frames:
            fits.PrimaryHDU(data, header).writeto(into / name, overwrite=True)
            names.append(name)
        notes.insert(
            0,
            f"tess: sector {sector} ({why}), {cutout_pixels(request.radius_arcmin)} px cutout"
            + (" (cube from the cache)" if cached else ""),
        )
        return Delivery(names=names, notes=notes, meta={"sector": sector})
