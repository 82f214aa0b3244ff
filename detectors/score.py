"""Score reported tracks against a simulated field's truth, by BENCHMARK.md.

A track matches a true object when at least 3 of its observations, and at
least 80 % of them, lie within ``match_radius_arcsec`` of the object's true
position at the observation's time. The truth is given at each frame's
mid-exposure; between and beyond those times it is interpolated linearly
(asteroid motion is linear over a night to far better than an arcsec).

Inputs are plain dicts: ``tracks`` in the tracks contract format
(``contracts/tracks.schema.json``) and ``truth`` as `simulate_field` makes it.
Times are UTC MJD, positions ICRS degrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DEPTH_SNR_BINS",
    "SNR_BINS",
    "FieldScore",
    "ObjectScore",
    "completeness_by",
    "ideal_findable",
    "same_night_efficiency",
    "score_field",
    "snr_at_50pct",
    "summarize",
]

SNR_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 2.0),
    (2.0, 3.0),
    (3.0, 4.0),
    (4.0, 5.0),
    (5.0, 7.0),
    (7.0, 10.0),
    (10.0, math.inf),
)
"""Per-frame SNR bins of the completeness table, each ``low <= snr < high``."""

DEPTH_SNR_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 1.5),
    (1.5, 2.0),
    (2.0, 2.5),
    (2.5, 3.0),
    (3.0, 3.5),
    (3.5, 4.0),
    (4.0, 5.0),
    (5.0, 6.0),
    (6.0, math.inf),
)
"""Finer per-frame SNR bins for a faint-search depth run, near the sqrt(N) limit."""

_MIN_MATCHED = 3
_MIN_FRACTION = 0.8


@dataclass(frozen=True)
class ObjectScore:
    """How one true object fared.

    Attributes
    ----------
    id : str
        Truth id (``T000``...).
    snr : float
        Mean per-frame SNR from the truth.
    rate_arcsec_per_hour : float
        True sky rate.
    recovered : bool
        Some track matches it.
    n_tracks : int
        Tracks that match it (``n_tracks - 1`` of them are duplicates).
    residuals_arcsec : tuple of float
        Distance to the truth of each within-radius observation of its best
        track, for astrometric RMS.
    same_night_efficiency : float
        Fraction of ``SNR * sqrt(N)`` that even an ideal stack keeps when the
        template is made from the same frames (`same_night_efficiency`).
    """

    id: str
    snr: float
    rate_arcsec_per_hour: float
    recovered: bool
    n_tracks: int
    residuals_arcsec: tuple[float, ...] = ()
    same_night_efficiency: float = 1.0


@dataclass(frozen=True)
class FieldScore:
    """Score of one field.

    Attributes
    ----------
    objects : list of ObjectScore
        One per true object, in truth order.
    n_tracks : int
        Tracks reported.
    false_tracks : int
        Tracks that match no object.
    duplicates : int
        Matching tracks beyond the first on each object.
    track_matches : list of (str or None)
        For each reported track, in order, the id of the object it matched.
    """

    objects: list[ObjectScore]
    n_tracks: int
    false_tracks: int
    duplicates: int
    track_matches: list[str | None] = field(default_factory=list)

    @property
    def snr(self) -> np.ndarray:
        """Mean per-frame SNR of each object, float array."""
        return np.array([o.snr for o in self.objects], dtype=float)

    @property
    def recovered(self) -> np.ndarray:
        """Recovered flag of each object, bool array."""
        return np.array([o.recovered for o in self.objects], dtype=bool)

    @property
    def residuals_arcsec(self) -> np.ndarray:
        """All matched-observation residuals (arcsec), float array."""
        return np.array([r for o in self.objects for r in o.residuals_arcsec], dtype=float)


def score_field(
    tracks: dict[str, Any], truth: dict[str, Any], *, match_radius_arcsec: float = 3.0
) -> FieldScore:
    """Match reported tracks to true objects and count recoveries and mistakes.

    Parameters
    ----------
    tracks : dict
        Tracks contract: ``{"tracks": [{"observations": [{"mjd", "ra",
        "dec", ...}, ...]}, ...]}``.
    truth : dict
        Truth of the field, with ``objects[*].observations[*]`` giving
        ``mjd``, ``ra``, ``dec``.
    match_radius_arcsec : float
        An observation counts as on an object within this distance.

    Returns
    -------
    FieldScore
        Per-object recovery, false and duplicate track counts, residuals.

    Raises
    ------
    ValueError
        If ``tracks`` or ``truth`` lack the keys above.

    Notes
    -----
    A track that matches several objects (near-identical motions) is given to
    the one it fits best: most observations within the radius, then the
    smallest RMS. On each object, the best track is the recovery and the
    others are duplicates.
    """
    if "tracks" not in tracks or "objects" not in truth:
        raise ValueError(
            "score_field needs a tracks contract dict ({'tracks': [...]}) and a truth dict "
            "({'objects': [...]}) as simulate_field makes"
        )
    objects = truth["objects"]
    efficiency = _same_night_efficiencies(truth)
    truth_t = [np.array([o["mjd"] for o in obj["observations"]], dtype=float) for obj in objects]
    truth_ra = [np.array([o["ra"] for o in obj["observations"]], dtype=float) for obj in objects]
    truth_dec = [np.array([o["dec"] for o in obj["observations"]], dtype=float) for obj in objects]

    # For each track: (object index, n within, rms, residuals) of its best match, or None.
    best: list[tuple[int, int, float, np.ndarray] | None] = []
    for track in tracks["tracks"]:
        obs = track.get("observations", [])
        if not obs:
            best.append(None)
            continue
        t = np.array([o["mjd"] for o in obs], dtype=float)
        ra = np.array([o["ra"] for o in obs], dtype=float)
        dec = np.array([o["dec"] for o in obs], dtype=float)
        choice = None
        for i in range(len(objects)):
            pra, pdec = _predict(truth_t[i], truth_ra[i], truth_dec[i], t)
            sep = _separation_arcsec(ra, dec, pra, pdec)
            within = sep <= match_radius_arcsec
            n_in = int(within.sum())
            if n_in < _MIN_MATCHED or n_in < _MIN_FRACTION * len(obs):
                continue
            rms = float(np.sqrt(np.mean(sep[within] ** 2)))
            if choice is None or (n_in, -rms) > (choice[1], -choice[2]):
                choice = (i, n_in, rms, sep[within])
        best.append(choice)

    per_object: list[list[tuple[int, float, np.ndarray]]] = [[] for _ in objects]
    for choice in best:
        if choice is not None:
            i, n_in, rms, residuals = choice
            per_object[i].append((n_in, rms, residuals))
    results = []
    for obj, matches, eff in zip(objects, per_object, efficiency, strict=True):
        top = max(matches, key=lambda m: (m[0], -m[1]), default=None)
        results.append(
            ObjectScore(
                id=str(obj["id"]),
                snr=float(obj["snr"]),
                rate_arcsec_per_hour=float(obj.get("rate_arcsec_per_hour", math.nan)),
                recovered=top is not None,
                n_tracks=len(matches),
                residuals_arcsec=() if top is None else tuple(float(r) for r in top[2]),
                same_night_efficiency=eff,
            )
        )
    return FieldScore(
        objects=results,
        n_tracks=len(best),
        false_tracks=sum(choice is None for choice in best),
        duplicates=sum(max(0, len(m) - 1) for m in per_object),
        track_matches=[None if c is None else str(objects[c[0]]["id"]) for c in best],
    )


def same_night_efficiency(rate_px_per_day: float, mjd: np.ndarray, sigma_px: np.ndarray) -> float:
    """Fraction of ``SNR * sqrt(N)`` a stack keeps when the template is the frames' mean.

    With no image of the empty sky, the static sky is estimated from the
    same N frames, and a mover that overlaps its own positions in other
    frames is partly subtracted. For a linear (mean) template and a
    Gaussian PSF the best stacked SNR is ``SNR * sqrt(N - sum_jk rho_jk / N)``,
    ``rho_jk = exp(-d_jk^2 / (2 (s_j^2 + s_k^2)))`` the overlap of the PSFs
    of frames j and k at the object's separation ``d_jk``: 0.3 of ``sqrt(N)``
    for an object that moves one FWHM in the sequence, 0.95 for a fast one.

    Parameters
    ----------
    rate_px_per_day : float
        The object's motion.
    mjd : ndarray, shape (N,)
        Mid-exposure times.
    sigma_px : ndarray, shape (N,)
        Gaussian PSF sigma of each frame.
    """
    n = len(mjd)
    d2 = (rate_px_per_day * (mjd[:, None] - mjd[None, :])) ** 2
    rho = np.exp(-d2 / (2 * (sigma_px[:, None] ** 2 + sigma_px[None, :] ** 2)))
    return math.sqrt(max(n - rho.sum() / n, 0.0) / n)


def _same_night_efficiencies(truth: dict[str, Any]) -> list[float]:
    """`same_night_efficiency` of each true object (1 when the truth lacks the frames)."""
    frames, scale = truth.get("frames"), truth.get("field", {}).get("pixel_scale_arcsec")
    if not frames or not scale:
        return [1.0] * len(truth["objects"])
    mjd = np.array([f["mjd_mid"] for f in frames], dtype=float)
    sigma = np.array([f["fwhm_px"] for f in frames], dtype=float) / 2.3548
    return [
        same_night_efficiency(o["rate_arcsec_per_hour"] / scale * 24.0, mjd, sigma)
        for o in truth["objects"]
    ]


def summarize(scores: Sequence[FieldScore]) -> dict[str, Any]:
    """Sum field scores into BENCHMARK.md's figures.

    Parameters
    ----------
    scores : sequence of FieldScore
        One per field; pass a one-element list for a single field's figures.

    Returns
    -------
    dict
        JSON-serialisable: ``fields``; ``snr_bins`` (``label``, ``low``,
        ``high``, ``recovered``, ``present``, ``completeness`` or None when
        empty); ``completeness_snr_ge_5``; ``snr_at_50pct`` (per-frame SNR
        where completeness crosses 50 %, linearly interpolated between the
        bins' mean SNRs, None when not bracketed) with ``snr_at_50pct_bound``
        (``"below"``: complete above 50 % even in the lowest bin, ``"above"``:
        never reaches 50 %, else None); ``false_tracks`` and ``duplicates``
        (totals) and ``..._per_field``; ``astrometric_rms_arcsec`` over all
        matched observations and ``astrometric_rms_arcsec_snr_ge_10`` (None
        when nothing matched); ``n_matched_observations``.
    """
    snr = np.concatenate([s.snr for s in scores]) if scores else np.zeros(0)
    rec = np.concatenate([s.recovered for s in scores]) if scores else np.zeros(0, bool)
    bins = []
    for low, high in SNR_BINS:
        inside = (snr >= low) & (snr < high)
        present, recovered = int(inside.sum()), int(rec[inside].sum())
        bins.append(
            {
                "label": _bin_label(low, high),
                "low": low,
                "high": None if math.isinf(high) else high,
                "recovered": recovered,
                "present": present,
                "completeness": recovered / present if present else None,
                "mean_snr": float(snr[inside].mean()) if present else None,
            }
        )
    snr50, bound = _snr_at_50(bins)
    strong = snr >= 5.0
    matched = [o.residuals_arcsec for s in scores for o in s.objects]
    bright = [o.residuals_arcsec for s in scores for o in s.objects if o.snr >= 10.0]
    n_fields = len(scores)
    false_tracks = sum(s.false_tracks for s in scores)
    duplicates = sum(s.duplicates for s in scores)
    return {
        "fields": n_fields,
        "objects": int(snr.size),
        "snr_bins": bins,
        "completeness_snr_ge_5": float(rec[strong].mean()) if strong.any() else None,
        "snr_at_50pct": snr50,
        "snr_at_50pct_bound": bound,
        "false_tracks": false_tracks,
        "duplicates": duplicates,
        "false_tracks_per_field": false_tracks / n_fields if n_fields else None,
        "duplicates_per_field": duplicates / n_fields if n_fields else None,
        "astrometric_rms_arcsec": _rms(matched),
        "astrometric_rms_arcsec_snr_ge_10": _rms(bright),
        "n_matched_observations": sum(len(r) for r in matched),
    }


def ideal_findable(snr: Any, *, n_frames: int, threshold: float = 7.0) -> np.ndarray:
    """Whether an ideal stack search finds an object: ``snr * sqrt(n_frames) >= threshold``.

    Stacking N frames along the true motion raises the per-frame SNR to about
    ``SNR * sqrt(N)``; a blind search over all motions needs a stacked SNR of
    about 6-7 to keep chance alarms rare (BENCHMARK.md, "The limit").

    Parameters
    ----------
    snr : array_like
        Mean per-frame SNR of each object.
    n_frames : int, keyword-only
        Frames in the field.
    threshold : float, keyword-only
        Stacked SNR an ideal search needs.

    Returns
    -------
    ndarray of bool
        One flag per object.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames={n_frames!r}: give the number of frames, >= 1")
    return np.asarray(snr, dtype=float) * math.sqrt(n_frames) >= threshold


def completeness_by(
    scores: Sequence[FieldScore],
    bins: Sequence[tuple[float, float]],
    *,
    by: str = "snr",
    labels: Sequence[str] | None = None,
    n_frames: int | None = None,
    ideal_threshold: float | None = None,
) -> list[dict[str, Any]]:
    """Completeness over fields in bins of per-frame SNR or of sky rate.

    Parameters
    ----------
    scores : sequence of FieldScore
        One per field.
    bins : sequence of (float, float)
        ``(low, high)`` pairs, each ``low <= value < high``; ``high`` may be inf.
    by : {"snr", "rate"}, keyword-only
        Bin on the mean per-frame SNR or on the rate (arcsec/hour).
    labels : sequence of str, keyword-only
        Bin labels (default ``"2-3"``, ``"<2"``, ``">=10"`` style).
    n_frames, ideal_threshold : keyword-only
        When both are given, each bin also counts the objects an ideal stack
        search finds (`ideal_findable`): ``ideal`` (count),
        ``ideal_completeness`` (``ideal / present``), and the recovery among
        just those objects, ``findable_present``, ``findable_recovered``,
        ``findable_completeness``; and those an ideal search finds with a
        template made of the same frames (``SNR * sqrt(N) *
        same_night_efficiency >= threshold``): ``same_night`` and
        ``same_night_completeness``.

    Returns
    -------
    list of dict
        Per bin: ``label``, ``low``, ``high`` (None for inf), ``present``,
        ``recovered``, ``completeness`` (None when empty), ``mean`` (of the
        binned value) and ``mean_snr``, both None when empty; plus the ideal
        counts above. `snr_at_50pct` reads SNR bins.
    """
    if by not in ("snr", "rate"):
        raise ValueError(f"by={by!r}: give 'snr' or 'rate'")
    if labels is not None and len(labels) != len(bins):
        raise ValueError(f"{len(labels)} labels for {len(bins)} bins: give one label per bin")
    objects = [o for s in scores for o in s.objects]
    snr = np.array([o.snr for o in objects], dtype=float)
    rate = np.array([o.rate_arcsec_per_hour for o in objects], dtype=float)
    rec = np.array([o.recovered for o in objects], dtype=bool)
    value = snr if by == "snr" else rate
    ideal: np.ndarray | None = None
    same_night: np.ndarray | None = None
    if n_frames is not None and ideal_threshold is not None:
        ideal = ideal_findable(snr, n_frames=n_frames, threshold=ideal_threshold)
        efficiency = np.array([o.same_night_efficiency for o in objects], dtype=float)
        same_night = ideal_findable(snr * efficiency, n_frames=n_frames, threshold=ideal_threshold)
    out = []
    for i, (low, high) in enumerate(bins):
        inside = (value >= low) & (value < high)
        present = int(inside.sum())
        recovered = int(rec[inside].sum())
        row: dict[str, Any] = {
            "label": labels[i] if labels is not None else _bin_label(low, high),
            "low": low,
            "high": None if math.isinf(high) else high,
            "present": present,
            "recovered": recovered,
            "completeness": recovered / present if present else None,
            "mean": float(value[inside].mean()) if present else None,
            "mean_snr": float(snr[inside].mean()) if present else None,
        }
        if ideal is not None and same_night is not None:
            findable = inside & ideal
            n_findable = int(findable.sum())
            row.update(
                ideal=n_findable,
                ideal_completeness=n_findable / present if present else None,
                findable_present=n_findable,
                findable_recovered=int(rec[findable].sum()),
                findable_completeness=int(rec[findable].sum()) / n_findable if n_findable else None,
                same_night=int((inside & same_night).sum()),
                same_night_completeness=int((inside & same_night).sum()) / present
                if present
                else None,
            )
        out.append(row)
    return out


def snr_at_50pct(
    bins: Sequence[dict[str, Any]], *, key: str = "completeness"
) -> tuple[float | None, str | None]:
    """Per-frame SNR where a binned completeness curve last rises through 50 %.

    Parameters
    ----------
    bins : sequence of dict
        SNR bins with ``present``, ``mean_snr`` and ``key``, as `summarize`'s
        ``snr_bins`` or `completeness_by` gives them.
    key : str, keyword-only
        The curve: ``"completeness"``, or ``"ideal_completeness"`` for the
        ideal search's.

    Returns
    -------
    (float or None, str or None)
        The SNR, linearly interpolated between the bins' mean SNRs, and the
        bound as in `summarize`: ``"below"`` (above 50 % even in the lowest
        bin), ``"above"`` (never reaches 50 %), else None.
    """
    return _snr_at_50([{**b, "completeness": b[key]} for b in bins])


def _bin_label(low: float, high: float) -> str:
    if low <= 0.0:
        return f"<{high:g}"
    if math.isinf(high):
        return f">={low:g}"
    return f"{low:g}-{high:g}"


def _snr_at_50(bins: list[dict[str, Any]]) -> tuple[float | None, str | None]:
    """Where the binned completeness curve last rises through 50 %."""
    points = [(b["mean_snr"], b["completeness"]) for b in bins if b["present"]]
    if not points:
        return None, None
    x, c = np.array(points, dtype=float).T
    below = np.flatnonzero(c < 0.5)
    if below.size == 0:
        return None, "below"
    j = int(below[-1])
    if j == len(c) - 1:
        return None, "above"
    return float(x[j] + (0.5 - c[j]) * (x[j + 1] - x[j]) / (c[j + 1] - c[j])), None


def _rms(groups: Sequence[Sequence[float]]) -> float | None:
    values = np.array([r for g in groups for r in g], dtype=float)
    return float(np.sqrt(np.mean(values**2))) if values.size else None


def _predict(
    t_true: np.ndarray, ra_true: np.ndarray, dec_true: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Truth at times ``t``: linear between, and beyond, the per-frame positions."""
    if t_true.size == 1:
        return np.full(t.shape, ra_true[0]), np.full(t.shape, dec_true[0])
    order = np.argsort(t_true)
    t_true, dec_true = t_true[order], dec_true[order]
    ra_true = ra_true[0] + (ra_true[order] - ra_true[0] + 180.0) % 360.0 - 180.0  # unwrap 0/360
    j = np.clip(np.searchsorted(t_true, t), 1, t_true.size - 1)
    w = (t - t_true[j - 1]) / (t_true[j] - t_true[j - 1])
    ra = ra_true[j - 1] + w * (ra_true[j] - ra_true[j - 1])
    dec = dec_true[j - 1] + w * (dec_true[j] - dec_true[j - 1])
    return ra % 360.0, dec


def _separation_arcsec(
    ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray
) -> np.ndarray:
    """Great-circle distance (haversine, exact at small angles)."""
    ra1, dec1, ra2, dec2 = (np.radians(v) for v in (ra1, dec1, ra2, dec2))
    h = (
        np.sin((dec2 - dec1) / 2.0) ** 2
        + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2.0) ** 2
    )
    return np.degrees(2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))) * 3600.0
