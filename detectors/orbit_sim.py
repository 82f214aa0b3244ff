"""Synthetic orbits: a main-belt catalogue, decoys, and orbits that cross a field.

For tests and the benchmark, never for results: a catalogue as large as the
MPC's (a million orbits and more) with a realistic spread of elements, clones
of a real orbit shifted along it (decoys that sit beside the real object in
the images without being there), and orbits built to cross a simulated field
so the simulator can place its movers where the ephemeris says.

Elements are heliocentric osculating, ecliptic and equinox J2000, epochs TT
MJD, like MPCORB's (see `detectors.orbits`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

import numpy as np
from astropy.wcs.utils import proj_plane_pixel_scales

from .ephemeris import (
    ECLIPTIC_TO_ICRS,
    GAUSS_K,
    ObserverStates,
    ephemerides,
    observer_states,
)
from .observatories import Site
from .orbits import OrbitCatalog, _packed_epoch, pack_designation
from .predict import Footprint

__all__ = [
    "catalog_from_elements",
    "catalog_with_decoys",
    "clone_orbit",
    "concatenate",
    "elements_from_state",
    "main_belt_catalog",
    "mpcorb_text",
    "orbits_through_field",
    "provisional_designations",
    "shift_for_offsets",
]

_MU = GAUSS_K**2
_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # half-month and order letters (no I)


def elements_from_state(pos: np.ndarray, vel: np.ndarray) -> dict[str, np.ndarray]:
    """Osculating elliptic elements from heliocentric ICRS states.

    Parameters
    ----------
    pos, vel : ndarray, shape (N, 3)
        AU and AU/day.

    Returns
    -------
    dict of ndarray, shape (N,)
        ``a`` (AU), ``e``, and ``inclination``, ``node``, ``arg_perihelion``,
        ``mean_anomaly`` in degrees (ecliptic J2000). Hyperbolic states give NaN.
    """
    r = np.asarray(pos, float) @ ECLIPTIC_TO_ICRS
    v = np.asarray(vel, float) @ ECLIPTIC_TO_ICRS
    rn = np.linalg.norm(r, axis=1)
    v2 = (v * v).sum(1)
    h = np.cross(r, v)
    hn = np.linalg.norm(h, axis=1)
    node_vec = np.stack([-h[:, 1], h[:, 0], np.zeros(len(h))], axis=1)
    nn = np.linalg.norm(node_vec, axis=1)
    e_vec = ((v2 - _MU / rn)[:, None] * r - (r * v).sum(1)[:, None] * v) / _MU
    e = np.linalg.norm(e_vec, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = 1.0 / (2.0 / rn - v2 / _MU)
        inc = np.degrees(np.arccos(np.clip(h[:, 2] / hn, -1, 1)))
        node = np.degrees(np.arctan2(node_vec[:, 1], node_vec[:, 0])) % 360.0
        nx, ny = node_vec[:, 0] / nn, node_vec[:, 1] / nn
        cos_w = (nx * e_vec[:, 0] + ny * e_vec[:, 1]) / e
        w = np.degrees(np.arccos(np.clip(cos_w, -1, 1)))
        w = np.where(e_vec[:, 2] < 0, 360.0 - w, w)
        cos_nu = (e_vec * r).sum(1) / (e * rn)
        nu = np.arccos(np.clip(cos_nu, -1, 1))
        nu = np.where((r * v).sum(1) < 0, 2 * np.pi - nu, nu)
        ecc = 2.0 * np.arctan(np.sqrt((1 - e) / (1 + e)) * np.tan(nu / 2.0))
        mean = np.degrees(ecc - e * np.sin(ecc)) % 360.0
    bad = (e >= 1) | ~np.isfinite(a) | (a <= 0)
    out = {
        "a": a,
        "e": e,
        "inclination": inc,
        "node": node,
        "arg_perihelion": w,
        "mean_anomaly": mean,
    }
    return {k: np.where(bad, np.nan, val) for k, val in out.items()}


def catalog_from_elements(
    elements: dict[str, np.ndarray],
    *,
    epoch_mjd: float,
    packed: Iterable[str],
    readable: Iterable[str],
    h: np.ndarray,
    uncertainty: np.ndarray | int = 0,
    last_obs_mjd: float | None = None,
) -> OrbitCatalog:
    """An `OrbitCatalog` from element arrays (the keys of `elements_from_state`).

    Numbers are read from readable designations written ``(123456)``; ``n``
    follows from ``a``; G is 0.15; the last observation is 30 days before
    the epoch unless given.
    """
    packed = np.array(list(packed), dtype="S7")
    n = packed.size
    readable = np.array(list(readable), dtype="S28")
    number = np.full(n, -1, dtype=np.int64)
    for i, text in enumerate(readable.tolist()):
        if text.startswith(b"("):
            number[i] = int(text[1:].split(b")")[0])
    return OrbitCatalog(
        packed=packed,
        readable=readable,
        number=number.astype(np.int64),
        h=np.asarray(h, float),
        g=np.full(n, 0.15),
        epoch_mjd=np.full(n, float(epoch_mjd)),
        mean_anomaly=elements["mean_anomaly"],
        arg_perihelion=elements["arg_perihelion"],
        node=elements["node"],
        inclination=elements["inclination"],
        e=elements["e"],
        a=elements["a"],
        n=np.degrees(GAUSS_K) / elements["a"] ** 1.5,
        uncertainty=np.broadcast_to(np.asarray(uncertainty, np.int8), (n,)).copy(),
        last_obs_mjd=np.full(n, epoch_mjd - 30.0 if last_obs_mjd is None else last_obs_mjd),
    )


def provisional_designations(index: np.ndarray, *, year0: int = 2000) -> list[str]:
    """Distinct readable provisional designations (``2003 KD17``...), one per index."""
    out = []
    for k in index.tolist():
        cycle, rest = divmod(int(k), 25 * 25)
        year, rest2 = divmod(cycle, 620)
        half, letter = divmod(rest, 25)
        out.append(f"{year0 + year} {_LETTERS[half]}{_LETTERS[letter]}{rest2 or ''}")
    return out


def main_belt_catalog(n: int, *, seed: int, epoch_mjd: float) -> OrbitCatalog:
    """A synthetic catalogue with the spread of MPCORB's elements.

    95 % main belt (a 2.1-3.3 AU without the 3:1, 5:2 and 7:3 Kirkwood gaps,
    e ~ 0.12 +/- 0.07, i Rayleigh 7 deg), 3 % NEOs (q < 1.3 AU), 2 % Hildas
    and Trojans; H from 10 to 19.5 with counts rising 0.35 dex per magnitude;
    U mostly 0-2. Two thirds are numbered from 1 000 000 (packed ``~xxxx``),
    the rest have provisional designations; all share ``epoch_mjd``.

    Parameters
    ----------
    n : int
    seed : int, keyword-only
    epoch_mjd : float, keyword-only
        TT MJD (rounded to a date in the file).

    Returns
    -------
    OrbitCatalog
    """
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=n, p=[0.95, 0.03, 0.02])
    a = rng.uniform(2.1, 3.3, n)
    for gap in (2.502, 2.825, 2.958):
        near = np.abs(a - gap) < 0.015
        a[near] += np.sign(a[near] - gap + 1e-9) * 0.03
    e = np.clip(np.abs(rng.normal(0.12, 0.07, n)), 0.0, 0.4)
    inc = np.minimum(rng.rayleigh(7.0, n), 40.0)
    neo = kind == 1
    a[neo] = rng.uniform(0.8, 2.6, neo.sum())
    q = rng.uniform(0.3, 1.3, neo.sum())
    e[neo] = np.clip(1.0 - q / a[neo], 0.02, 0.9)
    inc[neo] = np.minimum(rng.rayleigh(12.0, neo.sum()), 70.0)
    outer = kind == 2
    a[outer] = np.where(rng.uniform(size=outer.sum()) < 0.5, 3.97, 5.2) + rng.normal(
        0, 0.03, outer.sum()
    )
    lo, hi = 10.0 ** (0.35 * 10.0), 10.0 ** (0.35 * 19.5)
    h = np.log10(lo + rng.uniform(size=n) * (hi - lo)) / 0.35
    elements = {
        "a": a,
        "e": e,
        "inclination": inc,
        "node": rng.uniform(0, 360, n),
        "arg_perihelion": rng.uniform(0, 360, n),
        "mean_anomaly": rng.uniform(0, 360, n),
    }
    numbered = n * 2 // 3
    readable = [f"({1_000_000 + k})" for k in range(numbered)]
    readable += provisional_designations(np.arange(n - numbered))
    packed = [pack_designation(r) for r in readable]
    uncertainty = rng.choice(
        10, size=n, p=[0.4, 0.2, 0.12, 0.08, 0.06, 0.05, 0.04, 0.02, 0.02, 0.01]
    )
    return catalog_from_elements(
        elements,
        epoch_mjd=epoch_mjd,
        packed=packed,
        readable=readable,
        h=np.round(h, 2),
        uncertainty=uncertainty,
    )


def mpcorb_text(catalog: OrbitCatalog, *, header: bool = True) -> str:
    """The catalogue as an ``MPCORB.DAT`` text (the MPC's columns; see `mpcorb_line`)."""
    epochs: dict[float, str] = {}
    lines = []
    if header:
        lines += [
            "MINOR PLANET CENTER ORBIT DATABASE (synthetic, AstroHunter tests)",
            "",
            "-" * 160,
        ]
    for p, rd, h, g, ep, m, w, node, inc, e, a, n, unc in zip(
        np.char.decode(catalog.packed, "ascii").tolist(),
        np.char.decode(catalog.readable, "ascii").tolist(),
        catalog.h.tolist(),
        catalog.g.tolist(),
        catalog.epoch_mjd.tolist(),
        catalog.mean_anomaly.tolist(),
        catalog.arg_perihelion.tolist(),
        catalog.node.tolist(),
        catalog.inclination.tolist(),
        catalog.e.tolist(),
        catalog.a.tolist(),
        catalog.n.tolist(),
        catalog.uncertainty.tolist(),
        strict=True,
    ):
        packed_epoch = epochs.get(ep) or epochs.setdefault(ep, _packed_epoch(ep))
        lines.append(
            f"{p:<7} {h:5.2f} {g:5.2f} {packed_epoch} {m % 360:9.5f}  {w % 360:9.5f}  "
            f"{node % 360:9.5f}  {inc:9.5f}  {e:9.7f} {n:11.8f} {a:11.7f}  {max(unc, 0):1d} "
            f"AstroHntr    10   1 2019-2019 0.50 M-v 3Ek SIMULATED  0000 {rd:<28}20190101"
        )
    return "\n".join(lines) + "\n"


def clone_orbit(
    catalog: OrbitCatalog, index: int, delta_m_deg: np.ndarray, *, first: int = 0
) -> OrbitCatalog:
    """Copies of orbit ``index`` with the mean anomaly shifted by ``delta_m_deg``.

    Decoys: each clone follows the same path as the original, ahead of or
    behind it. They get provisional designations from year 2090 on
    (``2090 AA``...; ``first`` offsets them) so they never collide with real ones.
    """
    shift = np.atleast_1d(np.asarray(delta_m_deg, float))
    src = catalog.take(np.full(shift.size, index))
    readable = provisional_designations(np.arange(first, first + shift.size), year0=2090)
    elements = {k: getattr(src, k) for k in ("a", "e", "inclination", "node", "arg_perihelion")}
    elements["mean_anomaly"] = (src.mean_anomaly + shift) % 360.0
    return catalog_from_elements(
        elements,
        epoch_mjd=float(src.epoch_mjd[0]),
        packed=[pack_designation(r) for r in readable],
        readable=readable,
        h=src.h,
        uncertainty=src.uncertainty,
        last_obs_mjd=float(src.last_obs_mjd[0]),
    )


def shift_for_offsets(
    catalog: OrbitCatalog,
    index: int,
    offsets_arcsec: np.ndarray,
    *,
    site: Site,
    mjd: float,
) -> np.ndarray:
    """Mean-anomaly shifts (deg) that move orbit ``index`` by the given sky distances at ``mjd``.

    Signed offsets: negative ones shift backwards along the orbit. Found by
    measuring the sky distance of a small trial shift (the relation is linear
    for the arcminutes that matter here) and refining once.
    """
    states = observer_states(site, np.array([mjd]))
    base = ephemerides(catalog.take(np.array([index])), states)
    trial = 1e-3

    def distance(shift: np.ndarray) -> np.ndarray:
        eph = ephemerides(clone_orbit(catalog, index, shift), states)
        dra = (eph.ra[:, 0] - base.ra[0, 0]) * np.cos(np.radians(base.dec[0, 0]))
        return np.hypot(dra, eph.dec[:, 0] - base.dec[0, 0]) * 3600.0

    per_deg = distance(np.array([trial]))[0] / trial
    target = np.asarray(offsets_arcsec, float)
    shift = target / per_deg
    got = distance(shift) * np.sign(shift)
    return shift * target / np.where(got == 0, 1.0, got)


def orbits_through_field(
    rng: np.random.Generator,
    n: int,
    *,
    footprint: Footprint,
    mjd: np.ndarray,
    site: Site,
    edge_px: float = 30.0,
    neo_fraction: float = 0.1,
) -> tuple[dict[str, np.ndarray], ObserverStates]:
    """Elements of ``n`` orbits whose predicted positions stay inside the field at every ``mjd``.

    Each orbit starts on the line of sight to a point inside the field, at
    the epoch (the whole TT day nearest mid-sequence, so the MPCORB file holds
    it exactly), at a heliocentric distance of 2.1-3.3 AU (a NEO's 1.05-1.5
    AU for ``neo_fraction`` of them), with a near-circular prograde velocity
    (flight-path angle ~5 deg, so not at an apsis) in a plane tilted ~10 deg
    from the ecliptic (more where the line of sight needs it). The state
    becomes osculating elements; their ephemeris is then checked against the
    footprint at every ``mjd`` (with ``edge_px`` to spare), and orbits that
    leave it are drawn again.
    failures are drawn again.

    Returns
    -------
    dict of ndarray
        ``elements_from_state`` keys plus ``epoch_mjd`` (TT MJD, whole day
        so the MPCORB file holds them exactly) and ``h``.
    ObserverStates
        The observer at ``mjd`` (for the caller's own ephemerides).
    """
    mjd = np.asarray(mjd, float)
    states = observer_states(site, mjd)
    mid = 0.5 * (mjd.min() + mjd.max())
    epoch = float(np.round(mid))
    epoch_states = observer_states(site, np.array([epoch]))
    pole = ECLIPTIC_TO_ICRS[:, 2]  # ecliptic north in ICRS
    h, w = footprint.shape
    kept: dict[str, list[np.ndarray]] = {}
    n_kept = 0
    for _ in range(100):
        m = 4 * n + 4
        x = rng.uniform(edge_px, w - 1 - edge_px, m)
        y = rng.uniform(edge_px, h - 1 - edge_px, m)
        ra, dec = footprint.wcs.all_pix2world(x, y, 0)
        ra, dec = np.radians(ra), np.radians(dec)
        los = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], 1)
        obs = epoch_states.observer_pos[0] - epoch_states.sun_pos[0]  # heliocentric observer
        r_helio = np.where(
            rng.uniform(size=m) < neo_fraction, rng.uniform(1.05, 1.5, m), rng.uniform(2.1, 3.3, m)
        )
        # |obs + d los| = r  ->  d^2 + 2 d (obs.los) + |obs|^2 - r^2 = 0
        b = los @ obs
        disc = b * b - (obs @ obs - r_helio**2)
        d = -b + np.sqrt(np.maximum(disc, 0.0))
        pos = obs + d[:, None] * los
        r_hat = pos / np.linalg.norm(pos, axis=1)[:, None]
        tilt = pole + rng.normal(0.0, 0.15, (m, 3))
        normal = tilt - (tilt @ r_hat.T).diagonal()[:, None] * r_hat
        normal /= np.linalg.norm(normal, axis=1)[:, None]
        flight = rng.normal(0.0, 0.08, m)[:, None]  # flight-path angle: not always at an apsis
        direction = np.cos(flight) * np.cross(normal, r_hat) + np.sin(flight) * r_hat
        a_target = r_helio * rng.uniform(0.9, 1.15, m)
        speed = np.sqrt(_MU * (2.0 / r_helio - 1.0 / a_target))
        vel = speed[:, None] * direction
        elements = elements_from_state(pos, vel)
        ok = (disc > 0) & np.isfinite(elements["a"])
        elements["epoch_mjd"] = np.full(m, epoch)
        elements["h"] = np.round(rng.uniform(14.0, 18.0, m), 2)
        safe = {k: np.where(ok, v, 0.1 if k == "e" else 2.5) for k, v in elements.items()}
        trial = catalog_from_elements(
            safe,
            epoch_mjd=epoch,
            packed=["0"] * m,
            readable=[""] * m,
            h=elements["h"],
        )
        eph = ephemerides(trial, states)
        px, py = footprint.wcs.all_world2pix(eph.ra.ravel(), eph.dec.ravel(), 0)
        px, py = px.reshape(eph.ra.shape), py.reshape(eph.ra.shape)
        ok &= (
            (px >= edge_px) & (px <= w - 1 - edge_px) & (py >= edge_px) & (py <= h - 1 - edge_px)
        ).all(1)
        for key, value in elements.items():
            kept.setdefault(key, []).append(value[ok])
        n_kept += int(ok.sum())
        if n_kept >= n:
            break
    if n_kept < n:
        raise ValueError(f"could not place {n} orbits inside a {footprint.shape} field: enlarge it")
    return {k: np.concatenate(v)[:n] for k, v in kept.items()}, states


def concatenate(*catalogs: OrbitCatalog) -> OrbitCatalog:
    """One catalogue holding all orbits of ``catalogs``, in order."""
    names = [f.name for f in fields(OrbitCatalog) if f.name != "skipped"]
    return OrbitCatalog(
        **{k: np.concatenate([getattr(c, k) for c in catalogs]) for k in names},
        skipped=sum(c.skipped for c in catalogs),
    )


def catalog_with_decoys(
    real: OrbitCatalog,
    *,
    n_background: int,
    clone_offsets_px: np.ndarray,
    footprint: Footprint,
    site: Site,
    mjd: float,
    seed: int = 0,
) -> tuple[OrbitCatalog, list[str]]:
    """A large synthetic catalogue holding ``real`` and decoy clones of its first orbit.

    Parameters
    ----------
    real : OrbitCatalog
        The real orbit(s) (say (5945) from ``mpcorb_5945.dat``); the first is cloned.
    n_background : int, keyword-only
        Synthetic main-belt orbits (`main_belt_catalog`) at the real orbit's epoch.
    clone_offsets_px : array_like, keyword-only
        Signed distances along the orbit, in pixels of ``footprint`` at ``mjd``.
    footprint : Footprint, keyword-only
    site : Site, keyword-only
    mjd : float, keyword-only
        UTC MJD at which the clones sit at those distances (mid-sequence).
    seed : int, keyword-only

    Returns
    -------
    OrbitCatalog
        Background, then the real orbits, then the clones.
    list of str
        The clones' readable designations.
    """
    scale = float(np.mean(proj_plane_pixel_scales(footprint.wcs.celestial))) * 3600.0
    shifts = shift_for_offsets(
        real, 0, np.asarray(clone_offsets_px, float) * scale, site=site, mjd=mjd
    )
    clones = clone_orbit(real, 0, shifts)
    background = main_belt_catalog(n_background, seed=seed, epoch_mjd=float(real.epoch_mjd[0]))
    names = [clones.designation(i) for i in range(len(clones))]
    return concatenate(background, real, clones), names
