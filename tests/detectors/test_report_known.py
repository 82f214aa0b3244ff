"""The 80-column report for submission: header lines (COD, OBS, MEA, TEL, NET, ACK) and known names."""

from __future__ import annotations

import pytest

from detectors.report import mpc_designation, mpc_header, mpc_report, mpc_report_known

from .test_report import make_frames, make_track


def test_header_lines():
    text = mpc_header(
        observatory_code="688",
        observers=["B. Skiff"],
        measurers=["B. Skiff", "AstroHunter"],
        telescope="1.1-m f/8 reflector + CCD",
        net="Gaia2",
        ack="AstroHunter 2019-03-26",
        contact="B. Skiff, Lowell Observatory",
        email="skiff@example.org",
    )
    lines = text.splitlines()
    assert lines[0] == "COD 688"
    assert "OBS B. Skiff" in lines and "MEA B. Skiff, AstroHunter" in lines
    assert "TEL 1.1-m f/8 reflector + CCD" in lines and "NET Gaia-DR2" in lines
    assert "ACK AstroHunter 2019-03-26" in lines and "CON [skiff@example.org]" in lines
    assert all(len(line) <= 80 for line in lines)


def test_long_lists_continue_on_more_lines():
    names = [f"Observer Number{i:02d}" for i in range(12)]
    lines = mpc_header(
        observatory_code="G96", observers=names, measurers=["M"], telescope="T"
    ).splitlines()
    obs = [line for line in lines if line.startswith("OBS ")]
    assert len(obs) >= 3 and all(len(line) <= 80 for line in obs)
    assert ", ".join(line[4:] for line in obs) == ", ".join(names)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"observatory_code": "500"}, "site's code"),
        ({"observatory_code": "68"}, "site's code"),
        ({"measurers": [" "]}, "measurer"),
        ({"telescope": ""}, "telescope"),
    ],
)
def test_a_report_without_a_real_site_or_people_is_refused(kwargs, message):
    args = {"observatory_code": "688", "observers": ["A"], "measurers": ["B"], "telescope": "T"}
    with pytest.raises(ValueError, match=message):
        mpc_header(**(args | kwargs))


@pytest.mark.parametrize(
    ("kwargs", "columns"),
    [
        ({"number": 5945, "temporary": "AH00001"}, "05945       "),
        ({"number": 100345}, "A0345       "),
        ({"number": 620000}, "~0000       "),
        ({"packed": "K19A00A", "temporary": "AH00001"}, "     K19A00A"),
        ({"temporary": "AH00001"}, "     AH00001"),
    ],
)
def test_designation_columns(kwargs, columns):
    assert mpc_designation(**kwargs) == columns


def test_known_tracks_are_relabelled_in_the_report():
    frames = make_frames(code="688")
    report = mpc_report(
        [make_track(track_id="AH00001"), make_track(track_id="AH00002", ra=124.63)],
        frames=frames,
    )
    known = mpc_report_known(report, {"AH00001": mpc_designation(number=5945)})
    lines = known.splitlines()
    assert all(len(line) == 80 for line in lines)
    assert [line[:12] for line in lines[:4]] == ["05945       "] * 4
    assert [line[:12] for line in lines[4:]] == ["     AH00002"] * 4
    assert [line[12:] for line in lines] == [line[12:] for line in report.splitlines()]
    assert lines[0].endswith("688")
