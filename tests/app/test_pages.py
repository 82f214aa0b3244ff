"""The pages' views: the search form follows the request model; track entries from the contract."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model

from app.pages import PANEL_PX, frame_labels, review_summary, search_form, track_entries
from app.schemas import SearchRequest

SOURCES = [
    {"name": "simulated", "description": "made up"},
    {"name": "local", "description": "yours"},
]


def _fields(groups) -> dict:
    return {f.name: (g.title, f) for g in groups for f in g.fields}


def test_the_form_has_every_request_field_with_its_type_limits_and_help():
    fields = _fields(search_form(SearchRequest.model_json_schema(), SOURCES))
    assert set(fields) == set(SearchRequest.model_fields)
    group, ra = fields["ra"]
    assert group == "Where" and ra.kind == "number" and ra.required and ra.unit == "deg"
    assert fields["seed"][1].kind == "integer" and fields["seed"][1].attrs["step"] == "1"
    assert fields["faint"][1].kind == "checkbox" and fields["faint"][1].default is True
    assert fields["start"][1].kind == "datetime"
    assert fields["rate_max"][1].attrs["max"] == "36000" and fields["rate_max"][1].unit == '"/h'
    source = fields["source"][1]
    assert source.kind == "select" and [v for v, _ in source.choices] == ["simulated", "local"]


def test_a_field_added_to_the_request_appears_on_the_form():
    """A field the request gains appears on the page, with its choices, nothing else to do."""
    extended = create_model(
        "Extended",
        __base__=SearchRequest,
        colour=(Literal["red", "green"], Field("red", description="a colour")),
    )
    fields = _fields(search_form(extended.model_json_schema(), SOURCES))
    group, colour = fields["colour"]
    assert group == "More" and colour.kind == "select" and colour.default == "red"
    assert colour.choices == [("red", "red"), ("green", "green")]


def test_the_observatory_and_known_object_fields_leave_the_default_to_the_server():
    fields = _fields(search_form(SearchRequest.model_json_schema(), SOURCES))
    assert fields["observatory"][0] == fields["known"][0] == "Reports"
    assert fields["observatory"][1].attrs["pattern"] == "^[0-9A-Z][0-9][0-9]$"
    known = fields["known"][1]
    assert known.kind == "select" and known.choices[0] == ("", "default")  # sent as nothing
    assert [v for v, _ in known.choices[1:]] == ["auto", "mpcorb", "skybot", "none"]


def _track(**extra) -> dict:
    observations = [
        {
            "mjd": 60000.0 + i / 96,
            "ra": 1.0,
            "dec": 2.0,
            "mag": 18.0 + i / 10,
            "snr": 8.0 + i,
            "frame": f"f{i}.fits",
        }
        for i in (0, 1, 3)
    ]
    return {"id": "AH00001", "observations": observations, "rate_arcsec_per_hour": 10.0, **extra}


LAYOUT = {
    "shape": [200, 200],
    "sheets": {"stamps-0.png": [600, 400]},
    "tracks": {
        "AH00001": {
            "file": "stamps-0.png",
            "top": 100,
            "width": 504,
            "height": 189,
            "diff": {"size": 63, "top": 0},
            "sky": {"size": 126, "top": 63, "x0": 10, "y0": 20},
            "xy": [[10.0, 20.0], [20.0, 20.0], [30.0, 20.0], [200.0, 20.0]],
            "measured": [True, True, False, True],
            "path": [[20.0, 40.0], [210.0, 40.0]],
        }
    },
}


def test_a_track_entry_says_what_it_is_and_where_its_stamps_are():
    known = {"offset_arcsec": 0.4, "predicted_v": 17.9, "source": "mpcorb"}
    track = _track(known_object="(5945) Roachapproach", known=known, digest2={"neo": 54.0})
    [entry] = track_entries(
        [track], LAYOUT, frames=[f"f{i}.fits" for i in range(4)], image_url="/i/", images=[]
    )
    assert entry.designation == "(5945) Roachapproach" and "0.4" in entry.known_note
    assert entry.neo == 54.0 and entry.mag == 18.1 and entry.observations == 3
    assert entry.review == "pending"
    stamps = entry.stamps
    assert stamps is not None and stamps.src == "/i/stamps-0.png"
    assert (stamps.width, stamps.height) == (600, 400)  # the sheet's
    assert stamps.diff_cell == PANEL_PX and stamps.diff_top == 100 * PANEL_PX / 63
    assert stamps.sky_top == (100 + 63) * PANEL_PX / 126
    assert entry.marks[0] == [21.0, 41.0] and entry.marks[3] is None  # outside the sky panel
    assert entry.captions[2].startswith("not measured") and "SNR 9.0" in entry.captions[1]


def test_a_job_from_before_the_review_stamps_shows_its_strips():
    [entry] = track_entries(
        [_track()], None, frames=["f0.fits"], image_url="/i/", images=["AH00001.png"]
    )
    assert entry.designation == "new" and entry.neo is None
    assert entry.stamps is None and entry.strip == "/i/AH00001.png"


def test_frame_labels_and_summary():
    assert frame_labels([60000.5, 60000.5 + 30 / 1440]) == [
        "12:00:00 UTC, +0 min",
        "12:30:00 UTC, +30 min",
    ]
    reviews = [{"review": {"state": s}} for s in ("confirmed", "pending", "confirmed")] + [{}]
    assert review_summary(reviews) == {"pending": 2, "confirmed": 2, "rejected": 0}
