"""Result formatting: the tracks contract and the MPC 80-column report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from detectors.report import mpc_report, track_designations, tracks_to_contract
from detectors.types import Frame, Track

from ..conftest import check_contract

MJD0 = 58568.1041797  # 2019-03-26 02:30:01.126 UTC


def make_frames(
    n: int = 4, *, filter_name: str | None = "R", code: str | None = None
) -> list[Frame]:
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = 124.62, 25.33
    header["CRPIX1"], header["CRPIX2"] = 32.5, 24.5
    header["CD1_1"], header["CD2_2"] = -1.0 / 3600, 1.0 / 3600
    wcs = WCS(header)
    rng = np.random.default_rng(0)
    return [
        Frame(
            data=rng.normal(size=(48, 64)).astype(np.float32),
            wcs=wcs,
            mjd=MJD0 + i * 0.01,
            exptime=60.0,
            name=f"frame{i}.fits",
            filter=filter_name,
            observatory_code=code,
        )
        for i in range(n)
    ]


def make_track(
    *,
    n: int = 4,
    ra: float = 124.6266985,
    dec: float = 25.3429281,
    mag: float = 17.84,
    track_id: str = "",
    stacked_snr: float = 40.0,
) -> Track:
    k = np.arange(n)
    return Track(
        frames=k,
        mjd=MJD0 + k * 0.01,
        y=np.full(n, 20.0),
        x=np.full(n, 30.0),
        ra=ra + k * 1e-4,
        dec=dec - k * 1e-4,
        ra_err_arcsec=np.array([0.1, np.nan, 0.1, 0.1])[:n],
        dec_err_arcsec=np.full(n, 0.12),
        flux=np.full(n, 1000.0),
        snr=np.array([20.0, 21.0, np.nan, 22.0])[:n],
        mag=np.array([mag, np.nan, mag, mag])[:n],
        rate_arcsec_per_hour=np.float64(9.3),
        position_angle_deg=155.0,
        stacked_snr=stacked_snr,
        id=track_id,
    )


# --------------------------------------------------------------------------- contract


def test_contract_matches_the_schema() -> None:
    frames = make_frames()
    tracks = [make_track(), make_track(ra=124.61, stacked_snr=np.nan, track_id="fast-2")]
    run = {"version": "0.1.0", "device": "cpu", "timings_s": {"load": np.float32(1.5), "x": np.nan}}
    doc = tracks_to_contract(tracks, frames=frames, run=run)
    check_contract(doc)
    json.dumps(doc, allow_nan=False)  # no NaN or NumPy type anywhere
    assert doc["run"] == {"version": "0.1.0", "device": "cpu", "timings_s": {"load": 1.5}}


def test_contract_content() -> None:
    frames = make_frames()
    doc = tracks_to_contract([make_track()], frames=frames, run={})
    field = doc["field"]
    assert field["frames"] == 4
    assert (field["ra"], field["dec"]) == pytest.approx((124.62, 25.33), abs=1e-4)
    assert (field["mjd_start"], field["mjd_end"]) == (frames[0].mjd, frames[-1].mjd)
    (track,) = doc["tracks"]
    assert track["id"] == "AH00001"
    assert track["rate_arcsec_per_hour"] == 9.3 and type(track["rate_arcsec_per_hour"]) is float
    assert track["known_object"] is None
    first, second, third = track["observations"][:3]
    assert first == {
        "mjd": MJD0,
        "ra": 124.6266985,
        "dec": 25.3429281,
        "ra_err_arcsec": 0.1,
        "dec_err_arcsec": 0.12,
        "mag": 17.84,
        "snr": 20.0,
        "frame": "frame0.fits",
    }
    assert "ra_err_arcsec" not in second and second["mag"] is None  # NaN: omitted / null
    assert third["snr"] is None


def test_contract_omits_nan_track_numbers() -> None:
    doc = tracks_to_contract([make_track(stacked_snr=np.nan)], frames=make_frames(), run={})
    assert "stacked_snr" not in doc["tracks"][0]


def test_contract_without_tracks() -> None:
    doc = tracks_to_contract([], frames=make_frames(), run={"version": "x"})
    assert doc["tracks"] == [] and doc["field"]["frames"] == 4


def test_contract_bad_frame_index() -> None:
    with pytest.raises(ValueError, match="frame 3"):
        tracks_to_contract([make_track()], frames=make_frames(3), run={})


def test_designations() -> None:
    tracks = [make_track(track_id=i) for i in ("K1", "", "fast-3", "K1", "TOOLONG8")]
    assert track_designations(tracks) == ["K1", "AH00002", "AH00003", "AH00004", "AH00005"]


# --------------------------------------------------------------------------- MPC


def columns(line: str, first: int, last: int) -> str:
    """1-based inclusive columns, as the MPC format describes them."""
    return line[first - 1 : last]


def test_mpc_known_position() -> None:
    text = mpc_report([make_track()], frames=make_frames(), observatory_code="688")
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 4
    assert all(len(line) == 80 for line in lines)
    assert lines[0] == (
        "     AH00001  C2019 03 26.10418008 18 30.408+25 20 34.54         17.8 R      688"
    )
    line = lines[0]
    assert columns(line, 1, 5) == " " * 5
    assert columns(line, 6, 12) == "AH00001"
    assert columns(line, 13, 14) == "  "
    assert columns(line, 15, 15) == "C"
    assert columns(line, 16, 32) == "2019 03 26.104180"
    assert columns(line, 33, 44) == "08 18 30.408"
    assert columns(line, 45, 56) == "+25 20 34.54"
    assert columns(line, 57, 65) == " " * 9
    assert columns(line, 66, 70) == "17.8 "
    assert columns(line, 71, 71) == "R"
    assert columns(line, 72, 77) == " " * 6
    assert columns(line, 78, 80) == "688"
    # NaN magnitude: magnitude and band blank, everything else in place.
    assert columns(lines[1], 66, 71) == " " * 6
    assert columns(lines[1], 78, 80) == "688"


def test_mpc_short_designation_is_left_justified() -> None:
    line = mpc_report([make_track(track_id="K1")], frames=make_frames())
    assert columns(line, 6, 12) == "K1     "


@pytest.mark.parametrize(
    ("ra", "dec", "mjd", "ra_text", "dec_text", "date_text"),
    [
        # 01 59 59.9996 -> 02 00 00.000; -00 59 59.996 -> -01 00 00.00; day .9999996 -> next day
        (
            (1 + 59 / 60 + 59.9996 / 3600) * 15,
            -(59 / 60 + 59.996 / 3600),
            58573.9999996,
            "02 00 00.000",
            "-01 00 00.00",
            "2019 04 01.000000",
        ),
        # 23 59 59.9999 -> 00 00 00.000; a tiny negative Dec rounds to +00 00 00.00
        (359.9999999, -1e-8, 58849.5, "00 00 00.000", "+00 00 00.00", "2020 01 01.500000"),
        (10.0, 89.99999999, 51544.0, "00 40 00.000", "+90 00 00.00", "2000 01 01.000000"),
        (180.0, -45.5, 60676.25, "12 00 00.000", "-45 30 00.00", "2025 01 01.250000"),
    ],
)
def test_mpc_rounding_carries(
    ra: float, dec: float, mjd: float, ra_text: str, dec_text: str, date_text: str
) -> None:
    track = make_track(n=3)
    track.ra[:] = ra
    track.dec[:] = dec
    track.mjd[:] = mjd
    line = mpc_report([track], frames=make_frames(3)).splitlines()[0]
    assert len(line) == 80
    assert columns(line, 16, 32) == date_text
    assert columns(line, 33, 44) == ra_text
    assert columns(line, 45, 56) == dec_text


def test_mpc_uses_the_frame_observatory_code() -> None:
    text = mpc_report([make_track()], frames=make_frames(code="G96"), observatory_code="500")
    assert {columns(line, 78, 80) for line in text.splitlines()} == {"G96"}


def test_mpc_bad_observatory_code() -> None:
    with pytest.raises(ValueError, match="observatory_code"):
        mpc_report([make_track()], frames=make_frames(), observatory_code="Palomar")


def test_mpc_no_tracks() -> None:
    assert mpc_report([], frames=make_frames()) == ""


def test_mpc_lines_grouped_by_track_in_time_order() -> None:
    late_first = make_track(track_id="B")
    late_first.mjd[:] = late_first.mjd[::-1]
    text = mpc_report([make_track(track_id="A"), late_first], frames=make_frames())
    names = [columns(line, 6, 12).strip() for line in text.splitlines()]
    assert names == ["A"] * 4 + ["B"] * 4
    dates = [columns(line, 16, 32) for line in text.splitlines()[4:]]
    assert dates == sorted(dates)


@pytest.mark.parametrize(
    ("filter_name", "band"),
    [
        ("V", "V"),
        ("R", "R"),
        ("Rc", "R"),
        ("Bessell I", "I"),
        ("r", "r"),
        ("SDSS-R", "r"),
        ("ZTF_g", "g"),
        ("gp", "g"),
        ("Clear", "C"),
        ("o", "o"),
        ("VR", " "),
        ("H-alpha", " "),
        (None, " "),
    ],
)
def test_mpc_band(filter_name: str | None, band: str) -> None:
    line = mpc_report([make_track()], frames=make_frames(filter_name=filter_name))
    assert columns(line, 71, 71) == band
