"""The MPC's orbit catalogue (``MPCORB.DAT``) as columns of NumPy arrays.

Identifying known objects needs every catalogued orbit at once, so the
catalogue is held column-wise (one array per element) and propagated with
array operations (`detectors.ephemeris`), never one orbit at a time.

The file format is the MPC's fixed-column ``MPCORB.DAT`` (plain or gzip):
header text up to a line of dashes, then one 202-character line per orbit
(packed designation, H, G, packed epoch, M, peri, node, incl, e, n, a, U,
..., readable designation, date of the last observation). Lines that do not
parse are skipped and counted, never fatal. Parsing 1.5 million lines takes
seconds; `load_catalog` keeps the parsed columns in an ``.npz`` cache keyed by
the file's content, so a second load only reads arrays.

Conventions: angles in degrees, referred to the ecliptic and equinox J2000;
epochs as TT MJD; ``a`` in AU; ``n`` in degrees per day.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

__all__ = [
    "OrbitCatalog",
    "load_catalog",
    "mpcorb_line",
    "pack_designation",
    "parse_mpcorb",
    "unpack_designation",
]

_LINE_WIDTH = 202
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CENTURY = {"I": 1800, "J": 1900, "K": 2000, "L": 2100}
_CACHE_VERSION = 1
# 0-based [start, end) of each numeric column (the MPC's 1-based columns minus one).
_NUMERIC = {
    "h": (8, 13),
    "g": (14, 19),
    "mean_anomaly": (26, 35),
    "arg_perihelion": (37, 46),
    "node": (48, 57),
    "inclination": (59, 68),
    "e": (70, 79),
    "n": (80, 91),
    "a": (92, 103),
}
_REQUIRED = ("mean_anomaly", "arg_perihelion", "node", "inclination", "e", "a")


@dataclass(frozen=True)
class OrbitCatalog:
    """Osculating heliocentric orbits, one entry per object, column-wise.

    Attributes
    ----------
    packed : ndarray of bytes (S7), shape (N,)
        Packed designation as in MPCORB (``05945``, ``A0345``, ``K19A00A``).
    readable : ndarray of bytes (S28), shape (N,)
        Readable designation (``(5945) Roachapproach``, ``2019 AA``).
    number : ndarray of int64
        Permanent number, -1 when unnumbered.
    h, g : ndarray of float64
        Absolute magnitude (NaN when the file has none) and slope (0.15 when blank).
    epoch_mjd : ndarray of float64
        Osculation epoch, TT MJD.
    mean_anomaly, arg_perihelion, node, inclination : ndarray of float64
        Degrees, ecliptic and equinox J2000.
    e, a, n : ndarray of float64
        Eccentricity, semi-major axis (AU), mean daily motion (deg/day).
    uncertainty : ndarray of int8
        MPC uncertainty parameter U, 0-9 (``E``/``F`` count as 9), -1 when unknown.
    last_obs_mjd : ndarray of float64
        Date of the last observation in the solution (UTC MJD), NaN when blank.
    skipped : int
        Lines that looked like orbits but did not parse.
    """

    packed: np.ndarray
    readable: np.ndarray
    number: np.ndarray
    h: np.ndarray
    g: np.ndarray
    epoch_mjd: np.ndarray
    mean_anomaly: np.ndarray
    arg_perihelion: np.ndarray
    node: np.ndarray
    inclination: np.ndarray
    e: np.ndarray
    a: np.ndarray
    n: np.ndarray
    uncertainty: np.ndarray
    last_obs_mjd: np.ndarray
    skipped: int = 0

    def __len__(self) -> int:
        return int(self.packed.size)

    def take(self, index: np.ndarray) -> OrbitCatalog:
        """The orbits at ``index`` (integer or boolean), as a new catalogue."""
        return OrbitCatalog(
            **{f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "skipped"},
            skipped=self.skipped,
        )

    def designation(self, i: int) -> str:
        """Readable designation of orbit ``i``, as a user writes it."""
        text = self.readable[i].decode("ascii", "replace").strip()
        return text or unpack_designation(self.packed[i].decode("ascii", "replace"))


# --------------------------------------------------------------------------- designations


def _b62(char: str) -> int:
    value = _B62.find(char)
    if value < 0:
        raise ValueError(f"{char!r} is not a packed-designation digit (0-9, A-Z, a-z)")
    return value


def unpack_designation(packed: str) -> str:
    """The readable form of a packed MPC designation.

    ``05945`` -> ``5945``, ``A0345`` -> ``100345``, ``~0000`` -> ``620000``,
    ``K19A00A`` -> ``2019 AA``, ``J95X01L`` -> ``1995 XL1``, ``PLS2040`` ->
    ``2040 P-L``.

    Raises
    ------
    ValueError
        Not a packed minor-planet designation.
    """
    text = packed.strip()
    if len(text) == 5 and text[0] == "~":
        value = 0
        for char in text[1:]:
            value = value * 62 + _b62(char)
        return str(620000 + value)
    if len(text) == 5 and text[1:].isdigit():
        return str(_b62(text[0]) * 10000 + int(text[1:]))
    if len(text) == 7 and text[:3] in ("PLS", "T1S", "T2S", "T3S") and text[3:].isdigit():
        survey = {"PLS": "P-L", "T1S": "T-1", "T2S": "T-2", "T3S": "T-3"}[text[:3]]
        return f"{int(text[3:])} {survey}"
    if len(text) == 7 and text[0] in _CENTURY and text[1:3].isdigit() and text[4].isalnum():
        year = _CENTURY[text[0]] + int(text[1:3])
        cycle = _b62(text[4]) * 10 + int(text[5]) if text[5].isdigit() else -1
        if cycle >= 0 and text[3].isupper() and text[6].isupper():
            return f"{year} {text[3]}{text[6]}{cycle if cycle else ''}"
    raise ValueError(f"{packed!r} is not a packed minor-planet designation")


_PROVISIONAL = re.compile(r"(\d{4}) ([A-Z])([A-Z])(\d*)")
_SURVEY = re.compile(r"(\d{4}) (P-L|T-1|T-2|T-3)")


def pack_designation(readable: str) -> str:
    """The packed form of a number or provisional designation (inverse of `unpack_designation`).

    Raises
    ------
    ValueError
        A designation this format cannot pack (say a name, or a number over 15 396 335).
    """
    text = readable.strip().strip("()")
    if text.isdigit():
        number = int(text)
        if number < 100000:
            return f"{number:05d}"
        if number < 620000:
            return f"{_B62[number // 10000]}{number % 10000:04d}"
        rest, digits = number - 620000, ""
        if rest >= 62**4:
            raise ValueError(f"{readable!r}: numbers above {620000 + 62**4 - 1} cannot be packed")
        for _ in range(4):
            rest, d = divmod(rest, 62)
            digits = _B62[d] + digits
        return "~" + digits
    match = _SURVEY.fullmatch(text)
    if match:
        return {"P-L": "PLS", "T-1": "T1S", "T-2": "T2S", "T-3": "T3S"}[match[2]] + match[1]
    match = _PROVISIONAL.fullmatch(text)
    if match:
        year, cycle = int(match[1]), int(match[4] or 0)
        century = {v: k for k, v in _CENTURY.items()}.get(year // 100 * 100)
        if century is None or cycle >= 620:
            raise ValueError(f"{readable!r}: cannot pack this provisional designation")
        return f"{century}{year % 100:02d}{match[2]}{_B62[cycle // 10]}{cycle % 10}{match[3]}"
    raise ValueError(f"{readable!r} is neither a number nor a provisional designation")


# --------------------------------------------------------------------------- parsing


def _lookup_table(mapping: dict[str, int]) -> np.ndarray:
    table = np.full(256, -1, dtype=np.int64)
    for char, value in mapping.items():
        table[ord(char)] = value
    return table


_B62_TABLE = _lookup_table({c: i for i, c in enumerate(_B62)})
_CENTURY_TABLE = _lookup_table(_CENTURY)
_NUMERIC_CHARS = np.zeros(256, dtype=bool)
_NUMERIC_CHARS[[ord(c) for c in "0123456789 .+-"]] = True
_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[[ord(c) for c in "0123456789"]] = True


def _mjd_from_date(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """MJD at 0h of Gregorian dates (vectorised days-from-civil)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return (era * 146097 + doe - 678881).astype(np.float64)


def _column(rows: np.ndarray, start: int, end: int) -> np.ndarray:
    """Fixed columns of every row as a bytes array (S{end-start})."""
    return np.ascontiguousarray(rows[:, start:end]).view(f"S{end - start}").ravel()


def _floats(rows: np.ndarray, start: int, end: int, ok: np.ndarray) -> np.ndarray:
    """Floats from fixed columns; rows that do not convert get NaN and lose ``ok``."""
    text = _column(rows, start, end)
    out = np.full(text.size, np.nan)
    blank = (rows[:, start:end] == 32).all(axis=1)
    todo = ok & ~blank
    try:
        out[todo] = text[todo].astype(np.float64)
    except ValueError:  # a field like "1.2.3": find it the slow way
        for i in np.flatnonzero(todo):
            try:
                out[i] = float(text[i])
            except ValueError:
                ok[i] = False
    return out


def _numbers(rows: np.ndarray) -> np.ndarray:
    """Permanent numbers from packed designations (-1 for provisional ones)."""
    first = _B62_TABLE[rows[:, 0]]
    rest = rows[:, 1:5]
    numbered = (rows[:, 5:7] == 32).all(axis=1) & _DIGITS[rest].all(axis=1) & (first >= 0)
    digits = (rest - 48).astype(np.int64) @ np.array([1000, 100, 10, 1])
    number = np.where(numbered, first * 10000 + digits, -1)
    tilde = (rows[:, 0] == ord("~")) & (rows[:, 5:7] == 32).all(axis=1)
    if tilde.any():
        b62 = _B62_TABLE[rows[tilde, 1:5]]
        good = (b62 >= 0).all(axis=1)
        number[np.flatnonzero(tilde)[good]] = 620000 + b62[good] @ np.array([62**3, 62**2, 62, 1])
    return number


def parse_mpcorb(data: bytes) -> OrbitCatalog:
    """Parse the text of an ``MPCORB.DAT`` file (or any part of one).

    Everything up to and including a line of dashes (the MPC's header) is
    skipped when such a line is near the top; blank lines are ignored. A line
    whose elements or epoch do not parse is skipped and counted in
    ``skipped``; so is one with e >= 1 or a <= 0 (not an ellipse).

    Parameters
    ----------
    data : bytes
        The file's content, uncompressed.

    Returns
    -------
    OrbitCatalog
        In file order; empty (not an error) when no line parses.
    """
    head = data[:200_000]
    sep = re.search(rb"(?m)^-{20,}\s*$", head)
    body = data[sep.end() :] if sep else data
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        return _empty()
    rows = (
        np.array([line.rstrip(b"\r") for line in lines], dtype=f"S{_LINE_WIDTH}")
        .view(np.uint8)
        .reshape(len(lines), _LINE_WIDTH)
    )
    rows[rows == 0] = 32  # short lines are padded with NULs
    ok = (rows[:, 0] != 32) & (rows[:, 102] != 32)  # a designation, and a line that reaches a
    for start, end in _NUMERIC.values():
        ok &= _NUMERIC_CHARS[rows[:, start:end]].all(axis=1)
    values = {name: _floats(rows, start, end, ok) for name, (start, end) in _NUMERIC.items()}
    for name in _REQUIRED:
        ok &= np.isfinite(values[name])
    ok &= (values["e"] >= 0) & (values["e"] < 1) & (values["a"] > 0)

    epoch = rows[:, 20:25]
    century = _CENTURY_TABLE[epoch[:, 0]]
    yy = (epoch[:, 1:3].astype(np.int64) - 48) @ np.array([10, 1])
    month = _B62_TABLE[epoch[:, 3]]
    day = _B62_TABLE[epoch[:, 4]]
    ok &= (century >= 0) & _DIGITS[epoch[:, 1:3]].all(axis=1)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    epoch_mjd = _mjd_from_date(century + yy, month, day)

    last = rows[:, 194:202]
    has_last = _DIGITS[last].all(axis=1)
    ymd = (last.astype(np.int64) - 48) @ (10 ** np.arange(7, -1, -1))
    last_mjd = np.where(has_last, _mjd_from_date(ymd // 10000, ymd // 100 % 100, ymd % 100), np.nan)
    u_char = rows[:, 105]
    uncertainty = np.where(_DIGITS[u_char], u_char.astype(np.int64) - 48, -1)
    uncertainty = np.where((u_char == ord("E")) | (u_char == ord("F")), 9, uncertainty)

    keep = np.flatnonzero(ok)
    n = values["n"][keep]
    a = values["a"][keep]
    n = np.where(np.isfinite(n) & (n > 0), n, 0.9856076686 / a**1.5)
    g = values["g"][keep]
    return OrbitCatalog(
        packed=_column(rows, 0, 7)[keep].astype("S7"),
        readable=np.char.strip(_column(rows, 166, 194)[keep]).astype("S28"),
        number=_numbers(rows)[keep],
        h=values["h"][keep],
        g=np.where(np.isfinite(g), g, 0.15),
        epoch_mjd=epoch_mjd[keep],
        mean_anomaly=values["mean_anomaly"][keep],
        arg_perihelion=values["arg_perihelion"][keep],
        node=values["node"][keep],
        inclination=values["inclination"][keep],
        e=values["e"][keep],
        a=a,
        n=n,
        uncertainty=uncertainty[keep].astype(np.int8),
        last_obs_mjd=last_mjd[keep],
        skipped=int(ok.size - keep.size),
    )


def _empty() -> OrbitCatalog:
    z = np.zeros(0)
    return OrbitCatalog(
        packed=np.zeros(0, dtype="S7"),
        readable=np.zeros(0, dtype="S28"),
        number=np.zeros(0, dtype=np.int64),
        h=z,
        g=z,
        epoch_mjd=z,
        mean_anomaly=z,
        arg_perihelion=z,
        node=z,
        inclination=z,
        e=z,
        a=z,
        n=z,
        uncertainty=np.zeros(0, dtype=np.int8),
        last_obs_mjd=z,
    )


# --------------------------------------------------------------------------- files and cache


def _read(path: Path) -> bytes:
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if gzipped:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def _content_key(path: Path) -> str:
    """A hash of the file's bytes as stored (BLAKE2b, 1 MiB blocks): about 1 GB/s."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_catalog(
    path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None
) -> OrbitCatalog:
    """Read an ``MPCORB.DAT`` file (plain or ``.gz``), through a cache of parsed columns.

    Parameters
    ----------
    path : path-like
        The catalogue file.
    cache_dir : path-like or None, keyword-only
        Folder for ``mpcorb-<hash>.npz``, keyed by the file's content (so a new
        download is parsed again, a renamed copy is not). None parses every time.

    Returns
    -------
    OrbitCatalog

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist; the message says how to get a catalogue.
    ValueError
        The file holds no orbit at all (not an MPCORB file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such orbit catalogue. Run `astrohunter orbits update` to download "
            "MPCORB.DAT.gz, or point --orbits / ASTROHUNTER_ORBITS at an MPCORB-format file."
        )
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"mpcorb-v{_CACHE_VERSION}-{_content_key(path)}.npz"
        if cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as saved:
                    arrays = {f.name: saved[f.name] for f in fields(OrbitCatalog)}
                arrays["skipped"] = int(arrays["skipped"])
                return OrbitCatalog(**arrays)
            except (OSError, KeyError, ValueError):
                cache.unlink(missing_ok=True)  # damaged: parse again below
    catalog = parse_mpcorb(_read(path))
    if len(catalog) == 0 and catalog.skipped == 0:
        raise ValueError(
            f"{path}: no orbit lines found; expected the MPC's MPCORB.DAT format "
            "(202-column lines after a line of dashes)."
        )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mpcorb-", suffix=".npz.part", dir=cache.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **{f.name: getattr(catalog, f.name) for f in fields(catalog)})
            os.replace(tmp, cache)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return catalog


# --------------------------------------------------------------------------- writing


def _packed_epoch(mjd: float) -> str:
    days = round(mjd) + 678881
    era, doe = divmod(days, 146097)
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    century = {v: k for k, v in _CENTURY.items()}[year // 100 * 100]
    return f"{century}{year % 100:02d}{_B62[month]}{_B62[day]}"


def mpcorb_line(
    *,
    packed: str,
    readable: str,
    h: float,
    g: float,
    epoch_mjd: float,
    mean_anomaly: float,
    arg_perihelion: float,
    node: float,
    inclination: float,
    e: float,
    a: float,
    uncertainty: int = 0,
    last_obs: str = "",
) -> str:
    """One 202-column MPCORB line (the MPC's own layout), for tests and simulated fields.

    ``epoch_mjd`` is rounded to a whole TT date (MPCORB epochs are 0h TT);
    ``n`` is derived from ``a`` with the Gaussian constant; the columns the
    identification does not read (reference, counts, arc, rms, perturbers,
    computer, flags) hold placeholders.
    """
    n = 0.9856076686 / a**1.5
    return (
        f"{packed:<7} {h:5.2f} {g:5.2f} {_packed_epoch(epoch_mjd)} {mean_anomaly % 360:9.5f}  "
        f"{arg_perihelion % 360:9.5f}  {node % 360:9.5f}  {inclination:9.5f}  {e:9.7f} "
        f"{n:11.8f} {a:11.7f}  {uncertainty:1d} {'AstroHntr':<9} {10:5d} {1:3d} {'2019-2019':<9} "
        f"{0.5:4.2f} {'M-v':<3} {'3Ek':<3} {'SIMULATED':<10} {'0000':<4} {readable:<28}"
        f"{last_obs:<8}"
    )
