"""Reports of the confirmed tracks only: the saved report's lines of the tracks kept."""

from __future__ import annotations

import numpy as np

from detectors.ades import AdesContext, AdesTrack, ades_psv
from detectors.report import mpc_designation, mpc_header, mpc_report_known
from detectors.report_select import SELECTORS, report_names, select_mpc, select_psv

#: Three tracks as the contract gives them: a new one, a numbered and an unnumbered known one.
NEW = {"id": "AH00001"}
NUMBERED = {"id": "AH00002", "known": {"number": 5945, "packed": "05945", "designation": "5945"}}
PROVISIONAL = {
    "id": "AH00003",
    "known": {"number": None, "packed": "K19A00A", "designation": "2019 AA"},
}


def _mpc() -> str:
    """An 80-column report as the pipeline writes it: a comment, a header, 3 lines per track."""
    rest = f"{'  C2019 03 26.21567 12 34 56.789+12 34 56.78         17.8 V':<65}688"
    lines = [f"{'':5}{t['id']:<7}{rest}" for t in (NEW, NUMBERED, PROVISIONAL) for _ in range(3)]
    assert {len(line) for line in lines} == {80}
    body = mpc_report_known(
        "".join(line + "\n" for line in lines),
        {
            "AH00002": mpc_designation(number=5945),
            "AH00003": mpc_designation(packed="K19A00A"),
        },
    )
    header = mpc_header(
        observatory_code="688",
        observers=["A. Observer"],
        measurers=["B. Measurer"],
        telescope="1.1-m reflector + CCD",
    )
    return "COM SIMULATED DATA\n" + header + body


def _psv() -> str:
    context = AdesContext(
        observatory_code="688",
        submitter="A. Observer",
        measurers=["B. Measurer"],
        telescope_design="reflector",
        telescope_aperture_m=1.1,
        telescope_detector="CCD",
    )
    arrays = {
        "mjd": np.array([58568.2, 58568.21, 58568.22]),
        "ra": np.array([10.0, 10.001, 10.002]),
        "dec": np.array([5.0, 5.001, 5.002]),
        "rms_ra_arcsec": np.full(3, 0.2),
        "rms_dec_arcsec": np.full(3, 0.2),
    }
    tracks = [
        AdesTrack(trk_sub="AH00001", **arrays),
        AdesTrack(perm_id="5945", **arrays),
        AdesTrack(prov_id="2019 AA", **arrays),
    ]
    return ades_psv(context, tracks, ast_cat="Gaia2")


def test_a_track_is_known_by_every_name_a_report_may_give_it():
    assert report_names(NEW) == {"AH00001"}
    assert {"AH00002", "5945", "05945"} <= report_names(NUMBERED)
    assert {"AH00003", "K19A00A", "2019 AA"} <= report_names(PROVISIONAL)


def test_mpc_keeps_the_header_and_only_the_named_tracks_lines():
    text = _mpc()
    header = [line for line in text.splitlines() if line[:3] in ("COM", "COD", "OBS", "MEA", "TEL")]
    for kept in ([NEW], [NUMBERED], [PROVISIONAL], [NEW, PROVISIONAL]):
        names = set().union(*(report_names(t) for t in kept))
        lines = select_mpc(text, names).splitlines()
        assert lines[: len(header)] == header
        observations = lines[len(header) :]
        assert len(observations) == 3 * len(kept)
        assert set(observations) <= set(text.splitlines())  # never reformatted
    assert select_mpc(text, set()).splitlines() == header
    assert select_mpc(text, report_names(NUMBERED)).splitlines()[-1].startswith("05945")


def test_psv_keeps_the_header_blocks_and_only_the_named_tracks_rows():
    text = _psv()
    lines = text.splitlines()
    fields = next(i for i, line in enumerate(lines) if not line.startswith(("#", "!")))
    for kept, marker in ((NEW, "AH00001"), (NUMBERED, "5945"), (PROVISIONAL, "2019 AA")):
        out = select_psv(text, report_names(kept)).splitlines()
        assert out[: fields + 1] == lines[: fields + 1]
        rows = out[fields + 1 :]
        assert len(rows) == 3 and all(marker in row for row in rows), rows
    assert select_psv(text, set()).splitlines() == lines[: fields + 1]


def test_each_report_format_has_its_selector():
    assert SELECTORS == {"mpc": select_mpc, "psv": select_psv}
