"""The results contract: what ``astrohunter detect`` writes and ``GET /jobs/{id}/tracks`` returns.

These models are its one declaration. ``contracts/tracks.schema.json`` (the
JSON Schema that users and other tools read) is generated from them by
``python -m detectors.contract`` and a test keeps the committed file equal
to what they generate, so the schema, the API's response model (shown at
``/docs``) and the writer cannot drift apart. The document carries
``schema_version``; additions raise the minor version, changes that break
a reader raise the major one.

Version history:

- 1.0.0: the first contract (``../shared/contracts/tracks.schema.json``).
- 1.1.0: ``schema_version``; ``origin`` per track; the ``run`` block's
  fields documented.
- 1.2.0: known objects: per track ``known``, ``digest2`` and
  ``identification``; ``run.known_in_field`` and ``run.known``.
- 2.0.0: frames without a WCS are searched: ``astrometry`` per track and in
  ``run`` says where sky positions come from (``wcs``, ``solved``,
  ``approximate``, ``none``), ``ra``/``dec`` are left out when there are
  none (a reader that required them must now check), and every observation
  gives ``x``/``y`` in its frame's own pixels; ``run`` gains
  ``registration`` (per frame), ``astrometry_note`` and
  ``detector_fixed_rejected``.
- 2.1.0: ``review`` per track (services: the reviewer's decision and its
  time, from the review page or ``PATCH /jobs/{id}/tracks/{track_id}``).
- 2.2.0: ``run.template`` says what the differences subtracted (a template
  from another night, its files and depth, or the same night's frames).
- 2.3.0: ``run.devices``: the device of each timed stage (the fast detector's
  stages on a GPU when there is one, the detailed detector's on the CPU);
  ``run.device`` is the fast detector's; timings gain ``faint_verify`` and
  ``handoff``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "Digest2Out",
    "FieldInfo",
    "FieldObjectOut",
    "KnownOut",
    "KnownSummary",
    "ObservationOut",
    "RegistrationOut",
    "ReviewOut",
    "ReviewState",
    "RunInfo",
    "TemplateOut",
    "TrackOut",
    "TracksDocument",
    "json_schema",
    "load_schema",
]

SCHEMA_VERSION = "2.3.0"
#: The generated JSON Schema, shipped inside the package.
SCHEMA_PATH = Path(__file__).with_name("contracts") / "tracks.schema.json"
#: A reviewer's decision on a track; "pending" until someone looks (or after an undo).
ReviewState = Literal["pending", "confirmed", "rejected"]


class ObservationOut(BaseModel):
    """One measurement of a track in one frame."""

    model_config = ConfigDict(extra="forbid")

    mjd: float = Field(description="UTC MJD at mid-exposure")
    ra: float | None = Field(
        None, description="degrees, ICRS; absent when the track's astrometry is none"
    )
    dec: float | None = Field(
        None, description="degrees, ICRS; absent when the track's astrometry is none"
    )
    x: float | None = Field(None, description="0-based pixel column in the frame's own image")
    y: float | None = Field(None, description="0-based pixel row in the frame's own image")
    ra_err_arcsec: float | None = Field(None, description="1-sigma error of RA*cos(Dec)")
    dec_err_arcsec: float | None = Field(None, description="1-sigma error of Dec")
    mag: float | None = Field(None, description="magnitude, when the headers give a zero point")
    snr: float | None = Field(None, description="per-frame SNR of the measurement")
    frame: str | None = Field(None, description="source file name")


class ReviewOut(BaseModel):
    """What a reviewer decided about a track, and when."""

    model_config = ConfigDict(extra="forbid")

    state: ReviewState = Field(
        description="pending (not looked at, or undone), confirmed, rejected"
    )
    at: dt.datetime | None = Field(None, description="when it was last set (UTC); absent if never")


class KnownOut(BaseModel):
    """The catalogued object a track was identified with."""

    model_config = ConfigDict(extra="forbid")

    designation: str = Field(description="readable designation, e.g. (5945) Roachapproach")
    packed: str | None = Field(None, description="MPC packed designation")
    number: int | None = Field(None, description="permanent number, when numbered")
    name: str | None = None
    offset_arcsec: float | None = Field(
        None, description="RMS offset of the track's positions from the predicted ones"
    )
    predicted_v: float | None = Field(None, description="predicted V magnitude")
    source: str = Field(description="mpcorb (offline catalogue) or skybot (IMCCE, online)")


class Digest2Out(BaseModel):
    """digest2's NEO likelihood for an unidentified track (what the MPC uses for the NEOCP)."""

    model_config = ConfigDict(extra="forbid")

    neo: float = Field(description="NEO score 0-100 (noid); 65 or more: NEOCP candidate")
    raw_neo: float | None = Field(None, description="NEO score over the whole population")
    rms_arcsec: float | None = Field(None, description="RMS of the arc about digest2's fit")
    scores: dict[str, float] = Field(default_factory=dict, description="every class's score")


class TrackOut(BaseModel):
    """One moving object: its observations and its motion."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="designation, valid as an MPC temporary designation")
    observations: list[ObservationOut] = Field(
        min_length=3, description="one per frame in which the object was measured, in time order"
    )
    rate_arcsec_per_hour: float | None = None
    position_angle_deg: float | None = Field(None, description="direction of motion, east of north")
    stacked_snr: float | None = Field(None, description="SNR of the shift-and-stacked detection")
    origin: str | None = Field(
        None, description="which search found it: fast (per-frame), slow or faint"
    )
    known_object: str | None = Field(None, description="designation of a matched known object")
    known: KnownOut | None = Field(None, description="the matched known object, or null")
    digest2: Digest2Out | None = Field(None, description="NEO score of an unidentified track")
    identification: str | None = Field(
        None, description="why the track is not identified (none within tolerance, source down)"
    )
    astrometry: str | None = Field(
        None,
        description="where ra/dec come from: wcs (the frames' own WCS, registered on the "
        "stars), solved (plate-solved here, e.g. by astrometry.net), approximate (header "
        "pointing and nominal pixel scale: arcminutes off, not for MPC reports), none (no sky "
        "positions: pixels only)",
    )
    review: ReviewOut | None = Field(
        None, description="services: the reviewer's decision (absent from `astrohunter detect`)"
    )


class FieldInfo(BaseModel):
    """The searched field: centre, frames used, time span."""

    model_config = ConfigDict(extra="forbid")

    ra: float | None = None
    dec: float | None = None
    frames: int | None = None
    mjd_start: float | None = Field(None, description="first frame's mid-exposure, UTC MJD")
    mjd_end: float | None = Field(None, description="last frame's mid-exposure, UTC MJD")


class FieldObjectOut(BaseModel):
    """A catalogued object predicted inside the field during the sequence."""

    model_config = ConfigDict(extra="forbid")

    designation: str
    mjd: float = Field(description="mid-sequence, UTC MJD")
    ra: float = Field(description="predicted RA at mid-sequence, degrees")
    dec: float = Field(description="predicted Dec at mid-sequence, degrees")
    predicted_v: float | None = None
    rate_arcsec_per_hour: float | None = None
    position_angle_deg: float | None = None
    track_id: str | None = Field(None, description="the track that matched it, or null (missed)")


class KnownSummary(BaseModel):
    """How identification ran."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="mpcorb, skybot or none")
    catalog_size: int | None = None
    candidates: int | None = Field(None, description="orbits left by the prefilter")
    site: str | None = Field(None, description="where the observer was taken to be")
    observatory_code: str | None = None
    notes: list[str] = Field(default_factory=list)


class RegistrationOut(BaseModel):
    """How one frame was put on the reference grid."""

    model_config = ConfigDict(extra="forbid")

    frame: str = Field(description="file name")
    method: str = Field(
        description="reference, wcs+stars (its WCS corrected on the stars), stars (no WCS), "
        "or wcs (the stars agree with its WCS, or the field has too few stars to tell)"
    )
    stars: int = Field(description="stars matched with the reference frame")
    rms_px: float | None = Field(None, description="RMS of the matched stars about the fit, px")
    offset_px: list[float] = Field(
        description="(dx, dy) of the frame's pixel under the reference grid's centre, px"
    )


class TemplateOut(BaseModel):
    """The static sky the difference images subtract."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["reference", "same-night median", "temporal exclusion"] = Field(
        description="reference: frames of another night or a coadd; same-night median: the "
        "median of the searched frames; temporal exclusion: per frame, the median of the "
        "frames where a mover at the slowest searched rate has left its PSF"
    )
    files: list[str] = Field(description="template files (reference only)")
    frames: int = Field(description="frames the template was made of")
    coverage: float | None = Field(
        None, description="share of the reference grid the template covers"
    )
    psf_fwhm_px: float | None = Field(None, description="template PSF FWHM, px")
    noise_ratio: float | None = Field(
        None, description="template sky noise over the reference frame's (depth)"
    )
    limiting_mag_5sigma: float | None = Field(
        None, description="template 5-sigma point-source magnitude (reference frame zero point)"
    )


class RunInfo(BaseModel):
    """How the search ran; services add ``simulated`` and the job's ``state``."""

    model_config = ConfigDict(extra="allow")

    version: str | None = Field(None, description="AstroHunter version")
    device: str | None = Field(
        None, description="the fast detector's device: cpu, or gpu with the device name"
    )
    devices: dict[str, str] | None = Field(
        None, description="device of each stage in timings_s (cpu, or gpu with its name)"
    )
    options: dict[str, Any] | None = Field(None, description="the search settings used")
    timings_s: dict[str, float] | None = Field(
        None,
        description="wall seconds per stage (fast detector: load, register, align, difference, "
        "detect, link, slow, faint_search; handoff; detailed detector: fit, faint_verify, "
        "identify, ...) and total",
    )
    peak_memory_mb: float | None = None
    reference_frame: str | None = Field(None, description="file whose pixel grid was used")
    pixel_scale_arcsec: float | None = None
    psf_fwhm_px: list[float] | None = Field(None, description="per frame")
    candidates: int | None = Field(None, description="per-frame detections")
    tracklets: int | None = Field(None, description="linked candidate groups")
    trajectories_tested: int | None = Field(
        None, description="faint search: start pixels x motions evaluated"
    )
    faint_binning: int | None = Field(None, description="faint search: start pixels binned b x b")
    faint_threshold: float | None = Field(
        None, description="faint search: stacked SNR, in units of each motion's noise"
    )
    known_in_field: list[FieldObjectOut] | None = Field(
        None, description="every catalogued object predicted inside the field during the sequence"
    )
    known: KnownSummary | None = None
    astrometry: str | None = Field(
        None, description="where sky positions come from: wcs, solved, approximate or none"
    )
    astrometry_note: str | None = Field(None, description="how the sky solution was made")
    registration: list[RegistrationOut] | None = Field(
        None, description="per frame: how it was registered on the reference frame's stars"
    )
    detector_fixed_rejected: int | None = Field(
        None, description="tracks dropped because they stay on the same detector pixels"
    )
    template: TemplateOut | None = Field(None, description="what the differences subtracted")
    simulated: bool | None = Field(None, description="the frames came from the simulator")
    state: str | None = Field(None, description="services: the job's state")


class TracksDocument(BaseModel):
    """AstroHunter detection results: every moving object found in one image sequence."""

    model_config = ConfigDict(
        extra="forbid",
        title="AstroHunter detection results",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://astrohunter.invalid/schemas/tracks/{SCHEMA_VERSION}",
        },
    )

    schema_version: str = Field(SCHEMA_VERSION, description="version of this contract")
    field: FieldInfo | None = None
    tracks: list[TrackOut]
    run: RunInfo | None = None


def json_schema() -> dict[str, Any]:
    """The contract as JSON Schema (what ``contracts/tracks.schema.json`` holds)."""
    return TracksDocument.model_json_schema()


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema file."""
    return json.loads(SCHEMA_PATH.read_text())


if __name__ == "__main__":  # python -m detectors.contract > detectors/contracts/tracks.schema.json
    print(json.dumps(json_schema(), indent=2))
