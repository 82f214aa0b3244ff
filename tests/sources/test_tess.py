"""``tess``: a TESScut cube becomes frames, and a search of them finds the injected mover."""

from __future__ import annotations

import io as stdio
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from app.sources import FetchRequest, get_source
from app.sources.tesscube import choose_cadences, frames_from_cube
from detectors import io

from .archive import SECTOR, TESS_EXPOSURE_S, serve_tesscut, tess_field, tesscut_cube, tesscut_zip
from .helpers import STAGES, job_of, run_job, submit, tracks_of

RA, DEC = 95.25, -42.5


@pytest.fixture(scope="module")
def sim():
    return tess_field(RA, DEC)


@pytest.fixture(scope="module")
def cube(sim):
    return tesscut_cube(sim, ra=RA, dec=DEC)


@pytest.fixture
def tesscut(archive, sim, cube):
    serve_tesscut(archive, ra=RA, dec=DEC, zipped=tesscut_zip(cube, ra=RA, dec=DEC))
    return archive


def test_cube_unpacks_into_frames_with_utc_times_wcs_and_electrons(sim, cube):
    frames, notes = frames_from_cube(cube)
    # 10 good cadences in the first 4 hours; flagged, empty and later ones left out.
    assert len(frames) == 10
    assert "3 cadences in that span skipped" in notes[0]  # 2 flagged, 1 empty
    truth_mjd = [f["mjd_mid"] for f in sim.truth["frames"]]
    for (name, data, header), mjd, (_, sim_data, sim_header) in zip(
        frames, truth_mjd, sim.frames, strict=True
    ):
        assert name.endswith("_cutout.fits") and f"s{SECTOR:04d}" in name
        # BTJD (TDB, barycentric) back to UTC at the spacecraft, within 10 ms.
        assert abs(header["MJD-AVG"] - mjd) * 86400 < 0.01
        assert header["EXPTIME"] == pytest.approx(TESS_EXPOSURE_S)
        assert header["GAIN"] == 1.0 and header["BUNIT"] == "electron"
        np.testing.assert_allclose(data, sim_data * sim_header["GAIN"], rtol=1e-5)
        ours, theirs = WCS(header), WCS(sim_header)
        np.testing.assert_allclose(
            ours.pixel_to_world_values(10.0, 20.0), theirs.pixel_to_world_values(10.0, 20.0)
        )


def test_the_reader_gets_the_same_time_as_the_header(sim, cube, tmp_path):
    name, data, header = frames_from_cube(cube)[0][0]
    frame = io.load_frame(io.write_fits(tmp_path / name, data, header))
    assert abs(frame.mjd - sim.truth["frames"][0]["mjd_mid"]) * 86400 < 0.01
    assert frame.gain == 1.0 and frame.exptime == pytest.approx(TESS_EXPOSURE_S)


def test_wcs_from_column_keywords_when_the_aperture_has_none(cube):
    bare = fits.HDUList([cube[0], cube[1], fits.ImageHDU(cube[2].data, name="APERTURE")])
    (_, _, header), *_ = frames_from_cube(bare)[0]
    expected = WCS(cube[2].header)
    np.testing.assert_allclose(
        WCS(header).pixel_to_world_values(3.0, 4.0), expected.pixel_to_world_values(3.0, 4.0)
    )


def test_cadence_window_is_evenly_spread_and_skips_bad_ones():
    mjd = 60000.0 + np.arange(100) * (200.0 / 86400.0)  # 200-s cadences
    good = np.ones(100, bool)
    good[5] = False
    rows, flagged = choose_cadences(mjd, good, hours=2.0, frames=12)
    assert len(rows) == 12 and 5 not in rows
    assert (mjd[rows[-1]] - mjd[rows[0]]) * 24 <= 2.0 + 1e-6 and flagged == 1
    rows, _ = choose_cadences(mjd, good, start=mjd[50], end=mjd[60], frames=15)
    assert rows.tolist() == list(range(50, 61))


def test_search_from_tess_finds_the_injected_mover(make_env, tesscut, sim):
    settings = make_env()
    job_id = submit(settings, ra=RA, dec=DEC, source="tess", radius_arcmin=22.0)
    run_job(job_id)
    job = job_of(settings, job_id)
    assert job.state == "done", job.error
    assert job.counts["frames"] == 10
    notes = [e.message for e in job.events if e.kind == "source"]
    assert any(f"sector {SECTOR}" in n for n in notes)
    # TESScut was asked for the sectors, then for one cube of the latest sector.
    assert tesscut.paths() == {"/tesscut/api/v0.1/sector": 1, "/tesscut/api/v0.1/astrocut": 1}
    _, query = tesscut.requests[-1]
    assert query["x"] == query["y"] == str(int(np.ceil(2 * 22.0 * 60 / 21.0)))

    truth = sim.truth["objects"][0]
    tracks = tracks_of(settings, job_id)["tracks"]
    assert tracks, "the injected mover was not found"
    best = min(tracks, key=lambda t: abs(t["rate_arcsec_per_hour"] - truth["rate_arcsec_per_hour"]))
    assert best["rate_arcsec_per_hour"] == pytest.approx(truth["rate_arcsec_per_hour"], rel=0.1)
    first = best["observations"][0]
    seen = min(truth["observations"], key=lambda o: abs(o["mjd"] - first["mjd"]))
    assert abs(seen["mjd"] - first["mjd"]) * 86400 < 1.0
    dra = (first["ra"] - seen["ra"]) * np.cos(np.radians(DEC)) * 3600
    assert np.hypot(dra, (first["dec"] - seen["dec"]) * 3600) < 21.0  # within a TESS pixel

    # The same search again: served from the cache, nothing requested.
    before = tesscut.count()
    again = submit(settings, ra=RA, dec=DEC, source="tess", radius_arcmin=22.0)
    run_job(again, stages=STAGES[:2])
    assert tesscut.count() == before
    manifest = json.loads((settings.job_dir(again) / "manifest.json").read_text())
    assert manifest["cache_hit"] is True and len(manifest["files"]) == 10
    events = [e.message for e in job_of(settings, again).events]
    assert any("from the cache" in m for m in events)


def test_cache_hit_is_reported_in_progress(make_env, tesscut, tmp_path):
    make_env()
    source = get_source("tess")
    messages: list[str] = []

    def progress(done, total, message):
        messages.append(message)

    request = FetchRequest(ra=RA, dec=DEC, radius_arcmin=5.0, dest=tmp_path / "a", options={})
    first = source.fetch(request, progress)
    assert not first.cache_hit and len(first) == 10
    assert any("MB" in m for m in messages)  # bytes reported while the cube streamed
    messages.clear()
    second = source.fetch(
        FetchRequest(ra=RA, dec=DEC, radius_arcmin=5.0, dest=tmp_path / "b", options={}),
        progress,
    )
    assert second.cache_hit and [p.name for p in second] == [p.name for p in first]
    assert messages and "from the cache" in messages[-1]
    # The job's raw/ holds links to the cached files, not downloads.
    assert second.paths[0].stat().st_ino == first.paths[0].stat().st_ino


def test_time_window_picks_the_sector_and_the_cadences(make_env, tesscut, sim, tmp_path):
    make_env()
    mids = [f["mjd_mid"] for f in sim.truth["frames"]]
    window = {
        "start": Time(mids[3] - 1e-4, format="mjd").isot,
        "end": Time(mids[9] + 1e-4, format="mjd").isot,
    }
    result = get_source("tess").fetch(
        FetchRequest(ra=RA, dec=DEC, radius_arcmin=5.0, dest=tmp_path / "raw", options=window),
        lambda *a: None,
    )
    assert len(result) == 7  # frames 3..9 (the flagged and empty cadences between are skipped)
    _, query = tesscut.requests[-1]
    assert query["sector"] == str(SECTOR)


def test_time_window_outside_the_cube_says_what_the_sector_covers(make_env, tesscut):
    settings = make_env()
    job_id = submit(
        settings,
        ra=RA,
        dec=DEC,
        source="tess",
        start="2024-04-25T00:00:00",
        end="2024-04-25T06:00:00",
    )
    run_job(job_id, stages=STAGES[:1])
    job = job_of(settings, job_id)
    assert job.state == "failed"
    assert f"sector {SECTOR} (2024-04-10T" in job.error and "has 0" in job.error
    far = submit(settings, ra=RA, dec=DEC, source="tess", start="2020-01-01T00:00:00")
    run_job(far, stages=STAGES[:1])
    assert "no TESS sector observed" in job_of(settings, far).error


def test_a_real_tesscut_file_unpacks(tmp_path):
    """astroquery's own TESScut test answer (sector 1, 2018): times and layout are read."""
    import astroquery

    sample = Path(astroquery.__file__).parent / "mast/tests/data/astrocut_107.27_-70.0_5x5.zip"
    if not sample.exists():
        pytest.skip(f"astroquery's test data is not installed ({sample})")
    with zipfile.ZipFile(sample) as archive:
        cube = fits.open(stdio.BytesIO(archive.read(archive.namelist()[0])))
    frames, _ = frames_from_cube(cube)
    assert len(frames) == 9  # 30-minute cadences over 4 hours
    name, data, header = frames[0]
    assert name == "tess2018206192942-s0001-4-3-0120-s_ffi_cutout.fits" and data.shape == (5, 5)
    # Sector 1's first FFI: 19:29:42 UTC start + 15 min, TIME 1325.32306 BTJD - TIMECORR.
    assert header["DATE-AVG"].startswith("2018-07-25T19:44:4")
    frame = io.load_frame(io.write_fits(tmp_path / name, data, header))
    assert frame.mjd == pytest.approx(header["MJD-AVG"])
