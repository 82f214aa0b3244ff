"""The issue's bar on real frames: ``astrohunter detect`` on the Lowell sequence with a catalogue
of over a million orbits, decoys beside (5945), and both submission reports.

Speed is measured by ``benchmarks/identify_benchmark.py``, not asserted here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors import io
from detectors.observatories import site_from_header
from detectors.orbit_sim import catalog_with_decoys, mpcorb_text
from detectors.orbits import load_catalog
from detectors.predict import Footprint

from .conftest import shared_path
from .detectors.known_helpers import LOWELL
from .detectors.test_ades import valsubmit
from .detectors.test_identify import CLONE_PX
from .test_cli import run_cli

pytestmark = pytest.mark.realdata


def test_detect_names_5945_among_a_million_orbits_and_writes_submittable_reports(tmp_path):
    folder = shared_path(*LOWELL)
    frames = io.load_frames(io.expand_paths([folder / "frames"])).frames
    middle = frames[len(frames) // 2]
    mjd = np.array([f.mjd for f in frames])
    catalog, clones = catalog_with_decoys(
        load_catalog(folder / "mpcorb_5945.dat"),
        n_background=1_000_000,
        clone_offsets_px=CLONE_PX,
        footprint=Footprint(middle.wcs, middle.shape),
        site=site_from_header(middle.header),
        mjd=float(np.mean(mjd[[0, -1]])),
    )
    orbits = tmp_path / "MPCORB.DAT"
    orbits.write_text(mpcorb_text(catalog))
    assert len(catalog) >= 1_000_000

    proc = run_cli(
        "detect", folder / "frames",
        "--bias", folder / "calib" / "master_bias.fits",
        "--flat", folder / "calib" / "master_flat.fits",
        "--rate-min", 2, "--rate-max", 20,
        "--out", tmp_path / "tracks.json",
        "--orbits", orbits, "--observatory", "688",
        "--mpc", tmp_path / "report.mpc", "--ades", tmp_path / "report.psv",
        "--measurer", "A. Tester", "--submitter", "A. Tester",
        "--telescope-design", "Reflector", "--telescope-aperture", "1.07",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "tracks.json").read_text())
    (track,) = doc["tracks"]
    assert track["known_object"] == "(5945) Roachapproach"
    assert track["known"]["number"] == 5945 and track["known"]["source"] == "mpcorb"
    assert track["known"]["offset_arcsec"] <= 2.0
    in_field = {o["designation"]: o for o in doc["run"]["known_in_field"]}
    assert set(clones) <= set(in_field)
    assert all(in_field[name]["track_id"] is None for name in clones)
    assert in_field["(5945) Roachapproach"]["track_id"] == track["id"]
    assert doc["run"]["known"]["catalog_size"] >= 1_000_000
    assert "identify" in doc["run"]["timings_s"]
    assert "(5945) Roacha" in proc.stderr  # the table names it

    mpc = (tmp_path / "report.mpc").read_text().splitlines()
    assert mpc[0] == "COD 688"
    observations = [line for line in mpc if len(line) == 80]
    assert len(observations) == len(track["observations"])
    assert all(line.startswith("05945 ") and line.endswith("688") for line in observations)
    verdict = valsubmit((tmp_path / "report.psv").read_text(), tmp_path)
    assert "submit is OK" in verdict, verdict
