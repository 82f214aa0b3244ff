"""What the review pages show: the search form, and a finished job's tracks and stamps.

Plain functions of what the API already holds (the request model's JSON
Schema, the tracks contract with each track's review, the stamps' layout the
detailed stage wrote beside its pictures); `app.api.routes.review` renders
them with the templates in ``app/api/templates``.

The search form is made from ``SearchRequest``'s schema, so a field added to
the request (an observatory code, the known-object source) appears on the
page with its help, limits and choices, and the page never sends a field the
API does not take.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.config import PARAMETERS

__all__ = [
    "PANEL_PX",
    "FormField",
    "FormGroup",
    "StampView",
    "TrackEntry",
    "frame_labels",
    "review_summary",
    "search_form",
    "track_entries",
]

#: Side of each stamp panel on the page, CSS pixels (a 63-pixel stamp at 4x).
PANEL_PX = 252

_MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)

#: How the form groups the request's fields; fields not named here go last.
_GROUPS = (
    ("Where", ("ra", "dec", "radius_arcmin")),
    ("Frames", ("source", "path", "start", "end")),
    ("What to find", ("rate_min", "rate_max", "faint", "seed")),
    ("Reports", ("observatory", "known")),
)
_LABELS = {
    "ra": "RA",
    "dec": "Dec",
    "radius_arcmin": "Radius",
    "source": "Source",
    "path": "Path",
    "start": "From (UTC)",
    "end": "To (UTC)",
    "rate_min": "Slowest",
    "rate_max": "Fastest",
    "faint": "Faint search",
    "seed": "Seed",
    "observatory": "Observatory code",
    "known": "Known objects",
}
_UNITS = {"ra": "deg", "dec": "deg", "rate_min": '"/h', "rate_max": '"/h'}
_EXAMPLES = {"ra": "83.8", "dec": "-5.4", "path": "/data/night1/*.fits", "observatory": "688"}


@dataclass(frozen=True)
class FormField:
    """One input of the search form.

    ``kind`` is ``number``, ``integer``, ``checkbox``, ``select``,
    ``datetime`` or ``text``: the page sends numbers as JSON numbers, a
    checkbox as true or false, and leaves out what is empty.
    """

    name: str
    label: str
    kind: str
    help: str
    required: bool = False
    default: Any = None
    unit: str = ""
    example: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FormGroup:
    title: str
    fields: list[FormField]


def _form_field(
    name: str, prop: Mapping[str, Any], required: bool, sources: Sequence[Mapping[str, Any]]
) -> FormField:
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    spec = {**prop, **(options[0] if options else {})}
    kind, attrs, choices = "text", {}, []
    if name == "source":
        kind = "select"
        choices = [(s["name"], f"{s['name']}: {s['description']}") for s in sources]
    elif "enum" in spec:
        kind, choices = "select", [(str(v), str(v)) for v in spec["enum"]]
        if prop.get("default") is None:  # left out of the request: the server decides
            choices.insert(0, ("", "default"))
    elif spec.get("type") == "boolean":
        kind = "checkbox"
    elif spec.get("type") in ("number", "integer"):
        kind = spec["type"]
        attrs["step"] = "1" if kind == "integer" else "any"
        for key, html in (("minimum", "min"), ("maximum", "max")):
            if key in spec:
                attrs[html] = f"{spec[key]:g}"
    elif spec.get("format") == "date-time":
        kind = "datetime"
    else:
        for key, html in (("maxLength", "maxlength"), ("pattern", "pattern")):
            if key in spec:
                attrs[html] = str(spec[key])
    unit = _UNITS.get(name) or (PARAMETERS[name].unit if name in PARAMETERS else "")
    return FormField(
        name=name,
        label=_LABELS.get(name, str(prop.get("title", name))),
        kind=kind,
        help=str(prop.get("description", "")),
        required=required,
        default=prop.get("default"),
        unit=unit.replace("arcsec/h", '"/h'),
        example=_EXAMPLES.get(name, ""),
        choices=choices,
        attrs=attrs,
    )


def search_form(schema: Mapping[str, Any], sources: Sequence[Mapping[str, Any]]) -> list[FormGroup]:
    """The search form's inputs, grouped, from ``SearchRequest``'s JSON Schema.

    Parameters
    ----------
    schema : mapping
        ``SearchRequest.model_json_schema()``.
    sources : sequence of mapping
        ``GET /sources``: the choices of ``source``.

    Returns
    -------
    list of FormGroup
        In `_GROUPS` order, then any field the groups do not name ("More").
    """
    props: Mapping[str, Any] = schema["properties"]
    required = set(schema.get("required", ()))
    placed = [name for _, names in _GROUPS for name in names]
    groups = [(title, [n for n in names if n in props]) for title, names in _GROUPS] + [
        ("More", [n for n in props if n not in placed])
    ]
    return [
        FormGroup(title, [_form_field(n, props[n], n in required, sources) for n in names])
        for title, names in groups
        if names
    ]


def _utc(mjd: float) -> dt.datetime:
    return _MJD_EPOCH + dt.timedelta(days=mjd)


def frame_labels(mjd: Sequence[float]) -> list[str]:
    """One label per frame: its UTC time and minutes since the first frame."""
    if not mjd:
        return []
    first = min(mjd)
    return [f"{_utc(m):%H:%M:%S} UTC, {(m - first) * 1440.0:+.0f} min" for m in mjd]


@dataclass(frozen=True)
class StampView:
    """Where a track's stamps are on their sheet, at the page's scale (CSS pixels).

    The sheet (``width`` x ``height`` pixels) is shown at ``diff_scale`` for
    the difference row, at ``sky_scale`` for the sky row (template, then the
    frames), each filling a `PANEL_PX` panel; the rows start ``diff_top``
    and ``sky_top`` down, and the page shows frame ``f`` by moving the sheet
    ``f`` cells left.
    """

    src: str
    diff_scale: float
    sky_scale: float
    width: int
    height: int
    diff_cell: float
    sky_cell: float
    diff_top: float
    sky_top: float


@dataclass(frozen=True)
class TrackEntry:
    """One track as the review page lists it."""

    id: str
    designation: str
    known_note: str
    neo: float | None
    rate: float | None
    pa: float | None
    mag: float | None
    snr: float | None
    observations: int
    origin: str
    review: str
    reviewed_at: str
    stamps: StampView | None
    strip: str | None
    #: Per frame: the object's place in the sky panel (CSS px; None outside it),
    #: and what was measured there.
    marks: list[list[float] | None]
    captions: list[str]
    #: First and last measured positions on the reference grid (the overview's overlay).
    path: list[list[float]] | None


def _known_note(track: Mapping[str, Any]) -> str:
    """How the track was matched to a known object, or why it was not."""
    known = track.get("known") or {}
    if not known:
        return str(track.get("identification") or "")
    parts = []
    if known.get("offset_arcsec") is not None:
        parts.append(f'{known["offset_arcsec"]:.1f}" from its prediction')
    if known.get("predicted_v") is not None:
        parts.append(f"predicted V {known['predicted_v']:.1f}")
    if known.get("source"):
        parts.append(f"({known['source']})")
    return " ".join(parts)


def _median_mag(track: Mapping[str, Any]) -> float | None:
    mags = [o["mag"] for o in track["observations"] if o.get("mag") is not None]
    return statistics.median(mags) if mags else None


def _stamps(src: str, spot: Mapping[str, Any], sheet: Sequence[int]) -> StampView:
    diff, sky = spot["diff"], spot["sky"]
    kd, ks = PANEL_PX / diff["size"], PANEL_PX / sky["size"]
    return StampView(
        src=src,
        diff_scale=kd,
        sky_scale=ks,
        width=sheet[0],
        height=sheet[1],
        diff_cell=diff["size"] * kd,
        sky_cell=sky["size"] * ks,
        diff_top=(spot["top"] + diff["top"]) * kd,
        sky_top=(spot["top"] + sky["top"]) * ks,
    )


def _marks(layout: Mapping[str, Any]) -> list[list[float] | None]:
    k = PANEL_PX / layout["sky"]["size"]
    marks: list[list[float] | None] = []
    for x, y in layout["xy"]:
        px, py = (x + 0.5) * k, (y + 0.5) * k
        inside = 0 <= px <= PANEL_PX and 0 <= py <= PANEL_PX
        marks.append([round(px, 1), round(py, 1)] if inside else None)
    return marks


def _captions(
    track: Mapping[str, Any], frames: Sequence[str], measured: Sequence[bool] | None
) -> list[str]:
    by_frame = {o.get("frame"): o for o in track["observations"]}
    out = []
    for i, name in enumerate(frames):
        obs = by_frame.get(name)
        if obs is None or (measured is not None and not measured[i]):
            out.append("not measured: predicted position")
            continue
        text = "measured"
        if obs.get("snr") is not None:
            text += f", SNR {obs['snr']:.1f}"
        if obs.get("mag") is not None:
            text += f", mag {obs['mag']:.2f}"
        out.append(text)
    return out


def track_entries(
    tracks: Sequence[Mapping[str, Any]],
    layout: Mapping[str, Any] | None,
    *,
    frames: Sequence[str],
    image_url: str,
    images: Sequence[str],
) -> list[TrackEntry]:
    """The review page's entry for each track.

    Parameters
    ----------
    tracks : sequence of mapping
        ``GET /jobs/{id}/tracks``'s tracks (with ``review``).
    layout : mapping or None
        The stamps' sheets and layout (``review.json``,
        `detectors.cutouts.review_pictures`);
        None for a job finished before review stamps were made: its entries
        show the blink strip instead.
    frames : sequence of str
        The job's frame file names in time order (the observations name them).
    image_url : str
        URL of the job's pictures, ending in ``/`` (``/jobs/{id}/images/``).
    images : sequence of str
        The pictures the job has.

    Returns
    -------
    list of TrackEntry
    """
    placed = (layout or {}).get("tracks", {})
    sheets = (layout or {}).get("sheets", {})
    out = []
    for t in tracks:
        spot = placed.get(t["id"])
        review = t.get("review") or {"state": "pending"}
        at = review.get("at")
        strip = f"{t['id']}.png"
        out.append(
            TrackEntry(
                id=t["id"],
                designation=t.get("known_object") or "new",
                known_note=_known_note(t),
                neo=(t.get("digest2") or {}).get("neo"),
                rate=t.get("rate_arcsec_per_hour"),
                pa=t.get("position_angle_deg"),
                mag=_median_mag(t),
                snr=t.get("stacked_snr"),
                observations=len(t["observations"]),
                origin=t.get("origin") or "",
                review=review["state"],
                reviewed_at=at.isoformat() if isinstance(at, dt.datetime) else str(at or ""),
                stamps=_stamps(image_url + spot["file"], spot, sheets[spot["file"]])
                if spot
                else None,
                strip=image_url + strip if strip in images and not spot else None,
                marks=_marks(spot) if spot else [],
                captions=_captions(t, frames, spot["measured"] if spot else None),
                path=spot["path"] if spot else None,
            )
        )
    return out


def review_summary(tracks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many tracks are pending, confirmed and rejected."""
    counts = {"pending": 0, "confirmed": 0, "rejected": 0}
    for t in tracks:
        counts[(t.get("review") or {}).get("state", "pending")] += 1
    return counts
