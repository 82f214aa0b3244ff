"""``auto``: the first real survey that can serve the position and time window.

Surveys are tried in order of fitness for asteroid searching: ZTF first
(1 arcsec pixels, deep, many exposures a night) where it reaches (Dec above
-31 deg, from March 2018), then TESS (21 arcsec pixels, nearly the whole
sky, from July 2018). A survey that does not cover the request is not
tried; one that cannot be reached or has no usable frames is passed over.
When none delivers, the job fails with one sentence naming each survey
and why, and pointing to ``local`` (your own frames) and ``simulated``,
which work offline. A survey whose host does not resolve (no network) is
passed over at once, without retries.
"""

from __future__ import annotations

from typing import Any

from detectors.errors import InputError

from ..disk import DiskSpaceError
from . import FetchProgress, FetchRequest, FetchResult, Source, get_source
from .http import NoNetwork, SourceUnavailable
from .survey import parse_window, window_text

__all__ = ["AutoSource", "plan"]

#: Surveys in order of fitness: (name, southernmost Dec, first UTC MJD).
SURVEYS = (("ztf", -31.0, 58194.0), ("tess", -90.0, 58324.8))


def plan(ra: float, dec: float, options: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Which surveys to try, in order, and why the others are not tried.

    Returns
    -------
    tried : list of str
        Source names to try, best first.
    unfit : list of str
        ``"name (reason)"`` for each survey that cannot cover the request.
    """
    _, end = parse_window(options)
    tried, unfit = [], []
    for name, dec_min, start_mjd in SURVEYS:
        if dec < dec_min:
            unfit.append(f"{name} (does not reach Dec {dec:.2f}; its limit is {dec_min:g})")
        elif end is not None and end < start_mjd:
            unfit.append(f"{name} (the time window ends before the survey began)")
        else:
            tried.append(name)
    return tried, unfit


class AutoSource(Source):
    name = "auto"
    description = (
        "The best real survey for the position and time window: ZTF, then TESS; fails with "
        "what was tried when none can serve"
    )
    coverage = "ZTF (Dec > -31 deg, 2018-03 onward), else TESS (nearly all sky, 2018-07 onward)"

    def validate(self, options: dict[str, Any]) -> None:
        parse_window(options)

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> FetchResult:
        tried, unfit = plan(request.ra, request.dec, request.options)
        failures: list[str] = []  # full messages, kept as job notes
        reasons: dict[str, str] = {}  # survey -> short reason, for the one-sentence error
        for name in tried:
            progress(0, 1, f"auto: trying {name}")
            try:
                result = get_source(name).fetch(request, progress)
            except DiskSpaceError:
                raise  # no survey can download to a full disk
            except (InputError, SourceUnavailable) as exc:
                text = str(exc).removeprefix(f"{name}: ")
                failures.append(f"{name}: {text}")
                reasons[name] = _short(exc)
                continue
            result.notes.insert(
                0,
                f"auto: using {name}"
                + (f" (passed over: {'; '.join(failures)})" if failures else ""),
            )
            result.source = name
            return result
        start, end = parse_window(request.options)
        where = f"RA {request.ra:.4f} Dec {request.dec:.4f}{window_text(start, end)}"
        said = [f"{name} ({why})" for name, why in reasons.items()] + unfit
        raise InputError(
            f"auto: no survey gave frames of {where} - tried {', '.join(said)}; "
            "source 'local' (your own frames) and 'simulated' work offline."
        )


def _short(exc: Exception) -> str:
    """A few words on why a survey gave nothing (no URLs: they are in the job's notes)."""
    if isinstance(exc, NoNetwork):
        return "no network"
    if isinstance(exc, SourceUnavailable):
        return "unreachable or failing"
    text = str(exc).split(": ", 1)[-1]
    return text.split(";")[0].split(" (")[0][:80]
