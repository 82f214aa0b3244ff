"""Downloads from survey archives: timeouts, retries, atomic files, FITS checks.

Every survey source goes through one `Downloader`, so they all behave alike:

- a timeout on connecting and on every read (``ASTROHUNTER_DOWNLOAD_TIMEOUT``);
- transient failures (connection refused or reset, a connection dropped in
  the middle of a file, timeouts, HTTP 5xx, 408 and 429) are retried with
  exponential backoff (``ASTROHUNTER_DOWNLOAD_RETRIES`` times, starting at
  ``ASTROHUNTER_DOWNLOAD_BACKOFF`` seconds and doubling, ``Retry-After``
  honoured); when they run out, `SourceUnavailable` says what was tried;
- any other 4xx is not retried: it is an `InputError` naming the URL;
- a file is streamed to a temporary name beside its destination and renamed
  only when it is complete and opens as valid FITS (or zip); a damaged file
  is an `InputError` naming it, and no partial file is ever left behind;
- the disk is checked against ``MIN_DISK_SPACE_GB`` (and the announced file
  size) before any byte is written;
- at most ``ASTROHUNTER_SOURCE_CONCURRENCY`` requests per source run at
  once in a process (one semaphore per source, shared by worker threads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from astropy.io import fits

from detectors import __version__
from detectors.errors import InputError

from ..config import Settings
from ..disk import check_disk

__all__ = [
    "Downloader",
    "NoNetwork",
    "RetryPolicy",
    "SourceUnavailable",
    "validate_fits",
    "validate_zip",
]

log = logging.getLogger(__name__)

#: HTTP statuses worth trying again: the server is busy or broken, not the request.
TRANSIENT_STATUS = frozenset({408, 425, 429})
_CHUNK = 1 << 16
_USER_AGENT = f"AstroHunter/{__version__} (asteroid search) httpx/{httpx.__version__}"

#: ``validate(path, name, url)``: raise `InputError` for a bad download.
Validator = Callable[[Path, str, str], None]
#: ``on_bytes(done, total_or_None)`` while a file streams in.
ByteProgress = Callable[[int, int | None], None]


class SourceUnavailable(ConnectionError):
    """A service could not be reached, or kept failing, after every retry.

    Transient by nature: the download actor lets Dramatiq retry the job
    later, and ``auto`` moves on to the next survey.
    """


class NoNetwork(InputError):
    """The service's host name does not resolve: no network, or no DNS, here.

    Not retried: waiting a few seconds does not bring a network, and a user
    offline should hear so at once, not after a minute of backoff.
    """


def _unresolved(err: BaseException) -> bool:
    """True when a connection failed on name resolution (``socket.gaierror`` in the chain)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    Attributes
    ----------
    retries : int
        Attempts after the first.
    backoff_s : float
        Wait before the first retry; it doubles for each further one.
    max_backoff_s : float
        Longest single wait (also caps ``Retry-After``).
    """

    retries: int = 4
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based), with 10 % jitter."""
        wait = self.backoff_s * 2.0**retry
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff_s) * random.uniform(0.9, 1.1)


# --------------------------------------------------------------------------- disk


# --------------------------------------------------------------------------- validation


def validate_fits(path: Path, name: str, url: str) -> None:
    """Check that a downloaded file is complete, readable FITS with data.

    Every header is parsed and every HDU's data must lie within the file
    (checked from the headers, so a cube of gigabytes is not read into
    memory); a gzipped file is decompressed and read in full.

    Raises
    ------
    InputError
        Naming the file and the URL it came from.
    """
    problem = None
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        size = Path(path).stat().st_size
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, memmap=not gzipped, lazy_load_hdus=False) as hdul:
                has_data = False
                for hdu in hdul:
                    if gzipped:
                        has_data |= hdu.data is not None
                        continue
                    info = hdu.fileinfo() or {}
                    end = int(info.get("datLoc", 0)) + int(info.get("datSpan", 0))
                    if end > size:
                        problem = f"truncated: {size} bytes, the headers need {end}"
                        break
                    has_data |= int(info.get("datSpan", 0)) > 0
        truncated = [str(w.message) for w in caught if "truncat" in str(w.message).lower()]
        if problem is None and truncated:
            problem = truncated[0]
        elif problem is None and not has_data:
            problem = "it holds no image or table data"
    except Exception as err:  # astropy raises OSError, ValueError, TypeError, ...
        problem = f"{type(err).__name__}: {err}"
    if problem:
        raise InputError(
            f"{name}: downloaded from {url} but it is not a valid FITS file ({problem}); "
            "the archive sent a damaged file. Try the search again later."
        )


def validate_zip(path: Path, name: str, url: str) -> None:
    """Check that a downloaded file is a complete zip archive with members.

    A JSON body instead (how MAST says "nothing here") becomes an
    `InputError` carrying the service's message.
    """
    if not zipfile.is_zipfile(path):
        message = ""
        with contextlib.suppress(Exception):
            body = json.loads(Path(path).read_text())
            message = str(body.get("msg") or body.get("message") or body)
        if message:
            raise InputError(f"{name}: the service at {url} returned no files: {message}")
        raise InputError(
            f"{name}: downloaded from {url} but it is not a zip archive; the archive sent a "
            "damaged file. Try the search again later."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            members = archive.namelist()
    except Exception as err:
        raise InputError(f"{name}: damaged zip archive from {url} ({err}).") from err
    if bad is not None or not members:
        what = f"member {bad} is corrupt" if bad else "it is empty"
        raise InputError(f"{name}: damaged zip archive from {url} ({what}).")


# --------------------------------------------------------------------------- concurrency

_SLOTS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _slot(source: str, limit: int) -> threading.BoundedSemaphore:
    with _SLOTS_LOCK:
        return _SLOTS.setdefault((source, limit), threading.BoundedSemaphore(limit))


class _Incomplete(Exception):
    """The body ended before the announced Content-Length."""


class _Transient(Exception):
    """An HTTP status worth retrying."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _excerpt(body: bytes) -> str:
    text = body[:300].decode("utf-8", "replace").strip()
    return " ".join(text.split())


# --------------------------------------------------------------------------- downloader


class Downloader:
    """One source's HTTP client: retries, limits, atomic and validated files.

    Parameters
    ----------
    source : str
        The source's name, for messages and its concurrency limit.
    timeout_s : float, keyword-only
        Connect and per-read timeout, seconds.
    policy : RetryPolicy, keyword-only
        Retries of transient failures.
    concurrency : int, keyword-only
        Requests of this source that may run at once in this process.
    min_free_gb : float, keyword-only
        Free space a download must leave (``MIN_DISK_SPACE_GB``).
    report : callable, keyword-only, optional
        ``report(message)`` for retries, so the job's status shows them.
    """

    def __init__(
        self,
        source: str,
        *,
        timeout_s: float = 60.0,
        policy: RetryPolicy | None = None,
        concurrency: int = 2,
        min_free_gb: float = 0.0,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.policy = policy or RetryPolicy()
        self.min_free_gb = min_free_gb
        self.report = report
        self.requests = 0
        self._slot = _slot(source, concurrency)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 15.0)),
            follow_redirects=True,
            headers={"User-Agent": _USER_AGENT},
        )

    @classmethod
    def from_settings(
        cls, source: str, settings: Settings, *, report: Callable[[str], None] | None = None
    ) -> Downloader:
        """A downloader configured by the ``ASTROHUNTER_DOWNLOAD_*`` settings."""
        return cls(
            source,
            timeout_s=settings.download_timeout_s,
            policy=RetryPolicy(
                retries=settings.download_retries, backoff_s=settings.download_backoff_s
            ),
            concurrency=settings.source_concurrency,
            min_free_gb=settings.min_disk_space_gb,
            report=report,
        )

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- public

    def get_text(self, url: str, *, params: dict[str, Any] | None = None) -> str:
        """The body of a (small) response as text, e.g. a metadata table."""
        return self._with_retries(url, params, lambda response, _: response.read().decode())

    def get_json(self, url: str, *, params: dict[str, Any] | None = None) -> Any:
        """The body of a response parsed as JSON."""
        text = self.get_text(url, params=params)
        try:
            return json.loads(text)
        except ValueError as err:
            raise InputError(
                f"{self.source}: {self._display(url, params)} did not answer JSON "
                f"({_excerpt(text.encode())!r}); check the service URL setting."
            ) from err

    def download(
        self,
        url: str,
        dest: Path,
        *,
        params: dict[str, Any] | None = None,
        validate: Validator | None = validate_fits,
        on_bytes: ByteProgress | None = None,
    ) -> int:
        """Stream ``url`` to ``dest``: temporary name, validation, then rename.

        Parameters
        ----------
        url : str
            What to get.
        dest : Path
            Where the complete file goes (its folder is created).
        params : dict, keyword-only, optional
            Query parameters.
        validate : callable or None, keyword-only
            ``validate(tmp_path, dest.name, url)`` before the rename
            (default: `validate_fits`).
        on_bytes : callable, keyword-only, optional
            ``on_bytes(done, total)`` as bytes arrive (total None if unknown).

        Returns
        -------
        int
            Bytes written.

        Raises
        ------
        InputError
            A 4xx answer (not retried), a damaged file, or too little disk.
        SourceUnavailable
            Transient failures outlasted the retries.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)

        def consume(response: httpx.Response, shown: str) -> int:
            total = int(response.headers.get("content-length") or 0) or None
            check_disk(dest.parent, self.min_free_gb, need_bytes=total or 0)
            fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            tmp = Path(name)
            try:
                done = 0
                with os.fdopen(fd, "wb") as fh:
                    for chunk in response.iter_bytes(_CHUNK):
                        fh.write(chunk)
                        done += len(chunk)
                        if on_bytes is not None:
                            on_bytes(done, total)
                raw = response.num_bytes_downloaded
                if total is not None and raw < total:
                    raise _Incomplete(f"connection closed after {raw} of {total} bytes")
                if validate is not None:
                    validate(tmp, dest.name, shown)
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return done

        return self._with_retries(url, params, consume)

    # -- internals

    @staticmethod
    def _display(url: str, params: dict[str, Any] | None) -> str:
        return str(httpx.URL(url, params=params)) if params else url

    @contextlib.contextmanager
    def _limited(self) -> Iterator[None]:
        with self._slot:
            yield

    def _with_retries(
        self,
        url: str,
        params: dict[str, Any] | None,
        consume: Callable[[httpx.Response, str], Any],
    ) -> Any:
        shown = self._display(url, params)
        errors: list[str] = []
        for attempt in range(self.policy.retries + 1):
            retry_after = None
            try:
                with self._limited():
                    self.requests += 1
                    with self._client.stream("GET", url, params=params) as response:
                        self._check_status(response, shown)
                        return consume(response, shown)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
                raise InputError(
                    f"{self.source}: cannot request {shown} ({err}); check the service URL setting."
                ) from err
            except _Transient as err:
                errors.append(str(err))
                retry_after = err.retry_after
            except (httpx.TransportError, httpx.DecodingError, _Incomplete) as err:
                if _unresolved(err):
                    host = httpx.URL(url).host
                    raise NoNetwork(f"{self.source}: cannot resolve {host} (no network?)") from err
                errors.append(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
            if attempt < self.policy.retries:
                wait = self.policy.delay(attempt, retry_after)
                message = (
                    f"{self.source}: {errors[-1]}; retry {attempt + 1}/{self.policy.retries} "
                    f"in {wait:.1f} s"
                )
                log.warning("%s (%s)", message, shown)
                if self.report is not None:
                    self.report(message)
                time.sleep(wait)
        raise SourceUnavailable(
            f"{self.source}: {shown} failed {len(errors)} times (last: {errors[-1]}); "
            "the service is unreachable or failing, try again later"
        )

    def _check_status(self, response: httpx.Response, shown: str) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _excerpt(response.read())
        reason = f"HTTP {status} {response.reason_phrase}".strip()
        if status >= 500 or status in TRANSIENT_STATUS:
            raise _Transient(reason, _retry_after(response))
        raise InputError(
            f"{self.source}: {shown} answered {reason}"
            + (f" ({detail})" if detail else "")
            + "; not retried. Check the position and time window, or the service URL setting."
        )
