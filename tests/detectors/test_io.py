"""Reading frames: header dialects, file layouts, bad input, and the real data."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from detectors.errors import InputError
from detectors.io import (
    LoadResult,
    SkippedFileWarning,
    check_frames,
    expand_paths,
    load_frame,
    load_frames,
)

SHARED = Path(
    os.environ.get("ASTROHUNTER_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared")
)
LOWELL = SHARED / "data" / "real" / "lowell42-5945-roachapproach"
ZTF = SHARED / "data" / "real" / "ztf-alert-4371-fyodorov"

# 2020-01-02T03:04:05 UTC, the start time used by the synthetic frames.
START_MJD = 58850.0 + (3 * 3600 + 4 * 60 + 5) / 86400.0
SHAPE = (48, 64)


def need(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent")


def wcs_header(*, crval: tuple[float, float] = (150.0, 2.0), scale: float = 1.0) -> fits.Header:
    """A plain TAN WCS, ``scale`` arcsec/pixel, centred on the SHAPE image."""
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = crval
    h["CRPIX1"], h["CRPIX2"] = (SHAPE[1] + 1) / 2, (SHAPE[0] + 1) / 2
    h["CD1_1"], h["CD1_2"] = -scale / 3600, 0.0
    h["CD2_1"], h["CD2_2"] = 0.0, scale / 3600
    return h


def noise(seed: int = 0, dtype: type = np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(1000.0, 10.0, SHAPE).astype(dtype)


def time_header(**cards: object) -> fits.Header:
    h = fits.Header()
    h["DATE-OBS"] = "2020-01-02T03:04:05"
    h["EXPTIME"] = 60.0
    for key, value in cards.items():
        h[key.replace("_", "-")] = value
    return h


def write(
    path: Path,
    data: np.ndarray | None = None,
    *,
    header: fits.Header | None = None,
    wcs: bool = True,
    time: bool = True,
) -> Path:
    h = fits.Header()
    if wcs:
        h.update(wcs_header())
    if time:
        h.update(time_header())
    if header is not None:
        h.update(header)
    fits.PrimaryHDU(noise() if data is None else data, h).writeto(path)
    return path


# --------------------------------------------------------------------------- time


START_CARDS = {
    "date+time": {"DATE-OBS": "2020-01-02T03:04:05"},
    "date+time, space": {"DATE-OBS": "2020-01-02 03:04:05"},
    "TIME-OBS": {"DATE-OBS": "2020-01-02", "TIME-OBS": "03:04:05"},
    "UT": {"DATE-OBS": "2020-01-02", "UT": "03:04:05.0"},
    "UT hours": {"DATE-OBS": "2020-01-02", "UT": 3 + 4 / 60 + 5 / 3600},
    "UTSTART": {"DATE-OBS": "2020-01-02", "UTSTART": "03 04 05"},
    "UTCSTART": {"DATE-OBS": "2020-01-02", "UTCSTART": "03:04:05"},
    "UTC-OBS": {"DATE-OBS": "2020-01-02", "UTC-OBS": "03:04:05"},
    "old date": {"DATE-OBS": "02/01/98", "TIME-OBS": "03:04:05"},  # 1998-01-02
    "MJD-OBS": {"MJD-OBS": START_MJD},
    "MJD-OBS text": {"MJD-OBS": f"{START_MJD:.9f}"},
    "JD": {"JD": START_MJD + 2400000.5},
    "JD-OBS": {"JD-OBS": START_MJD + 2400000.5},
}


@pytest.mark.parametrize("cards", START_CARDS.values(), ids=START_CARDS.keys())
@pytest.mark.parametrize("exp_key", ["EXPTIME", "EXPOSURE", "AEXPTIME", "ITIME"])
def test_start_time_keys_give_mid_exposure(tmp_path: Path, cards: dict, exp_key: str) -> None:
    h = fits.Header()
    h.update(cards)
    h[exp_key] = 60.0
    frame = load_frame(write(tmp_path / "a.fits", header=h, time=False))
    start = START_MJD - (8035 if "02/01/98" in cards.values() else 0)  # 22 years earlier
    assert frame.mjd == pytest.approx(start + 30 / 86400, abs=1e-8)
    assert frame.exptime == 60.0


MID_CARDS = {
    "MIDTIMJD": {"MIDTIMJD": START_MJD + 2400000.5},
    "DATE-AVG": {"DATE-AVG": "2020-01-02T03:04:05"},
    "MJD-AVG": {"MJD-AVG": START_MJD},
}


@pytest.mark.parametrize("cards", MID_CARDS.values(), ids=MID_CARDS.keys())
def test_mid_time_keys_are_not_shifted(tmp_path: Path, cards: dict) -> None:
    h = fits.Header()
    h.update(cards)
    h["EXPTIME"] = 60.0
    h["DATE-OBS"] = "2020-01-01"  # date-only, as Lowell writes it; must not win
    frame = load_frame(write(tmp_path / "a.fits", header=h, time=False))
    assert frame.mjd == pytest.approx(START_MJD, abs=1e-8)


@pytest.mark.parametrize(("timesys", "offset_s"), [("TT", 69.184), ("TAI", 37.0), ("GPS", 18.0)])
def test_timesys_is_converted_to_utc(tmp_path: Path, timesys: str, offset_s: float) -> None:
    frame = load_frame(write(tmp_path / "a.fits", header=time_header(TIMESYS=timesys)))
    assert frame.mjd == pytest.approx(START_MJD + (30 - offset_s) / 86400, abs=1e-8)


def test_unknown_timesys(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"a\.fits.*TIMESYS"):
        load_frame(write(tmp_path / "a.fits", header=time_header(TIMESYS="LOCAL")))


def test_date_only_is_not_midnight(tmp_path: Path) -> None:
    """The Lowell trap: astropy's datfix would put MJD-OBS at midnight."""
    h = fits.Header({"DATE-OBS": "2020-01-02", "UTCSTART": "03:04:05", "EXPTIME": 60.0})
    path = write(tmp_path / "a.fits", header=h, time=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert WCS(fits.getheader(path)).wcs.mjdobs == 58850.0  # what not to use
    assert load_frame(path).mjd == pytest.approx(START_MJD + 30 / 86400, abs=1e-8)


@pytest.mark.parametrize(
    "cards",
    [
        {"DATE-OBS": "2020-01-02", "MJD-OBS": 58850.0, "UTCSTART": "03:04:05"},
        {"DATE-OBS": "2020-01-02T00:00:00", "TIME-OBS": "03:04:05"},
    ],
    ids=["datfix MJD-OBS", "midnight DATE-OBS"],
)
def test_start_time_key_beats_midnight(tmp_path: Path, cards: dict) -> None:
    h = fits.Header(cards)
    h["EXPTIME"] = 60.0
    frame = load_frame(write(tmp_path / "a.fits", header=h, time=False))
    assert frame.mjd == pytest.approx(START_MJD + 30 / 86400, abs=1e-8)


def test_date_without_time_of_day(tmp_path: Path) -> None:
    h = fits.Header({"DATE-OBS": "2020-01-02", "EXPTIME": 60.0})
    with pytest.raises(InputError, match=r"b\.fits.*no time.*UTCSTART"):
        load_frame(write(tmp_path / "b.fits", header=h, time=False))


def test_no_time(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_frame(write(tmp_path / "notime.fits", time=False))
    for word in ("notime.fits", "DATE-OBS", "MJD-OBS", "MIDTIMJD", "DATE-AVG", "TIME-OBS", "JD"):
        assert word in str(err.value)


def test_unreadable_time_value(tmp_path: Path) -> None:
    h = fits.Header({"DATE-OBS": "2020-01-02", "UT": "25:99:00"})
    with pytest.raises(InputError, match=r"c\.fits.*UT"):
        load_frame(write(tmp_path / "c.fits", header=h, time=False))


def test_no_exposure_time_means_zero(tmp_path: Path) -> None:
    path = tmp_path / "a.fits"
    write(path)
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header["EXPTIME"]
    frame = load_frame(path)
    assert frame.exptime == 0.0
    assert frame.mjd == pytest.approx(START_MJD, abs=1e-8)


# --------------------------------------------------------------------------- layouts


def test_mef_picks_the_image_with_a_wcs_and_reads_the_mask(tmp_path: Path) -> None:
    primary = fits.PrimaryHDU(header=time_header(FILTER="r"))  # time only in the primary
    guider = fits.ImageHDU(noise(1), name="GUIDER")  # image without WCS comes first
    sci = fits.ImageHDU(noise(2), wcs_header(), name="SCI")
    err = fits.ImageHDU(noise(3), wcs_header(), name="ERR")
    dq = np.zeros(SHAPE, np.int16)
    dq[5, 7] = 4
    path = tmp_path / "mef.fits"
    fits.HDUList([primary, guider, sci, err, fits.ImageHDU(dq, name="DQ")]).writeto(path)
    frame = load_frame(path)
    np.testing.assert_array_equal(frame.data, noise(2))
    assert frame.mjd == pytest.approx(START_MJD + 30 / 86400, abs=1e-8)
    assert frame.filter == "r"
    assert frame.bad is not None and frame.bad.sum() == 1 and frame.bad[5, 7]


def test_mask_of_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "mef.fits"
    sci = fits.ImageHDU(noise(), wcs_header() + time_header(), name="SCI")
    mask = fits.ImageHDU(np.zeros((4, 4), np.uint8), name="MASK")
    fits.HDUList([fits.PrimaryHDU(), sci, mask]).writeto(path)
    with pytest.raises(InputError, match=r"mef\.fits.*MASK"):
        load_frame(path)


def test_degenerate_axis_is_dropped(tmp_path: Path) -> None:
    frame = load_frame(write(tmp_path / "cube.fits", noise()[None]))
    assert frame.shape == SHAPE


def uint16_image() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 65535, SHAPE).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz", ".fits.fz"])
def test_compressed_unsigned_16_bit(tmp_path: Path, suffix: str) -> None:
    data = uint16_image()
    header = wcs_header() + time_header()
    path = tmp_path / f"a{suffix}"
    if suffix == ".fits.fz":
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(path)
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(data, header)])
        with gzip.open(path, "wb") if suffix == ".fits.gz" else open(path, "wb") as fh:
            hdul.writeto(fh)
    frame = load_frame(path)
    assert frame.data.dtype == np.float32
    np.testing.assert_array_equal(frame.data, data.astype(np.float32))
    assert frame.saturation is not None and 64000 < frame.saturation < 65535
    assert frame.header["BITPIX"] == 16


def test_blank_integers_are_nan(tmp_path: Path) -> None:
    data = np.random.default_rng(5).integers(-1000, 1000, SHAPE).astype(np.int16)
    data[3, 4] = -32768
    h = fits.Header({"BLANK": -32768})
    frame = load_frame(write(tmp_path / "a.fits", data, header=h))
    assert np.isnan(frame.data[3, 4]) and np.isfinite(frame.data).sum() == data.size - 1
    assert frame.saturation is None  # signed 16-bit: no guess


def test_scaled_integers(tmp_path: Path) -> None:
    raw = np.random.default_rng(6).integers(0, 1000, SHAPE).astype(np.int16)
    hdu = fits.PrimaryHDU(raw, wcs_header() + time_header())
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 100.0
    path = tmp_path / "a.fits"
    hdu.writeto(path)
    np.testing.assert_allclose(load_frame(path).data, raw * 0.5 + 100.0)


def test_non_finite_pixels_become_nan(tmp_path: Path) -> None:
    data = noise()
    data[0, 0], data[1, 1] = np.inf, np.nan
    frame = load_frame(write(tmp_path / "a.fits", data))
    assert np.isnan(frame.data[0, 0]) and np.isnan(frame.data[1, 1])


# --------------------------------------------------------------------------- WCS


def test_quoted_wcs_numbers_are_read(tmp_path: Path) -> None:
    h = wcs_header(crval=(124.6, 25.3))
    quoted = fits.Header([(k, str(v) if k.startswith(("CR", "CD")) else v) for k, v in h.items()])
    quoted["EQUINOX"] = "2000.0  "
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert WCS(quoted).wcs.crval[0] == 0.0  # astropy alone gives an identity WCS
    frame = load_frame(write(tmp_path / "a.fits", header=quoted, wcs=False))
    ra, dec = frame.wcs.all_pix2world([[31.5, 23.5]], 0)[0]
    assert (ra, dec) == pytest.approx((124.6, 25.3), abs=1e-9)
    assert frame.header["CRVAL1"] == "124.6"  # the kept header is untouched


PV = {"PV1_0": 0.0, "PV1_1": 1.0, "PV1_4": 0.02, "PV1_7": -0.3, "PV2_0": 0.0, "PV2_1": 1.0}
PV |= {"PV2_5": 0.01, "PV2_10": 0.2}


def test_scamp_tan_pv_is_tpv(tmp_path: Path) -> None:
    h = wcs_header(scale=36.0)  # 0.5 deg across, so the distortion shows
    h.update(PV)
    frame = load_frame(write(tmp_path / "a.fits", header=h))
    tpv = h.copy()
    tpv["CTYPE1"], tpv["CTYPE2"] = "RA---TPV", "DEC--TPV"
    plain = wcs_header(scale=36.0)
    corner = [[0.0, 0.0], [63.0, 47.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(
            frame.wcs.all_pix2world(corner, 0), WCS(tpv).all_pix2world(corner, 0), atol=1e-10
        )
        # Distortion applied (not a plain TAN), and astropy alone agrees (WCSLIB >= 8).
        assert not np.allclose(
            frame.wcs.all_pix2world(corner, 0), WCS(plain).all_pix2world(corner, 0), atol=1e-5
        )
        np.testing.assert_allclose(
            WCS(h).all_pix2world(corner, 0), WCS(tpv).all_pix2world(corner, 0), atol=1e-10
        )


def test_no_wcs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowcs\.fits: no celestial WCS"):
        load_frame(write(tmp_path / "nowcs.fits", wcs=False))


def test_no_wcs_and_no_time_says_both(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"bare\.fits: no celestial WCS.*no readable observation"):
        load_frame(write(tmp_path / "bare.fits", wcs=False, time=False))


@pytest.mark.parametrize("drop", [("CD1_1", "CD1_2", "CD2_1", "CD2_2"), ("CTYPE1", "CTYPE2")])
def test_identity_or_missing_wcs(tmp_path: Path, drop: tuple[str, ...]) -> None:
    h = wcs_header()
    for key in drop:
        del h[key]
    with pytest.raises(InputError, match=r"ident\.fits: (no celestial WCS|.*pixel scale)"):
        load_frame(write(tmp_path / "ident.fits", header=h, wcs=False))


def test_unparseable_quoted_wcs(tmp_path: Path) -> None:
    h = wcs_header()
    h["CD1_1"], h["CD2_2"] = "n/a", "n/a"
    del h["CD1_2"], h["CD2_1"]
    with pytest.raises(InputError, match=r"q\.fits"):
        load_frame(write(tmp_path / "q.fits", header=h, wcs=False))


# --------------------------------------------------------------------------- bad files


def test_not_fits(tmp_path: Path) -> None:
    path = tmp_path / "notes.fits"
    path.write_text("this is not a FITS file\n" * 200)
    with pytest.raises(InputError, match=r"notes\.fits: not a readable FITS file"):
        load_frame(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.fits"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.fits"):
        load_frame(path)


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_file(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.fits")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError, match=r"cut\.fits"):
        load_frame(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone\.fits: no such file"):
        load_frame(tmp_path / "gone.fits")


def test_no_image_data(tmp_path: Path) -> None:
    path = tmp_path / "table.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.ones(3))])
    fits.HDUList([fits.PrimaryHDU(header=wcs_header() + time_header()), table]).writeto(path)
    with pytest.raises(InputError, match=r"table\.fits: no image data"):
        load_frame(path)


def test_all_nan(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nan\.fits: every pixel is NaN"):
        load_frame(write(tmp_path / "nan.fits", np.full(SHAPE, np.nan, np.float32)))


def test_constant(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"flat\.fits: the image is constant"):
        load_frame(write(tmp_path / "flat.fits", np.full(SHAPE, 7.0, np.float32)))


# --------------------------------------------------------------------------- header values


@pytest.mark.parametrize(
    ("cards", "attr", "expected"),
    [
        ({"GAIN": 2.0}, "gain", 2.0),
        ({"EGAIN": 1.5}, "gain", 1.5),
        ({"GAINEFF": "3.1"}, "gain", 3.1),
        ({"AGAIN_01": 4.95}, "gain", 4.95),
        ({"CCDGAIN": 0.8}, "gain", 0.8),
        ({"GAIN": 0.0}, "gain", None),
        ({"RDNOISE": 5.0}, "read_noise", 5.0),
        ({"READNOIS": 6.0}, "read_noise", 6.0),
        ({"RON": 7.0}, "read_noise", 7.0),
        ({"ARDNS_01": 9.3}, "read_noise", 9.3),
        ({"READNOISE": 8.0}, "read_noise", 8.0),
        ({"SATURATE": 50000.0}, "saturation", 50000.0),
        ({"SATLEVEL": 40000.0}, "saturation", 40000.0),
        ({"SATURATION": 30000.0}, "saturation", 30000.0),
        ({"MAXLIN": 20000.0}, "saturation", 20000.0),
        ({}, "saturation", None),
        ({"MAGZP": 25.0}, "zero_point", 25.0),
        ({"MAGZPT": 24.0}, "zero_point", 24.0),
        ({"PHOTZP": 23.0}, "zero_point", 23.0),
        ({"ZP": 22.0}, "zero_point", 22.0),
        ({"ZEROPT": 21.0}, "zero_point", 21.0),
        ([("MAGZP", 25.0, "zero point for 1 ADU/s")], "zero_point", 25.0 + 2.5 * np.log10(60)),
        ([("ZP", 22.0, "mag of 1 count per second")], "zero_point", 22.0 + 2.5 * np.log10(60)),
        ({"FILTER": "V "}, "filter", "V"),
        ({"FILTNAME": "VR"}, "filter", "VR"),
        ({"FILTER1": "sdss_r"}, "filter", "sdss_r"),
        ({}, "filter", None),
        ({"MPCCODE": "688"}, "observatory_code", "688"),
        ({"OBSCODE": "g96"}, "observatory_code", "G96"),
        ({"SITECODE": "I41"}, "observatory_code", "I41"),
        ({"OBSCODE": "Palomar"}, "observatory_code", None),
        ({"ZP": 0.0}, "zero_point", None),
    ],
)
@pytest.mark.filterwarnings("ignore:Keyword name:astropy.io.fits.verify.VerifyWarning")
def test_header_values(tmp_path: Path, cards: dict | list, attr: str, expected: object) -> None:
    frame = load_frame(write(tmp_path / "a.fits", header=fits.Header(cards)))
    value = getattr(frame, attr)
    assert value == (pytest.approx(expected) if isinstance(expected, float) else expected)


# --------------------------------------------------------------------------- calibration


def test_bias_and_flat_arrays_and_files(tmp_path: Path) -> None:
    data = noise()
    bias = np.full(SHAPE, 100.0, np.float32)
    flat = np.random.default_rng(7).uniform(0.9, 1.1, SHAPE).astype(np.float32)
    flat[0, 0] = 0.0
    path = write(tmp_path / "a.fits", data, header=fits.Header({"SATURATE": 60000.0}))
    fits.PrimaryHDU(bias).writeto(tmp_path / "bias.fits")
    fits.PrimaryHDU(flat).writeto(tmp_path / "flat.fits")
    with np.errstate(divide="ignore"):
        expected = (data - bias) / flat
    for b, f in [(bias, flat), (tmp_path / "bias.fits", str(tmp_path / "flat.fits"))]:
        frame = load_frame(path, bias=b, flat=f)
        np.testing.assert_allclose(frame.data[1:], expected[1:], rtol=1e-6)
        assert np.isnan(frame.data[0, 0])  # flat of zero: no data
        assert frame.saturation == pytest.approx((60000.0 - 100.0) / flat[flat > 0].max())


def test_calibration_of_wrong_shape(tmp_path: Path) -> None:
    path = write(tmp_path / "a.fits")
    fits.PrimaryHDU(np.ones((10, 10), np.float32)).writeto(tmp_path / "small_flat.fits")
    with pytest.raises(InputError, match=r"a\.fits.*flat file small_flat\.fits"):
        load_frame(path, flat=tmp_path / "small_flat.fits")
    with pytest.raises(InputError, match=r"a\.fits.*bias array"):
        load_frame(path, bias=np.zeros((3, 3)))


def test_unreadable_calibration_aborts_even_when_skipping(tmp_path: Path) -> None:
    (tmp_path / "bias.fits").write_text("nope" * 1000)
    with pytest.raises(InputError, match=r"bias\.fits"):
        load_frames([write(tmp_path / "a.fits")], bias=tmp_path / "bias.fits", on_error="skip")


# --------------------------------------------------------------------------- many files


def sequence(tmp_path: Path, n: int = 4, *, crvals: list | None = None) -> list[Path]:
    """Frames written out of time order: 10 minutes apart, newest first."""
    paths = []
    for i in range(n):
        h = wcs_header(crval=crvals[i] if crvals else (150.0, 2.0))
        h.update(time_header(**{"MJD-OBS": START_MJD + (n - i) * 600 / 86400}))
        del h["DATE-OBS"]
        paths.append(write(tmp_path / f"f{i}.fits", noise(i), header=h, wcs=False, time=False))
    return paths


def test_expand_paths(tmp_path: Path) -> None:
    folder = tmp_path / "night"
    folder.mkdir()
    for name in ("b.fits", "a.fit", "c.fts", "d.fits.gz", "e.fits.fz", "f.fit.gz", "G.FITS"):
        (folder / name).write_bytes(b"")
    (folder / "notes.txt").write_text("x")
    (folder / "sub").mkdir()
    names = [p.name for p in expand_paths([str(folder)])]
    assert names == ["G.FITS", "a.fit", "b.fits", "c.fts", "d.fits.gz", "e.fits.fz", "f.fit.gz"]
    assert expand_paths([str(folder / "*.fit*")]) == sorted(folder.glob("*.fit*"))
    # A file named twice (directly and through its folder) is listed once.
    assert len(expand_paths([str(folder / "b.fits"), str(folder)])) == 7


@pytest.mark.parametrize(
    ("item", "message"),
    [("missing.fits", "no such file"), ("*.nothing", "matches no file"), ("empty", "no FITS")],
)
def test_expand_paths_errors(tmp_path: Path, item: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message):
        expand_paths([str(tmp_path / item)])


def test_load_frames_sorts_by_time(tmp_path: Path) -> None:
    result = load_frames(sequence(tmp_path))
    assert isinstance(result, LoadResult) and result.skipped == []
    assert [f.name for f in result] == ["f3.fits", "f2.fits", "f1.fits", "f0.fits"]
    assert len(result) == 4 and result[0] is result.frames[0]
    assert np.all(np.diff([f.mjd for f in result.frames]) > 0)


def test_load_frames_raise_lists_every_bad_file(tmp_path: Path) -> None:
    paths = sequence(tmp_path, 3)
    paths.append(write(tmp_path / "nowcs.fits", wcs=False))
    (tmp_path / "junk.fits").write_text("junk" * 900)
    paths.append(tmp_path / "junk.fits")
    with pytest.raises(InputError, match=r"2 of 5 files") as err:
        load_frames(paths)
    assert "nowcs.fits" in str(err.value) and "junk.fits" in str(err.value)


def test_load_frames_skip(tmp_path: Path) -> None:
    paths = [*sequence(tmp_path, 3), write(tmp_path / "nowcs.fits", wcs=False)]
    with pytest.warns(SkippedFileWarning, match="nowcs.fits"):
        result = load_frames(paths, on_error="skip")
    assert len(result.frames) == 3
    assert [name for name, _ in result.skipped] == ["nowcs.fits"]
    assert "no celestial WCS" in result.skipped[0][1]


def test_load_frames_bad_option(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="on_error"):
        load_frames([], on_error="ignore")  # type: ignore[arg-type]


def test_check_frames_accepts_a_sequence(tmp_path: Path) -> None:
    check_frames(load_frames(sequence(tmp_path, 3)).frames)


def test_check_frames_too_few_names_the_rejected(tmp_path: Path) -> None:
    paths = [*sequence(tmp_path, 2), write(tmp_path / "nowcs.fits", wcs=False)]
    with pytest.warns(SkippedFileWarning):
        result = load_frames(paths, on_error="skip")
    with pytest.raises(InputError, match=r"at least 3 usable frames, found 2 \(1 rejected: nowcs"):
        check_frames(result.frames, skipped=result.skipped)


def test_check_frames_different_fields(tmp_path: Path) -> None:
    crvals = [(150.0, 2.0), (150.0, 2.001), (151.0, 2.0)]  # the third is a degree away
    frames = load_frames(sequence(tmp_path, 3, crvals=crvals)).frames
    with pytest.raises(InputError, match=r"f\d\.fits and f\d\.fits show different fields") as err:
        check_frames(frames)
    assert "f2.fits" in str(err.value)


def test_check_frames_duplicate_times(tmp_path: Path) -> None:
    paths = sequence(tmp_path, 3)
    shutil.copy(paths[1], tmp_path / "copy.fits")
    frames = load_frames([*paths, tmp_path / "copy.fits"]).frames
    with pytest.raises(InputError, match=r"(f1\.fits and copy\.fits|copy\.fits and f1\.fits)"):
        check_frames(frames)


# --------------------------------------------------------------------------- real data


def truth() -> dict[str, dict[str, str]]:
    lines = (LOWELL / "truth_5945_positions.csv").read_text().splitlines()
    return {
        row["file"]: row for row in csv.DictReader(ln for ln in lines if not ln.startswith("#"))
    }


@pytest.mark.realdata
def test_lowell_cutouts() -> None:
    need(LOWELL / "frames")
    paths = expand_paths([str(LOWELL / "frames")])
    frames = load_frames(
        paths,
        bias=LOWELL / "calib" / "master_bias.fits",
        flat=LOWELL / "calib" / "master_flat.fits",
    ).frames
    assert len(frames) == 17
    check_frames(frames)
    rows = truth()
    for frame in frames:
        mid = float(frame.header["MIDTIMJD"]) - 2400000.5
        assert frame.mjd == pytest.approx(mid, abs=1e-6)
        assert frame.mjd % 1 > 0.1  # 02:30 UT and later, not midnight
        assert (frame.gain, frame.read_noise, frame.filter) == (4.95, 9.3, "VR")
        row = rows[frame.name]
        x, y = frame.wcs.all_world2pix([[float(row["pred_ra"]), float(row["pred_dec"])]], 0)[0]
        assert (x, y) == pytest.approx((float(row["pred_x"]), float(row["pred_y"])), abs=0.05)


@pytest.mark.realdata
def test_lowell_start_time_path_matches_midtimjd(tmp_path: Path) -> None:
    """Without MIDTIMJD the date-only DATE-OBS + UTCSTART + EXPTIME/2 must give the same."""
    need(LOWELL / "frames")
    for source in sorted((LOWELL / "frames").glob("*.fits"))[::4]:
        with fits.open(source) as hdul:
            header = hdul[0].header.copy()
            mid = header.pop("MIDTIMJD") - 2400000.5
            path = tmp_path / source.name
            fits.PrimaryHDU(hdul[0].data, header).writeto(path)
        assert load_frame(path).mjd == pytest.approx(mid, abs=1e-6)


@pytest.mark.realdata
def test_lowell_full_frame_quoted_tan_pv() -> None:
    full_path = LOWELL / "full_frame_original" / "20190326.0126.fits"
    need(full_path.parent)
    need(LOWELL / "frames")
    full = load_frame(full_path)
    cut = load_frame(LOWELL / "frames" / "20190326.0126.fits")
    # TRIMSEC [18:1382,1:1370]: the 17 prescan and 50 overscan columns are gone, so
    # the cutout's [428:939,455:966] of the raw frame starts at trimmed x 410.
    assert full.shape == (1370, 1365)
    np.testing.assert_array_equal(full.data[454:966, 410:922], cut.data)
    assert full.origin == (0, 17) and cut.origin == (454, 427)
    assert full.mjd == pytest.approx(cut.mjd, abs=1e-9)
    assert full.saturation is not None and 65000 < full.saturation < 65535
    ra, dec = full.wcs.all_pix2world([[715.0 - 17, 684.0]], 0)[0]
    assert (ra, dec) == pytest.approx((124.62, 25.33), abs=0.01)
    # The same star, seen in both: pixel -> world agrees (the PV terms are kept in both).
    for x, y in [(10.0, 20.0), (256.0, 256.0), (500.0, 480.0)]:
        np.testing.assert_allclose(
            full.wcs.all_pix2world([[x + 410, y + 454]], 0),
            cut.wcs.all_pix2world([[x, y]], 0),
            atol=1e-9,
        )
    row = truth()["20190326.0126.fits"]
    x, y = full.wcs.all_world2pix([[float(row["pred_ra"]), float(row["pred_dec"])]], 0)[0]
    assert (x, y) == pytest.approx(
        (float(row["pred_x"]) + 410, float(row["pred_y"]) + 454), abs=0.05
    )
    # Dropping the PV terms would move the asteroid by more than the tolerance.
    header = full.header.copy()
    for key in [k for k in header if k.startswith("PV")]:
        del header[key]
    for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2"):
        header[key] = float(header[key])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = WCS(header).all_world2pix([[float(row["pred_ra"]), float(row["pred_dec"])]], 0)[0]
    assert abs(plain[0] - x) > 0.05


@pytest.mark.realdata
def test_ztf_cutouts_have_no_wcs_and_no_time() -> None:
    need(ZTF)
    paths = sorted(ZTF.glob("*.fits.gz"))
    assert len(paths) == 3
    for path in paths:
        with pytest.raises(InputError, match=rf"{path.name}: no celestial WCS.*observation time"):
            load_frame(path)
    with pytest.warns(SkippedFileWarning):
        result = load_frames(paths, on_error="skip")
    with pytest.raises(InputError, match="found 0"):
        check_frames(result.frames, skipped=result.skipped)


def test_time_helper_matches_astropy() -> None:
    """The constant the synthetic frames rely on."""
    assert Time("2020-01-02T03:04:05", scale="utc").mjd == pytest.approx(START_MJD, abs=1e-10)


# --------------------------------------------------------------------------- raw layouts


def test_overscan_and_prescan_are_trimmed_with_the_wcs_and_calibration(tmp_path: Path) -> None:
    raw = noise(3)
    raw[:, :4] = 200.0  # prescan
    raw[:, -6:] = 180.0  # overscan
    h = wcs_header()
    h["TRIMSEC"], h["BIASSEC"] = (
        f"[5:{SHAPE[1] - 6},2:{SHAPE[0]}]",
        f"[{SHAPE[1] - 5}:{SHAPE[1]},1:{SHAPE[0]}]",
    )
    bias = np.full(SHAPE, 100.0, dtype=np.float32)
    bias[0, 4] = 7.0
    frame = load_frame(write(tmp_path / "raw.fits", raw, header=h), bias=bias)
    assert frame.shape == (SHAPE[0] - 1, SHAPE[1] - 10)
    np.testing.assert_array_equal(frame.data, raw[1:, 4:-6] - bias[1:, 4:-6])
    assert frame.origin == (1, 4)
    full = WCS(wcs_header())
    np.testing.assert_allclose(
        frame.wcs.pixel_to_world_values(10.0, 20.0), full.pixel_to_world_values(14.0, 21.0)
    )


def test_datasec_when_no_trimsec_and_a_bad_section_is_named(tmp_path: Path) -> None:
    h = fits.Header()
    h["DATASEC"] = "[1:60,1:48]"
    assert load_frame(write(tmp_path / "d.fits", header=h)).shape == (48, 60)
    h["DATASEC"] = "[1:99,1:48]"
    with pytest.raises(InputError, match=r"b\.fits: DATASEC = '\[1:99,1:48\]' is not a section"):
        load_frame(write(tmp_path / "b.fits", header=h))


def test_frame_without_wcs_is_read_when_allowed(tmp_path: Path) -> None:
    path = write(tmp_path / "n.fits", wcs=False, header=fits.Header({"LTV1": -10, "LTV2": -3}))
    with pytest.raises(InputError, match="no celestial WCS"):
        load_frame(path)
    frame = load_frame(path, allow_no_wcs=True)
    assert frame.wcs is None and frame.origin == (3, 10)
