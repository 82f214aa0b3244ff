"""`orbits update`: MPCORB and the observatory codes from a local server, under the downloader's rules."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from app import cli
from app.catalog import catalog_path, load_orbits, update_catalog
from app.config import Settings, get_settings
from app.disk import DiskSpaceError
from detectors.errors import InputError
from detectors.orbit_sim import main_belt_catalog, mpcorb_text

from ..detectors.known_helpers import obscodes_text
from ..sources.archive import Archive

LINE_5945 = (
    "05945   13.30  0.15 K194R 191.53480  298.21616   21.83069    4.89377  0.1444233  "
    "0.29683796   2.2256477  0 JPL        1000  30 1984-2019 0.50 M-v 3Ek MPCLINUX   0000 "
    "(5945) Roachapproach        20190401"
)


@pytest.fixture(scope="module")
def mpcorb_gz() -> bytes:
    text = mpcorb_text(main_belt_catalog(3000, seed=9, epoch_mjd=58600.0)) + LINE_5945 + "\n"
    return gzip.compress(text.encode())


@pytest.fixture
def mpc(mpcorb_gz):
    server = Archive(
        routes={
            "/iau/MPCORB/MPCORB.DAT.gz": lambda p, q: (200, "application/gzip", mpcorb_gz),
            "/iau/lists/ObsCodes.html": lambda p, q: (200, "text/html", obscodes_text().encode()),
        }
    ).start()
    yield server
    server.stop()


def _settings(tmp_path: Path, server: Archive | None = None, **extra) -> Settings:
    url = server.url if server else "http://127.0.0.1:9"
    return Settings(
        DATA_DIR=tmp_path / "data",
        MIN_DISK_SPACE_GB=0,
        ASTROHUNTER_DOWNLOAD_RETRIES=2,
        ASTROHUNTER_DOWNLOAD_BACKOFF=0.01,
        ASTROHUNTER_DOWNLOAD_TIMEOUT=10,
        ASTROHUNTER_MPCORB_URL=f"{url}/iau/MPCORB/MPCORB.DAT.gz",
        ASTROHUNTER_OBSCODES_URL=f"{url}/iau/lists/ObsCodes.html",
        **extra,
    )


def test_update_downloads_validates_and_parses_once(tmp_path, mpc, mpcorb_gz):
    settings = _settings(tmp_path, mpc)
    seen: dict[str, tuple[int, int | None]] = {}
    files = update_catalog(
        settings, progress=lambda name, done, total: seen.__setitem__(name, (done, total))
    )
    assert files.orbits == 3001 and files.skipped_lines == 0 and files.codes == 5
    assert files.mpcorb.read_bytes() == mpcorb_gz
    assert seen["MPCORB.DAT.gz"] == (len(mpcorb_gz), len(mpcorb_gz))
    assert "ObsCodes.html" in seen
    assert len(list((settings.catalog_dir / "cache").glob("mpcorb-*.npz"))) == 1
    assert sorted(p.name for p in settings.catalog_dir.iterdir()) == [
        "MPCORB.DAT.gz",
        "ObsCodes.html",
        "cache",
    ]
    catalog = load_orbits(settings)
    assert catalog.designation(len(catalog) - 1) == "(5945) Roachapproach"


def test_a_truncated_catalogue_is_refused_and_the_old_one_kept(tmp_path, mpc, mpcorb_gz):
    settings = _settings(tmp_path, mpc)
    update_catalog(settings)
    mpc.routes["/iau/MPCORB/MPCORB.DAT.gz"] = lambda p, q: (
        200,
        "application/gzip",
        mpcorb_gz[: len(mpcorb_gz) // 2],
    )
    with pytest.raises(InputError, match="not a complete gzip file"):
        update_catalog(settings)
    assert (settings.catalog_dir / "MPCORB.DAT.gz").read_bytes() == mpcorb_gz
    assert not list(settings.catalog_dir.glob("*.part"))


def test_a_page_that_is_not_mpcorb_is_refused(tmp_path, mpc):
    mpc.routes["/iau/MPCORB/MPCORB.DAT.gz"] = lambda p, q: (
        200,
        "text/html",
        b"<html>maintenance</html>\n",
    )
    with pytest.raises(InputError, match="ASTROHUNTER_MPCORB_URL"):
        update_catalog(_settings(tmp_path, mpc))
    mpc.routes["/iau/lists/ObsCodes.html"] = lambda p, q: (
        200,
        "text/html",
        b"<html>maintenance</html>",
    )
    with pytest.raises(InputError, match="ASTROHUNTER_OBSCODES_URL"):
        update_catalog(_settings(tmp_path, mpc))


def test_transient_errors_are_retried(tmp_path, mpc):
    mpc.faults["/iau/MPCORB/"] = ["500", "drop"]
    files = update_catalog(_settings(tmp_path, mpc))
    assert files.orbits == 3001
    assert mpc.count("/iau/MPCORB/") == 3


def test_a_full_disk_is_refused_before_writing(tmp_path, mpc):
    with pytest.raises(DiskSpaceError, match="MIN_DISK_SPACE_GB"):
        update_catalog(_settings(tmp_path, mpc).model_copy(update={"min_disk_space_gb": 1e9}))
    assert not (tmp_path / "data" / "catalog" / "MPCORB.DAT.gz").exists()


def test_which_catalogue(tmp_path, mpc):
    settings = _settings(tmp_path, mpc)
    assert catalog_path(settings) is None
    update_catalog(settings)
    assert catalog_path(settings) == settings.catalog_dir / "MPCORB.DAT.gz"
    mine = tmp_path / "mine.dat"
    mine.write_text(LINE_5945 + "\n")
    from_env = settings.model_copy(update={"orbits_file": mine})
    assert catalog_path(from_env) == mine
    other = tmp_path / "other.dat"
    other.write_text(LINE_5945 + "\n")
    assert catalog_path(from_env, other) == other  # --orbits wins
    assert len(load_orbits(from_env)) == 1
    with pytest.raises(InputError, match="no such orbit catalogue"):
        catalog_path(settings, tmp_path / "missing.dat")


def test_the_cli_command(tmp_path, mpc, monkeypatch, capsys):
    monkeypatch.delenv("ASTROHUNTER_ORBITS", raising=False)
    monkeypatch.setenv("ASTROHUNTER_MPCORB_URL", f"{mpc.url}/never-asked")  # the flags win
    monkeypatch.setenv("ASTROHUNTER_OBSCODES_URL", f"{mpc.url}/iau/lists/ObsCodes.html")
    monkeypatch.setenv("ASTROHUNTER_DOWNLOAD_BACKOFF", "0.01")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MIN_DISK_SPACE_GB", "0")
    get_settings.cache_clear()
    try:
        code = cli.main(
            [
                "orbits", "update", "-q",
                "--mpcorb-url", f"{mpc.url}/iau/MPCORB/MPCORB.DAT.gz",
                "--obscodes-url", f"{mpc.url}/iau/lists/ObsCodes.html",
            ]
        )  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert code == 0
    out = capsys.readouterr().out
    assert "3001 orbits (0 malformed lines skipped)" in out and "5 observatory codes" in out
    assert (tmp_path / "data" / "catalog" / "MPCORB.DAT.gz").is_file()
    assert mpc.count("/never-asked") == 0

    code = cli.main(["orbits", "update", "-q", "--mpcorb-url", f"{mpc.url}/nothing-here"])
    get_settings.cache_clear()
    assert code == 2 and "404" in capsys.readouterr().err
