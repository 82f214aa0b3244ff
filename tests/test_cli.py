"""``astrohunter`` as a user runs it: real subprocesses of the installed command.

Every test starts the console script (or ``python -m app.cli`` when the
script is not installed next to the interpreter) and checks what a user sees:
the exit code, the files written, and the text on stderr. Bad input must stop
with exit code 2 and a message naming the file and the problem, never a
traceback.

The subprocess gets no ``COLUMNS``/``FORCE_COLOR``, so rich writes plain text
80 columns wide as it does into any log file; message checks join wrapped
lines back together (`_flat`) unless the test is about line breaks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io import fits

from detectors import __version__, io
from detectors.backend import gpu_available
from detectors.score import score_field
from detectors.simulate import simulate_field

from .conftest import check_contract, shared_path

_SCRIPT = Path(sys.executable).with_name("astrohunter")
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
STAGES = ("load", "align", "difference", "detect", "link", "fit", "total")
MPC_DATE = re.compile(r"^.{15}(\d{4} \d\d \d\d\.\d{6})")
LOWELL = ("data", "real", "lowell42-5945-roachapproach")
ZTF = ("data", "real", "ztf-alert-4371-fyodorov")
WCS_KEYS = (
    "WCSAXES",
    "CTYPE1",
    "CTYPE2",
    "CUNIT1",
    "CUNIT2",
    "RADESYS",
    "CRVAL1",
    "CRVAL2",
    "CRPIX1",
    "CRPIX2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
)
TIME_KEYS = ("DATE-OBS", "MJD-OBS")


def run_cli(
    *args: object, cwd: Path | None = None, faint: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``astrohunter ARGS`` and capture its output as text.

    ``detect`` runs get ``--no-faint`` unless ``faint``: the faint search has
    its own tests (tests/detectors/test_faint.py) and costs a minute per field.
    """
    if args and args[0] == "detect" and not faint:
        args = (*args, "--no-faint")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
    }
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def _flat(text: str) -> str:
    """``text`` with line wrapping undone (every run of whitespace becomes one space)."""
    return " ".join(text.split())


def assert_input_error(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit code 2, no traceback, and every ``expected`` phrase in stderr; returns stderr."""
    err = _flat(proc.stderr)
    assert proc.returncode == 2, f"exit code {proc.returncode}, stderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    for phrase in expected:
        assert phrase.lower() in err.lower(), f"{phrase!r} not in stderr: {proc.stderr}"
    return err


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """``astrohunter simulate``: a 384x384, 6-frame field with 4 bright movers."""
    out = tmp_path_factory.mktemp("cli") / "sim"
    proc = run_cli(
        "simulate",
        out,
        "--seed",
        3,
        "--size",
        384,
        "--frames",
        6,
        "--objects",
        4,
        "--snr-min",
        8,
        "--snr-max",
        15,
        "--rate-min",
        10,
        "--rate-max",
        80,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def detected(simulated):
    """``astrohunter detect`` on the simulated frames, with an MPC report."""
    proc = run_cli(
        "detect",
        simulated / "frames",
        "--out",
        simulated / "tracks.json",
        "--mpc",
        simulated / "report.txt",
        "--observatory",
        "X05",
        "--measurer",
        "A. Tester",
    )
    tracks = json.loads((simulated / "tracks.json").read_text()) if proc.returncode == 0 else None
    return proc, tracks


def _good_frames(simulated: Path) -> list[Path]:
    return sorted((simulated / "frames").glob("sim_*.fits"))


def _copy_good(simulated: Path, folder: Path, n: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in _good_frames(simulated)[:n]:
        shutil.copy(path, folder / path.name)
    return folder


def _write_variant(source: Path, target: Path, *, drop=(), data=None, update=None) -> Path:
    """Copy a good FITS frame with header keys removed or changed, or new pixels."""
    with fits.open(source) as hdul:
        header = hdul[0].header.copy()
        pixels = hdul[0].data.astype(np.float32)
    for key in drop:
        header.remove(key, ignore_missing=True)
    header.update(update or {})
    fits.writeto(target, pixels if data is None else data(pixels), header, overwrite=True)
    return target


# --------------------------------------------------------------------------- simulate + detect


def test_simulate_writes_truth_beside_the_frames(simulated):
    frames = _good_frames(simulated)
    assert [p.name for p in frames] == [f"sim_{k:03d}.fits" for k in range(6)]
    truth = json.loads((simulated / "truth.json").read_text())
    assert [f["name"] for f in truth["frames"]] == [p.name for p in frames]
    assert len(truth["objects"]) == 4
    # Nothing but frames inside the folder that detect reads.
    assert sorted(p.name for p in (simulated / "frames").iterdir()) == [p.name for p in frames]


def test_detect_exits_0_with_schema_valid_tracks(detected):
    proc, tracks = detected
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    check_contract(tracks)


def test_detect_recovers_every_mover_and_nothing_else(simulated, detected):
    proc, tracks = detected
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((simulated / "truth.json").read_text())
    score = score_field(tracks, truth)
    missed = [(o.id, round(o.snr, 1), round(o.rate_arcsec_per_hour, 1)) for o in score.objects]
    missed = [m for m, o in zip(missed, score.objects, strict=True) if not o.recovered]
    assert missed == [], f"missed (id, snr, rate): {missed}"
    assert score.false_tracks == 0, score.track_matches
    assert score.duplicates == 0, score.track_matches


def test_detect_writes_one_80_column_mpc_line_per_observation(simulated, detected):
    proc, tracks = detected
    assert proc.returncode == 0, proc.stderr
    text = (simulated / "report.txt").read_text().splitlines()
    header = [line for line in text if line[:4] in ("COD ", "OBS ", "MEA ", "TEL ", "NET ")]
    lines = text[len(header) :]
    assert header[0] == "COD X05" and "MEA A. Tester" in header, header
    assert len(lines) == sum(len(t["observations"]) for t in tracks["tracks"]) > 0
    assert all(len(line) == 80 for line in lines), [len(line) for line in lines]
    assert all(MPC_DATE.match(line) and line.endswith("X05") for line in lines)


def test_a_report_without_an_observatory_code_is_refused_before_the_search(simulated, tmp_path):
    proc = run_cli(
        "detect", simulated / "frames", "--out", "t.json", "--mpc", "r.mpc", cwd=tmp_path
    )
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "--observatory" in proc.stderr and "--measurer" in proc.stderr
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "r.mpc").exists()


def test_detect_shows_progress_and_summary_on_stderr(simulated, detected):
    proc, tracks = detected
    assert proc.returncode == 0, proc.stderr
    err = _flat(proc.stderr)
    for text in ("Loading frames", "Aligning", "Differencing", "Detecting", "Fitting tracks"):
        assert text in err, f"{text!r} missing from stderr: {proc.stderr}"
    assert f"{len(tracks['tracks'])} moving object(s) found" in err
    assert "tracks written to" in err
    assert proc.stdout == ""


def test_detect_run_block_records_version_device_and_timings(detected):
    proc, tracks = detected
    assert proc.returncode == 0, proc.stderr
    run = tracks["run"]
    assert run["version"] == __version__
    assert run["device"] == "cpu"
    timings = run["timings_s"]
    assert set(STAGES) <= set(timings), sorted(timings)
    assert all(timings[k] >= 0 for k in STAGES)
    assert timings["total"] >= max(timings[k] for k in STAGES if k != "total")


# --------------------------------------------------------------------------- --device gpu


@pytest.fixture
def no_gpu():
    if gpu_available():
        pytest.skip("a CUDA device is present: --device gpu works here")


def test_device_gpu_without_gpu_exits_2_naming_cupy(simulated, no_gpu):
    proc = run_cli("detect", simulated / "frames", "--out", "t.json", "--device", "gpu", "-q")
    err = assert_input_error(proc, "CuPy", "GPU")
    assert err.startswith("error:"), proc.stderr


def test_device_gpu_message_names_the_gpu_extra(simulated, no_gpu):
    proc = run_cli("detect", simulated / "frames", "--out", "t.json", "--device", "gpu", "-q")
    assert_input_error(proc, "astrohunter[gpu]")


def test_device_gpu_message_is_one_line(simulated, no_gpu):
    proc = run_cli("detect", simulated / "frames", "--out", "t.json", "--device", "gpu", "-q")
    assert_input_error(proc, "CuPy")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --------------------------------------------------------------------------- bad input


def test_fewer_than_three_frames(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "two", n=2)
    proc = run_cli("detect", folder.name, "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "at least 3", "found 2")


def test_text_file_named_fits(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    (folder / "x.fits").write_text("this is not a FITS file\n")
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "x.fits: not a readable FITS file")


def test_a_frame_without_wcs_is_registered_on_the_stars(simulated, detected, tmp_path):
    """A frame whose WCS is gone is placed by its stars, and the movers are still found."""
    folder = _copy_good(simulated, tmp_path / "frames")
    bare = _good_frames(simulated)[1]
    _write_variant(bare, folder / bare.name, drop=WCS_KEYS)
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "t.json").read_text())
    check_contract(doc)
    method = {r["frame"]: r["method"] for r in doc["run"]["registration"]}
    assert method[bare.name] == "stars"
    assert len(doc["tracks"]) == len(detected[1]["tracks"])


def test_frames_without_any_wcs_give_tracks_in_pixels(simulated, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in _good_frames(simulated):
        _write_variant(path, folder / path.name, drop=WCS_KEYS)
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "no WCS and no pixel scale", "--pixel-scale")
    proc = run_cli(
        "detect", "frames", "--out", "t.json", "--pixel-scale", 1.2, "--mpc", "r.txt",
        "--observatory", "X05", "--measurer", "A. Tester", cwd=tmp_path,
    )  # fmt: skip
    err = assert_input_error(proc, "tracks written to t.json", "no MPC report")
    assert "positions in pixels only" in err
    doc = json.loads((tmp_path / "t.json").read_text())
    check_contract(doc)
    assert doc["run"]["astrometry"] == "none" and len(doc["tracks"]) == 4
    obs = doc["tracks"][0]["observations"][0]
    assert "ra" not in obs and obs["x"] > 0 and obs["y"] > 0
    assert not (tmp_path / "r.txt").exists()


def test_approximate_sky_is_written_to_mpc_with_a_warning(simulated, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in _good_frames(simulated):
        with fits.open(path) as hdul:
            ra, dec = hdul[0].header["CRVAL1"], hdul[0].header["CRVAL2"]
        _write_variant(
            path, folder / path.name, drop=WCS_KEYS, update={"RA": ra, "DEC": dec, "SECPIX": 1.2}
        )
    proc = run_cli(
        "detect", "frames", "--out", "t.json", "--mpc", "r.txt",
        "--observatory", "X05", "--measurer", "A. Tester", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    err = _flat(proc.stderr)
    assert "warning: sky positions: APPROXIMATE" in err
    assert "MPC report's positions are APPROXIMATE" in err
    doc = json.loads((tmp_path / "t.json").read_text())
    assert {t["astrometry"] for t in doc["tracks"]} == {"approximate"}
    assert (tmp_path / "r.txt").read_text().count("\n") >= 12


def test_a_frame_that_cannot_be_registered_is_named_in_one_line(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    victim = _good_frames(simulated)[2]
    other = simulate_field(seed=99, shape=(384, 384), n_frames=1, n_objects=0).frames[0][1]
    _write_variant(victim, folder / victim.name, data=lambda d: other)
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    err = assert_input_error(proc, f"{victim.name}: cannot be registered", "--skip-bad")
    assert len(proc.stderr.strip().splitlines()) <= 3  # one message, wrapped at 80 columns
    proc = run_cli("detect", "frames", "--out", "t.json", "--skip-bad", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"skipped {victim.name}: cannot be registered" in _flat(proc.stderr)
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["field"]["frames"] == 5 and len(doc["tracks"]) == 4
    assert err


def test_fits_without_time(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    _write_variant(_good_frames(simulated)[0], folder / "notime.fits", drop=TIME_KEYS)
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "notime.fits:", "no observation time")


def test_all_nan_image(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    _write_variant(
        _good_frames(simulated)[0],
        folder / "blank.fits",
        data=lambda d: np.full_like(d, np.nan),
        update={"MJD-OBS": 60410.0, "DATE-OBS": "2024-04-10T00:00:00.000"},
    )
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "blank.fits:", "NaN")


def test_constant_image(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    _write_variant(
        _good_frames(simulated)[0],
        folder / "flat.fits",
        data=lambda d: np.full_like(d, 1000.0),
        update={"MJD-OBS": 60410.0, "DATE-OBS": "2024-04-10T00:00:00.000"},
    )
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "flat.fits:", "constant")


def test_frames_of_two_fields(simulated, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    good = _good_frames(simulated)
    for path in good[:3]:
        shutil.copy(path, folder / path.name)
    moved = []
    for k, path in enumerate(good[3:], start=3):
        with fits.open(path) as hdul:
            crval = hdul[0].header["CRVAL1"], hdul[0].header["CRVAL2"]
        target = folder / f"other_{k:03d}.fits"
        _write_variant(
            path,
            target,
            update={"CRVAL1": (crval[0] + 20.0) % 360.0, "CRVAL2": crval[1] * 0.5 + 5.0},
        )
        moved.append(target.name)
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    err = assert_input_error(proc, "different fields")
    assert any(name in err for name in moved), proc.stderr


def test_path_that_does_not_exist(tmp_path):
    proc = run_cli("detect", "missing.fits", "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "missing.fits", "no such file")


def test_empty_rate_range(simulated):
    proc = run_cli(
        "detect",
        simulated / "frames",
        "--out",
        "t.json",
        "--rate-min",
        10,
        "--rate-max",
        5,
    )
    assert_input_error(proc, "rate range", "--rate-min", "--rate-max")


def test_skip_bad_leaves_out_a_corrupt_file(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    content = _good_frames(simulated)[0].read_bytes()
    (folder / "corrupt.fits").write_bytes(content[: len(content) // 3])
    proc = run_cli("detect", "frames", "--out", "t.json", "--skip-bad", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "skipped corrupt.fits" in _flat(proc.stderr), proc.stderr
    tracks = json.loads((tmp_path / "t.json").read_text())
    assert tracks["field"]["frames"] == 6
    assert all(o["frame"] != "corrupt.fits" for t in tracks["tracks"] for o in t["observations"])


def test_without_skip_bad_the_corrupt_file_stops_the_run(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    content = _good_frames(simulated)[0].read_bytes()
    (folder / "corrupt.fits").write_bytes(content[: len(content) // 3])
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    assert_input_error(proc, "corrupt.fits:")
    assert not (tmp_path / "t.json").exists()


def test_a_bad_file_error_points_to_skip_bad(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    (folder / "x.fits").write_text("this is not a FITS file\n")
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    err = assert_input_error(proc, "x.fits:", "--skip-bad")
    assert "on_error" not in err


# --------------------------------------------------------------------------- partly blank frames


def test_partly_blank_frames(tmp_path):
    """A frame with its left 30 % blank and one with a 50-pixel blank border."""
    size, left, border = 512, int(0.3 * 512), 50
    field = simulate_field(
        seed=11,
        shape=(size, size),
        n_frames=7,
        n_objects=8,
        snr_range=(8.0, 15.0),
        rate_range=(10.0, 80.0),
    )
    field.frames[1][1][:, :left] = np.nan
    field.frames[4][1][:border] = np.nan
    field.frames[4][1][-border:] = np.nan
    field.frames[4][1][:, :border] = np.nan
    field.frames[4][1][:, -border:] = np.nan
    frames_dir, truth_path = io.write_simulated_field(field, tmp_path / "sim")

    proc = run_cli("detect", frames_dir, "--out", tmp_path / "t.json", "-q")
    assert proc.returncode == 0, proc.stderr

    def clear(obj) -> bool:  # 5 px (about 2 FWHM) away from any blank pixel
        o1, o4 = obj["observations"][1], obj["observations"][4]
        inside4 = border + 5 <= min(o4["x"], o4["y"]) and max(o4["x"], o4["y"]) <= size - border - 6
        return o1["x"] >= left + 5 and inside4

    truth = json.loads(truth_path.read_text())
    outside = {o["id"] for o in truth["objects"] if clear(o)}
    assert len(outside) >= 4, "the field should keep most movers clear of the blank regions"
    score = score_field(json.loads((tmp_path / "t.json").read_text()), truth)
    missed = sorted(o.id for o in score.objects if o.id in outside and not o.recovered)
    assert missed == [], f"movers clear of the blank regions were missed: {missed}"
    assert score.false_tracks == 0, score.track_matches
    assert score.duplicates == 0, score.track_matches


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_lowell_sequence_finds_roachapproach(tmp_path):
    folder = shared_path(*LOWELL)
    proc = run_cli(
        "detect",
        folder / "frames",
        "--bias",
        folder / "calib" / "master_bias.fits",
        "--flat",
        folder / "calib" / "master_flat.fits",
        "--out",
        tmp_path / "tracks.json",
        "--mpc",
        tmp_path / "report.txt",
        "--observatory",
        "688",
        "--measurer",
        "A. Tester",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    tracks = json.loads((tmp_path / "tracks.json").read_text())["tracks"]
    assert len(tracks) == 1, [t.get("rate_arcsec_per_hour") for t in tracks]
    assert len(tracks[0]["observations"]) >= 15
    assert tracks[0]["rate_arcsec_per_hour"] == pytest.approx(9.3, abs=0.3)
    text = (tmp_path / "report.txt").read_text().splitlines()
    # COD, OBS (the header's OBSERVER), MEA, TEL (the header's TELESCOP), NET (REGCAT GAIA).
    assert text[:5] == ["COD 688", "OBS BSkiff", "MEA A. Tester", "TEL hall", "NET Gaia-DR2"]
    lines = text[5:]
    assert len(lines) == len(tracks[0]["observations"])
    assert all(len(line) == 80 for line in lines), [len(line) for line in lines]
    dates = {MPC_DATE.match(line).group(1)[:10] for line in lines}
    assert dates == {"2019 03 26"}


@pytest.mark.realdata
def test_real_ztf_cutouts_without_wcs_or_time_are_refused(tmp_path):
    folder = shared_path(*ZTF)
    proc = run_cli("detect", folder, "--out", tmp_path / "t.json")
    err = assert_input_error(proc, "no observation time")
    assert re.search(r"candid\d+\w*\.fits\.gz:", err), proc.stderr
    assert not (tmp_path / "t.json").exists()


# --------------------------------------------------------------------------- what a new user hit


def test_a_non_fits_file_gives_exactly_one_line_and_exit_2(tmp_path):
    (tmp_path / "notes.fits").write_text("hello\n")
    proc = run_cli("detect", tmp_path / "notes.fits", "--out", tmp_path / "t.json")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: notes.fits: not a readable FITS file"), lines[0]
    assert "ignore_missing_simple" not in lines[0] and proc.stdout == ""


def test_a_bad_file_among_good_ones_gives_one_line(simulated, tmp_path):
    folder = _copy_good(simulated, tmp_path / "frames")
    (folder / "x.fits").write_text("not FITS\n")
    (folder / "y.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    proc = run_cli("detect", "frames", "--out", "t.json", cwd=tmp_path)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "x.fits:" in lines[0] and "y.fits:" in lines[0] and "--skip-bad" in lines[0]


def _options(parser) -> dict:
    import argparse

    return {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }


def test_every_command_and_option_has_help():
    from app.cli import build_parser

    for name, sub in _options(build_parser()).items():
        assert sub.description, f"astrohunter {name} has no description"
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"astrohunter {name} {action.option_strings or action.dest}"


def test_search_has_the_options_the_api_has():
    from app.cli import build_parser

    search = _options(build_parser())["search"]
    given = {s for a in search._actions for s in a.option_strings}
    assert {"--mpc", "--cutouts", "--start", "--end", "--rate-min", "--rate-max"} <= given
    assert {"--no-faint", "--radius-arcmin", "--seed", "--path", "--source"} <= given


def test_options_take_defaults_and_limits_from_the_settings_table():
    """One declaration per setting: the CLI, the API request and SearchConfig agree."""
    from app.cli import build_parser
    from app.schemas import SearchRequest
    from detectors.config import PARAMETERS, SearchConfig

    commands = _options(build_parser())
    config = SearchConfig()
    for p in PARAMETERS.values():
        for scope, command in (("detect", "detect"), ("request", "search")):
            if scope in p.scopes:
                action = next(a for a in commands[command]._actions if a.dest == p.name)
                assert action.default == p.default, (command, p.name)
        if "engine" in p.scopes:
            assert getattr(config, p.name) == p.default, p.name
        if "request" in p.scopes:
            field = SearchRequest.model_fields[p.name]
            assert field.default == p.default, p.name
            limits = {type(m).__name__: m for m in field.metadata}
            if p.le is not None:
                assert limits["Le"].le == p.le, p.name


def test_worker_all_uses_the_machines_cores_by_default():
    from app.cli import build_parser, worker_argv

    args = build_parser().parse_args(["worker", "all"])
    command = worker_argv(args)
    assert command[command.index("--processes") + 1] == str(os.cpu_count())
    one = worker_argv(build_parser().parse_args(["worker", "fast_detect", "--threads", "3"]))
    assert one[one.index("--processes") + 1] == "1" and one[one.index("--threads") + 1] == "3"


def test_the_tracks_table_keeps_every_column_in_80_columns(detected):
    proc, tracks = detected
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stderr.splitlines() if line.strip().startswith("AH0")]
    assert len(rows) == len(tracks["tracks"]) > 0
    for row, track in zip(rows, tracks["tracks"], strict=True):
        assert len(row) <= 80, row
        assert f"{track['observations'][0]['dec']:+.4f}" in row, row


def test_the_readme_demo_shows_only_real_movers_and_says_so(tmp_path):
    """README's main command: the embedded search of the simulated demo field."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ", "REDIS"))}
    env.update(DATA_DIR=str(tmp_path / "data"), NO_COLOR="1", ASTROHUNTER_BROKER="auto")
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [*COMMAND, "search", "--ra", "83.8", "--dec", "-5.4", "--source", "simulated",
         "--out", "out/demo-tracks.json", "--mpc", "out/demo.mpc", "--cutouts", "out/pictures"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = _flat(proc.stdout)
    assert "(SIMULATED DATA)" in out
    found = re.search(r"found (\d+) of (\d+) movers, (\d+) false track\(s\)", out)
    assert found, out
    assert found.group(1) == found.group(2) and found.group(3) == "0", out
    tracks = json.loads((tmp_path / "out" / "demo-tracks.json").read_text())
    check_contract(tracks)
    assert len(tracks["tracks"]) == int(found.group(1))
    assert (tmp_path / "out" / "demo.mpc").read_text().startswith("COM SIMULATED")
    pictures = sorted(p.name for p in (tmp_path / "out" / "pictures").iterdir())
    strips = [f"{t['id']}.png" for t in tracks["tracks"]]
    assert pictures == sorted(["overview.png", "field.png", "stamps-0.png", *strips])
    job = re.search(r"open http://127\.0\.0\.1:8000/jobs/([0-9a-f]{32})", out)
    assert job and "astrohunter serve" in out, out  # where to review them, once served


def test_search_serve_keeps_the_review_page_up_and_prints_its_address(tmp_path):
    """``search --serve``: the search, then the page's address, served until Ctrl-C."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ", "REDIS"))}
    env.update(DATA_DIR=str(tmp_path / "data"), NO_COLOR="1", MIN_DISK_SPACE_GB="0")
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [*COMMAND, "search", "--ra", "10", "--dec", "5", "--radius-arcmin", "2", "--seed", "1",
         "--source", "simulated", "--no-faint", "--serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline, lines = time.monotonic() + 240, []
        while not any("review the results at" in line for line in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, lines
            lines.append(line)
        address = re.search(r"review the results at (\S+)", lines[-1]).group(1)
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/jobs/[0-9a-f]{{32}}", address)
        assert "Ctrl-C" in lines[-1]
        page = httpx.get(address, timeout=10)
        assert page.status_code == 200 and "data-track-id" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0, proc.stderr.read()


def test_search_serve_is_for_the_embedded_server_only():
    proc = run_cli("search", "--ra", "1", "--dec", "2", "--server", "http://x:1", "--serve")
    assert proc.returncode == 2 and "already serves the review page" in proc.stderr


def test_simulate_template_frames_and_detect_with_them(tmp_path):
    """Issue 15: simulate --template-frames K writes the night before; detect --template uses it."""
    out = tmp_path / "sim"
    proc = run_cli(
        "simulate", out, "--seed", 4, "--size", 320, "--frames", 5, "--objects", 3,
        "--snr-min", 10, "--snr-max", 15, "--rate-min", 2, "--rate-max", 20,
        "--template-frames", 3,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "template").iterdir()) == [
        f"tpl_{k:03d}.fits" for k in range(3)
    ]
    truth = json.loads((out / "truth.json").read_text())
    assert [f["name"] for f in truth["template"]["frames"]] == [
        f"tpl_{k:03d}.fits" for k in range(3)
    ]
    proc = run_cli(
        "detect", out / "frames", "--out", out / "tracks.json", "--no-faint",
        "--template", out / "template",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tracks = json.loads((out / "tracks.json").read_text())
    check_contract(tracks)
    assert tracks["run"]["template"]["kind"] == "reference"
    assert tracks["run"]["template"]["files"] == [f"tpl_{k:03d}.fits" for k in range(3)]
    assert len(tracks["tracks"]) == 3


def test_a_template_that_is_not_fits_is_named_in_one_line(simulated, tmp_path):
    bad = tmp_path / "tpl.fits"
    bad.write_text("not a FITS file")
    proc = run_cli(
        "detect", simulated / "frames", "--out", tmp_path / "t.json", "--template", bad
    )  # fmt: skip
    assert proc.returncode == 2
    assert "template tpl.fits" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_negative_template_frames_is_one_line(tmp_path):
    proc = run_cli("simulate", tmp_path / "sim", "--size", 128, "--template-frames", -2)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --template-frames: give 0 or more frames, not -2"


def test_template_frames_of_the_same_camera_are_calibrated_like_the_sequence(tmp_path):
    """Issue 15 on real frames from the CLI: Lowell frames 1-8 (raw, like the night's) as the
    template of frames 9-17, with the night's bias and flat: (5945) and nothing else (an
    uncalibrated template left seven flat-field residuals as tracks)."""
    folder = shared_path(*LOWELL)
    frames = sorted((folder / "frames").glob("*.fits"))
    proc = run_cli(
        "detect", *frames[9:], "--template", *frames[:8],
        "--bias", folder / "calib" / "master_bias.fits",
        "--flat", folder / "calib" / "master_flat.fits",
        "--rate-min", 2, "--rate-max", 20, "--no-faint", "--out", tmp_path / "tracks.json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "tracks.json").read_text())
    assert len(doc["tracks"]) == 1, [t["rate_arcsec_per_hour"] for t in doc["tracks"]]
    assert doc["tracks"][0]["rate_arcsec_per_hour"] == pytest.approx(9.3, abs=0.4)
    assert doc["run"]["template"]["files"] == [f.name for f in frames[:8]]
