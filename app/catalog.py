"""The orbit catalogue and the observatory-code list on disk: download, find, load.

``astrohunter orbits update`` fetches the MPC's ``MPCORB.DAT.gz`` (about
1.5 million orbits) and ``ObsCodes.html`` into ``DATA_DIR/catalog`` through
the survey sources' `Downloader` (timeouts, retries with backoff, a free
disk check, a temporary file renamed only once it validates, a progress
callback), then parses the catalogue once into its cache, so later searches
load it in about a second. ``--orbits FILE`` or ``ASTROHUNTER_ORBITS`` point
at another MPCORB-format file (plain or gzip) instead.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detectors.errors import InputError
from detectors.observatories import ObservatoryCodes, parse_obscodes
from detectors.orbits import OrbitCatalog, load_catalog, parse_mpcorb

from .config import Settings

__all__ = [
    "CatalogFiles",
    "catalog_path",
    "load_obscodes",
    "load_orbits",
    "obscodes_path",
    "update_catalog",
    "validate_mpcorb",
    "validate_obscodes",
]

MPCORB_NAME = "MPCORB.DAT.gz"
OBSCODES_NAME = "ObsCodes.html"
_SAMPLE_BYTES = 2_000_000  # enough for the header and ~9000 orbit lines


@dataclass(frozen=True)
class CatalogFiles:
    """What `update_catalog` left in ``DATA_DIR/catalog``."""

    mpcorb: Path
    obscodes: Path
    orbits: int
    skipped_lines: int
    codes: int
    bytes_downloaded: int


def validate_mpcorb(path: Path, name: str, url: str) -> None:
    """Check a downloaded catalogue: a complete gzip (or plain text) of MPCORB lines.

    The whole gzip stream is read (a truncated download fails its CRC or
    ends early) and the first 2 MB must hold orbits that parse, with at most
    one line in ten skipped.

    Raises
    ------
    InputError
        Naming the file, the URL and what is wrong.
    """
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        if gzipped:
            with gzip.open(path, "rb") as fh:
                sample = fh.read(_SAMPLE_BYTES)
                while fh.read(1 << 24):
                    pass
        else:
            with open(path, "rb") as fh:
                sample = fh.read(_SAMPLE_BYTES)
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(
            f"{name}: downloaded from {url} but it is not a complete gzip file ({err}); "
            "run `astrohunter orbits update` again."
        ) from err
    sample = sample[: sample.rfind(b"\n") + 1]
    parsed = parse_mpcorb(sample)
    if len(parsed) == 0 or parsed.skipped > 0.1 * (len(parsed) + parsed.skipped):
        raise InputError(
            f"{name}: downloaded from {url} but it does not hold MPCORB orbit lines "
            f"({len(parsed)} parsed, {parsed.skipped} skipped in the first 2 MB); check "
            "ASTROHUNTER_MPCORB_URL."
        )


def validate_obscodes(path: Path, name: str, url: str) -> None:
    """Check a downloaded observatory-code list: it must hold code lines.

    Raises
    ------
    InputError
    """
    try:
        parse_obscodes(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as err:
        raise InputError(
            f"{name}: downloaded from {url} but {err} Check ASTROHUNTER_OBSCODES_URL."
        ) from err


def update_catalog(
    settings: Settings,
    *,
    mpcorb_url: str | None = None,
    obscodes_url: str | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> CatalogFiles:
    """Download MPCORB and the observatory codes into ``settings.catalog_dir``, then parse.

    Parameters
    ----------
    settings : Settings
        ``catalog_dir``, the download settings, and the default URLs.
    mpcorb_url, obscodes_url : str, keyword-only, optional
        Override ``ASTROHUNTER_MPCORB_URL`` / ``ASTROHUNTER_OBSCODES_URL``.
    progress : callable, keyword-only, optional
        ``progress(file_name, bytes_done, bytes_total_or_None)``.
    report : callable, keyword-only, optional
        ``report(message)`` for retries.

    Returns
    -------
    CatalogFiles

    Raises
    ------
    InputError
        A 4xx answer, a damaged download, or too little disk space.
    SourceUnavailable
        The MPC stayed unreachable through every retry.
    """
    from .sources.http import Downloader  # the survey sources' client: only downloads need it

    folder = settings.catalog_dir
    jobs = (
        (obscodes_url or settings.obscodes_url, folder / OBSCODES_NAME, validate_obscodes),
        (mpcorb_url or settings.mpcorb_url, folder / MPCORB_NAME, validate_mpcorb),
    )
    total = 0
    with Downloader.from_settings("mpc", settings, report=report) as http:
        for url, dest, validate in jobs:

            def on_bytes(done: int, size: int | None, name: str = dest.name) -> None:
                if progress is not None:
                    progress(name, done, size)

            total += http.download(url, dest, validate=validate, on_bytes=on_bytes)
    orbits = load_catalog(folder / MPCORB_NAME, cache_dir=folder / "cache")
    codes = load_obscodes(folder / OBSCODES_NAME)
    return CatalogFiles(
        mpcorb=folder / MPCORB_NAME,
        obscodes=folder / OBSCODES_NAME,
        orbits=len(orbits),
        skipped_lines=orbits.skipped,
        codes=len(codes),
        bytes_downloaded=total,
    )


def catalog_path(settings: Settings, orbits: Path | None = None) -> Path | None:
    """The orbit catalogue to use: ``--orbits``, else ``ASTROHUNTER_ORBITS``, else the download.

    Returns
    -------
    Path or None
        None when none is given and ``orbits update`` has not been run.

    Raises
    ------
    InputError
        A file given explicitly does not exist.
    """
    given = orbits or settings.orbits_file
    if given is not None:
        if not Path(given).is_file():
            raise InputError(
                f"{given}: no such orbit catalogue (from --orbits or ASTROHUNTER_ORBITS); give "
                "an MPCORB-format file, or run `astrohunter orbits update`."
            )
        return Path(given)
    downloaded = settings.catalog_dir / MPCORB_NAME
    return downloaded if downloaded.is_file() else None


def obscodes_path(settings: Settings) -> Path | None:
    """The downloaded observatory-code list, or None before ``orbits update``."""
    path = settings.catalog_dir / OBSCODES_NAME
    return path if path.is_file() else None


def load_orbits(settings: Settings, orbits: Path | None = None) -> OrbitCatalog | None:
    """The catalogue of `catalog_path`, through the cache in ``DATA_DIR/catalog/cache``."""
    path = catalog_path(settings, orbits)
    if path is None:
        return None
    try:
        return load_catalog(path, cache_dir=settings.catalog_dir / "cache")
    except ValueError as err:
        raise InputError(str(err)) from err


def load_obscodes(path: Path) -> ObservatoryCodes:
    """Parse an observatory-code list file.

    Raises
    ------
    InputError
        The file is not the MPC's list.
    """
    try:
        return parse_obscodes(Path(path).read_text(encoding="utf-8", errors="replace"))
    except ValueError as err:
        raise InputError(f"{path}: {err}") from err
