"""The MPCORB reader: columns, packed designations and epochs, bad lines, gzip and the cache."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from detectors import orbits
from detectors.orbit_sim import main_belt_catalog, mpcorb_text
from detectors.orbits import (
    load_catalog,
    mpcorb_line,
    pack_designation,
    parse_mpcorb,
    unpack_designation,
)

from ..conftest import shared_path
from .known_helpers import LOWELL

LINE_5945 = (
    "05945   13.30  0.15 K194R 191.53480  298.21616   21.83069    4.89377  0.1444233  "
    "0.29683796   2.2256477  0 JPL        1000  30 1984-2019 0.50 M-v 3Ek MPCLINUX   0000 "
    "(5945) Roachapproach        20190401"
)
HEADER = "MINOR PLANET CENTER ORBIT DATABASE (MPCORB)\n\nDes'n     H     G   Epoch\n" + "-" * 160


def _line(**changes) -> str:
    values = dict(
        packed="K19A00A",
        readable="2019 AA",
        h=16.5,
        g=0.15,
        epoch_mjd=58600.0,
        mean_anomaly=10.0,
        arg_perihelion=20.0,
        node=30.0,
        inclination=5.0,
        e=0.1,
        a=2.5,
        last_obs="20190301",
    )
    values.update(changes)
    return mpcorb_line(**values)


def test_the_real_line_of_5945():
    catalog = parse_mpcorb((LINE_5945 + "\n").encode())
    assert len(catalog) == 1 and catalog.skipped == 0
    assert catalog.designation(0) == "(5945) Roachapproach"
    assert catalog.number[0] == 5945 and catalog.packed[0].strip() == b"05945"
    assert catalog.epoch_mjd[0] == 58600.0  # K194R = 2019-04-27.0 TT = JD 2458600.5
    assert catalog.mean_anomaly[0] == 191.5348
    assert catalog.a[0] == pytest.approx(2.2256477)
    assert catalog.n[0] == pytest.approx(0.29683796)
    assert (catalog.h[0], catalog.g[0], catalog.uncertainty[0]) == (13.3, 0.15, 0)
    assert catalog.last_obs_mjd[0] == 58574.0  # 2019-04-01


def test_the_shared_file_reads_like_the_line():
    path = shared_path(*LOWELL, "mpcorb_5945.dat")
    assert load_catalog(path).designation(0) == "(5945) Roachapproach"


def test_the_writer_keeps_the_mpc_columns():
    ours = mpcorb_line(
        packed="05945",
        readable="(5945) Roachapproach",
        h=13.3,
        g=0.15,
        epoch_mjd=58600.0,
        mean_anomaly=191.5348,
        arg_perihelion=298.21616,
        node=21.83069,
        inclination=4.89377,
        e=0.1444233,
        a=2.2256477,
        last_obs="20190401",
    )
    assert len(ours) == 202
    for start, end in [(0, 106), (165, 202)]:  # placeholders differ in 107-165 only
        assert ours[start:end] == LINE_5945[start:end]


@pytest.mark.parametrize(
    ("packed", "readable"),
    [
        ("05945", "5945"),
        ("A0345", "100345"),
        ("a0017", "360017"),
        ("~0000", "620000"),
        ("~000z", "620061"),
        ("K19A00A", "2019 AA"),
        ("J95X01L", "1995 XL1"),
        ("K07Ez7Z", "2007 EZ617"),
        ("PLS2040", "2040 P-L"),
        ("T3S3141", "3141 T-3"),
    ],
)
def test_packed_designations_both_ways(packed, readable):
    assert unpack_designation(packed) == readable
    assert pack_designation(readable) == packed


@pytest.mark.parametrize("bad", ["", "0594", "X19A00A", "K19a00A", "Ceres"])
def test_what_is_not_a_packed_designation_raises(bad):
    with pytest.raises(ValueError):
        unpack_designation(bad)


def test_numbers_above_99999_parse_from_the_packed_column():
    text = "\n".join(
        _line(packed=pack_designation(str(n)), readable=f"({n})")
        for n in (100345, 360017, 620000, 620061)
    )
    assert parse_mpcorb(text.encode()).number.tolist() == [100345, 360017, 620000, 620061]


def test_header_before_the_dashes_and_blank_lines_are_not_orbits():
    text = f"{HEADER}\n{_line()}\n\n{LINE_5945}\n\n"
    catalog = parse_mpcorb(text.encode())
    assert len(catalog) == 2 and catalog.skipped == 0
    assert catalog.number.tolist() == [-1, 5945]
    assert catalog.designation(0) == "2019 AA"


def test_malformed_lines_are_skipped_and_counted_never_fatal():
    good = _line()
    bad = [
        "this is not an orbit at all",
        good[:60],  # truncated
        good[:70] + "0.1x44233" + good[79:],  # letter in e
        good[:70] + "1.2.34567" + good[79:],  # two decimal points
        good[:20] + "K19ZR" + good[25:],  # month Z
        good[:20] + "Q194R" + good[25:],  # century Q
        good[:70] + "1.0500000" + good[79:],  # hyperbolic
        good[:92] + " " * 11 + good[103:],  # no semi-major axis
    ]
    text = "\n".join([good, *bad, LINE_5945])
    catalog = parse_mpcorb(text.encode())
    assert len(catalog) == 2
    assert catalog.skipped == len(bad)


def test_empty_optional_fields_get_defaults():
    """Blank H, G, U and last-observation date: the orbit still counts."""
    line = _line()
    line = line[:8] + " " * 11 + line[19:]  # H and G blank
    line = line[:105] + " " + line[106:194] + " " * 8  # U and last obs blank
    catalog = parse_mpcorb(line.encode())
    assert len(catalog) == 1
    assert np.isnan(catalog.h[0]) and catalog.g[0] == 0.15
    assert catalog.uncertainty[0] == -1 and np.isnan(catalog.last_obs_mjd[0])


def test_an_empty_file_gives_an_empty_catalogue_and_load_says_what_is_wrong(tmp_path):
    assert len(parse_mpcorb(HEADER.encode())) == 0
    path = tmp_path / "empty.dat"
    path.write_text(HEADER + "\n")
    with pytest.raises(ValueError, match="no orbit lines"):
        load_catalog(path)
    with pytest.raises(FileNotFoundError, match="orbits update"):
        load_catalog(tmp_path / "missing.dat")


def test_gzip_and_plain_read_the_same(tmp_path):
    text = mpcorb_text(main_belt_catalog(500, seed=3, epoch_mjd=60000.0))
    plain = tmp_path / "MPCORB.DAT"
    plain.write_text(text)
    packed = tmp_path / "MPCORB.DAT.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    a, b = load_catalog(plain), load_catalog(packed)
    assert len(a) == len(b) == 500
    for name in ("mean_anomaly", "e", "a", "epoch_mjd", "number", "packed", "readable"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def test_the_cache_is_keyed_by_content_and_skips_the_parse(tmp_path, monkeypatch):
    path = tmp_path / "MPCORB.DAT.gz"
    path.write_bytes(
        gzip.compress(mpcorb_text(main_belt_catalog(300, seed=1, epoch_mjd=6e4)).encode())
    )
    cache = tmp_path / "cache"
    first = load_catalog(path, cache_dir=cache)
    assert len(list(cache.glob("mpcorb-*.npz"))) == 1

    def no_parse(data):
        raise AssertionError("parsed although the cache holds this content")

    monkeypatch.setattr(orbits, "parse_mpcorb", no_parse)
    again = load_catalog(path, cache_dir=cache)
    assert np.array_equal(again.mean_anomaly, first.mean_anomaly)
    assert again.designation(299) == first.designation(299)

    monkeypatch.undo()
    path.write_bytes(
        gzip.compress(mpcorb_text(main_belt_catalog(200, seed=2, epoch_mjd=6e4)).encode())
    )
    assert len(load_catalog(path, cache_dir=cache)) == 200  # new content, parsed anew
    assert len(list(cache.glob("mpcorb-*.npz"))) == 2


def test_a_damaged_cache_file_is_parsed_again(tmp_path):
    path = tmp_path / "MPCORB.DAT"
    path.write_text(mpcorb_text(main_belt_catalog(50, seed=4, epoch_mjd=6e4)))
    cache = tmp_path / "cache"
    load_catalog(path, cache_dir=cache)
    (npz,) = cache.glob("*.npz")
    npz.write_bytes(b"not an npz")
    assert len(load_catalog(path, cache_dir=cache)) == 50
