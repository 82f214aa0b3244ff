"""ADES PSV, checked by the IAU's own validator (iau-ades: psvtoxml, then valsubmit)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from detectors.ades import AdesContext, AdesTrack, ades_ids, ades_psv, ast_cat_from_header
from detectors.predict import KnownObject

from ..conftest import need, shared_path
from .known_helpers import LOWELL, measured_track

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = AdesContext(
    observatory_code="688",
    observatory_name="Lowell Observatory, Anderson Mesa Station",
    submitter="B. Skiff",
    observers=["B. Skiff"],
    measurers=["B. Skiff", "AstroHunter"],
    telescope_name="Hall 1.1-m",
    telescope_design="Reflector",
    telescope_aperture_m=1.07,
    telescope_detector="CCD",
    comment=["Found with AstroHunter"],
)


def _validator(name: str) -> str:
    script = Path(sys.executable).with_name(name)
    need(script.exists() or shutil.which(name) is not None, f"{name} (pip install iau-ades)")
    return str(script if script.exists() else shutil.which(name))


def valsubmit(psv: str, folder: Path) -> str:
    """Convert with psvtoxml and validate with valsubmit; returns valsubmit's verdict text."""
    (folder / "obs.psv").write_text(psv)
    subprocess.run(
        [_validator("psvtoxml.py"), "obs.psv", "obs.xml"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [_validator("valsubmit.py"), "obs.xml"], cwd=folder, capture_output=True, text=True
    )
    return done.stdout + done.stderr


def _track(ids, *, mag=None, band=None, n=4, ra0=124.6):
    mjd = 58568.1 + np.arange(n) * 0.02
    return AdesTrack(
        mjd=mjd,
        ra=ra0 + np.arange(n) * 1e-3,
        dec=25.3 - np.arange(n) * 5e-4,
        rms_ra_arcsec=np.full(n, 0.12),
        rms_dec_arcsec=np.full(n, 0.1),
        mag=mag,
        rms_mag=None if mag is None else np.full(n, 0.08),
        band=band,
        **ids,
    )


def test_known_numbered_provisional_and_new_tracks_pass_valsubmit(tmp_path):
    tracks = [
        _track(ades_ids(KnownObject("(5945) Roachapproach", number=5945), "AH00001")),
        _track(ades_ids(KnownObject("2019 AA", packed="K19A00A"), "AH00002"), ra0=124.61),
        _track(
            ades_ids(None, "AH00003"),
            mag=np.array([18.31, np.nan, 18.4, 18.35]),
            band="G",
            ra0=124.62,
        ),
    ]
    psv = ades_psv(CONTEXT, tracks, ast_cat="Gaia2", phot_cat="Gaia2")
    assert "submit is OK" in valsubmit(psv, tmp_path)
    lines = psv.splitlines()
    assert lines[0] == "# version=2022" and "! mpcCode 688" in lines
    fields = [
        f.strip() for f in next(line for line in lines if line.startswith("permID")).split("|")
    ]
    rows = [
        dict(zip(fields, (v.strip() for v in line.split("|")), strict=True))
        for line in lines
        if line.startswith(("5945", " "))
    ]
    assert rows[0]["permID"] == "5945" and rows[0]["obsTime"] == "2019-03-26T02:24:00.000Z"
    assert rows[4]["provID"] == "2019 AA"
    assert rows[8]["trkSub"] == "AH00003" and rows[8]["band"] == "G" and rows[8]["mag"] == "18.31"
    assert rows[9]["mag"] == "" and rows[9]["band"] == ""  # no magnitude in that frame


def test_the_validator_does_reject_a_broken_file(tmp_path):
    """valsubmit is a real check: a file without the telescope's design fails."""
    psv = ades_psv(CONTEXT, [_track(ades_ids(None, "AH00001"))], ast_cat="Gaia2")
    broken = "\n".join(line for line in psv.splitlines() if not line.startswith("! design"))
    assert "submit has failed" in valsubmit(broken + "\n", tmp_path)


def test_the_lowell_track_as_5945(tmp_path):
    folder = shared_path(*LOWELL)
    header = fits.getheader(folder / "frames" / "20190326.0126.fits")
    track = measured_track(folder)
    ast_cat = ast_cat_from_header(header, float(track.mjd[0]))
    assert ast_cat == "Gaia2"  # REGCAT='GAIA' in March 2019: DR2
    errors = np.full(track.mjd.size, 0.05)
    psv = ades_psv(
        CONTEXT,
        [AdesTrack(mjd=track.mjd, ra=track.ra, dec=track.dec, rms_ra_arcsec=errors,
                   rms_dec_arcsec=errors, perm_id="5945")],
        ast_cat=ast_cat,
    )  # fmt: skip
    assert "submit is OK" in valsubmit(psv, tmp_path)
    assert psv.count("|688 |") == 17 or psv.count("|688|") == 17


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"observatory_code": "500"}, "observatory code"),
        ({"observatory_code": ""}, "observatory code"),
        ({"measurers": []}, "measurer"),
        ({"telescope_aperture_m": 0.0}, "aperture"),
        ({"submitter": "A | B"}, "submitter"),
    ],
)
def test_missing_header_fields_are_named(change, message):
    from dataclasses import replace

    with pytest.raises(ValueError, match=message):
        ades_psv(replace(CONTEXT, **change), [_track({"trk_sub": "A1"})], ast_cat="Gaia2")


def test_names_and_catalogues_are_checked():
    with pytest.raises(ValueError, match="trkSub"):
        ades_ids(None, "AH 00001")
    with pytest.raises(ValueError, match="astCat"):
        ades_psv(CONTEXT, [_track({"trk_sub": "A1"})], ast_cat="Gaia DR2")
    with pytest.raises(ValueError, match="exactly one"):
        ades_psv(CONTEXT, [_track({"trk_sub": "A1", "perm_id": "5945"})], ast_cat="Gaia2")


@pytest.mark.parametrize(
    ("value", "mjd", "code"),
    [
        ("GAIA", 58568.0, "Gaia2"),
        ("GAIA", 59500.0, "Gaia3E"),
        ("GAIA", 57000.0, "Gaia1"),
        ("Gaia DR3", 60000.0, "Gaia3"),
        ("GAIA-EDR3", 60000.0, "Gaia3E"),
        ("UCAC4", 56000.0, "UCAC4"),
        ("PS1", 58000.0, "PS1_DR2"),
        ("", 58000.0, None),
        ("my own stars", 58000.0, None),
    ],
)
def test_astcat_from_header(value, mjd, code):
    assert ast_cat_from_header({"REGCAT": value}, mjd) == code


def test_the_package_never_imports_the_validator():
    """iau-ades states no licence: a test-only dependency, never imported by the package."""
    imports = re.compile(r"^\s*(import ades\b|from ades\b|import ades\.|from ades\.)", re.M)
    for folder in ("detectors", "app"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not imports.search(path.read_text()), path
