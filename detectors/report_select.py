"""Reports of some tracks only: the saved report's lines of the tracks a reviewer kept.

A job's reports (the 80-column ``report.mpc``, ADES ``report.psv``) are
written once, when the search finishes, with everything known then: the
site's code, the header blocks, known objects' designations, the label of
simulated data. The frames they were made from may be cleaned up since. A
report of the confirmed tracks is that report without the other tracks'
observation lines: nothing is formatted twice, so it says exactly what the
full report says about each track it keeps.

A track is recognised in a report by the names it may carry there
(`report_names`): its temporary designation (80-column columns 6-12, ADES
``trkSub``), or for a known object its packed number or provisional
designation (columns 1-12) and its number or designation (``permID``,
``provID``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .report import mpc_designation

__all__ = ["SELECTORS", "report_names", "select_mpc", "select_psv"]

#: A header line of an 80-column report: three capital letters and a space (COD, COM, OBS...).
_MPC_HEADER = re.compile(r"[A-Z]{3} ")
#: ADES fields that name the object, one of them filled per observation.
_ADES_NAMES = ("permID", "provID", "trkSub")


def report_names(track: Mapping[str, Any]) -> set[str]:
    """The names a track may carry in a report.

    Parameters
    ----------
    track : mapping
        A track of the tracks contract (``id``, and ``known`` with
        ``number``, ``packed``, ``designation`` when it is a known object).

    Returns
    -------
    set of str
        Its ``id``; for a known object also its number, packed number,
        packed provisional designation and designation.
    """
    names = {str(track["id"])}
    known = track.get("known") or {}
    number, packed, designation = known.get("number"), known.get("packed"), known.get("designation")
    if number is not None:
        names |= {str(number), mpc_designation(number=int(number)).strip()}
    if packed:
        names.add(str(packed).strip())
    if designation:
        names.add(str(designation).strip())
    return names


def select_mpc(text: str, names: Collection[str]) -> str:
    """An 80-column report with only the observations of objects named in ``names``.

    Header lines (``COD``, ``COM``, ``OBS``, ...) are kept; an observation
    line is kept when its columns 1-12, stripped, are one of ``names``.
    """
    keep = set(names)
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if _MPC_HEADER.match(line) or line[:12].strip() in keep)


def select_psv(text: str, names: Collection[str]) -> str:
    """An ADES PSV report with only the observations of objects named in ``names``.

    Header blocks (``#``, ``!``) and the line of field names are kept; an
    observation is kept when its ``permID``, ``provID`` or ``trkSub`` is one
    of ``names``. Columns keep the full report's widths.
    """
    keep = set(names)
    out, columns = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith(("#", "!")) or not line.strip():
            out.append(line)
        elif columns is None:  # the line of field names
            fields = [f.strip() for f in line.split("|")]
            columns = [fields.index(name) for name in _ADES_NAMES if name in fields]
            out.append(line)
        else:
            values = [v.strip() for v in line.split("|")]
            if any(values[i] in keep for i in columns if i < len(values)):
                out.append(line)
    return "".join(out)


#: The selector of each report format, by the report's file suffix.
SELECTORS: dict[str, Callable[[str, Collection[str]], str]] = {
    "mpc": select_mpc,
    "psv": select_psv,
}
