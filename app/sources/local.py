"""``local``: the user's own FITS files, read in place from allowed folders.

Only paths under ``ASTROHUNTER_LOCAL_ROOTS`` are read, so a search request
can never make the service read arbitrary files. Frames whose WCS shows
they do not contain the searched position are left out, and named in the
result (the job records each as a ``skipped`` event); frames whose header
cannot be read are passed on for the data service to judge.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from detectors import io
from detectors.errors import InputError
from detectors.headers import celestial_wcs

from ..config import get_settings
from . import FetchProgress, FetchRequest, FetchResult, Source

__all__ = ["LocalSource", "covers"]


def covers(path: Path, ra: float, dec: float) -> bool | None:
    """Whether the first image HDU with a celestial WCS in ``path`` contains (ra, dec).

    Returns
    -------
    bool or None
        None when the file has no readable image WCS (the data service
        will say what is wrong with it).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path) as hdul:
                for hdu in hdul:
                    if not hdu.is_image:
                        continue
                    header = hdu.header
                    shape = [int(header.get(f"NAXIS{i}", 0)) for i in (1, 2)]
                    if int(header.get("NAXIS", 0)) < 2 or min(shape) <= 0:
                        continue
                    wcs = celestial_wcs(header, fobj=hdul)
                    if wcs is None:
                        continue
                    x, y = wcs.all_world2pix([[ra, dec]], 0, quiet=True)[0]
                    width, height = shape
                    return bool(
                        np.isfinite(x)
                        and np.isfinite(y)
                        and -0.5 <= x <= width - 0.5
                        and -0.5 <= y <= height - 0.5
                    )
    except Exception:  # unreadable: not ours to judge
        return None
    return None


class LocalSource(Source):
    name = "local"
    description = "Your own FITS frames from a folder or glob under ASTROHUNTER_LOCAL_ROOTS"
    coverage = "whatever the folder holds (frames not covering the position are skipped)"

    def _paths(self, options: dict) -> list[Path]:
        """The files the path names, each checked to lie under an allowed root.

        The check is on every resolved match, not on the pattern's text: a
        glob such as ``<root>*/x.fits`` or a symlink must not reach outside.
        """
        raw = options.get("path")
        if not raw:
            raise InputError("path: the local source needs a folder or glob, e.g. /data/night1")
        roots = [Path(r).resolve() for r in get_settings().local_roots if r]
        allowed = ", ".join(map(str, roots)) or "none (set ASTROHUNTER_LOCAL_ROOTS)"

        def inside(p: Path) -> bool:
            p = p.resolve()
            return any(p == root or root in p.parents for root in roots)

        prefix = Path(str(raw).split("*")[0].split("?")[0].split("[")[0] or ".")
        try:
            if not inside(
                prefix if prefix.exists() or not prefix.parent.exists() else prefix.parent
            ):
                raise InputError(f"path: {raw} is outside the allowed folders ({allowed})")
            paths = io.expand_paths([str(raw)])
        except InputError as exc:
            raise InputError(
                exc.args[0] if str(exc).startswith("path:") else f"path: {exc}"
            ) from None
        except OSError as exc:  # e.g. a name longer than the file system allows
            raise InputError(f"path: cannot be read ({exc.strerror})") from None
        outside = [p for p in paths if not inside(p)]
        if outside:
            raise InputError(
                f"path: {raw} reaches outside the allowed folders ({allowed}): {outside[0]}"
            )
        return paths

    def validate(self, options: dict) -> None:
        self._paths(options)

    def fetch(self, request: FetchRequest, progress: FetchProgress) -> FetchResult:
        paths = self._paths(request.options)
        kept: list[Path] = []
        skipped: list[tuple[str, str]] = []
        where = f"RA {request.ra:.5f} Dec {request.dec:.5f}"
        for i, path in enumerate(paths, start=1):
            if covers(path, request.ra, request.dec) is False:
                skipped.append((path.name, f"does not cover the searched position ({where})"))
            else:
                kept.append(path)
            progress(i, len(paths), f"local: checked {i}/{len(paths)} files")
        if not kept:
            raise InputError(
                f"path: none of the {len(paths)} frames in {request.options['path']} covers "
                f"{where}; check the position or the folder"
            )
        notes = [f"local: {len(kept)} of {len(paths)} files cover {where}"]
        return FetchResult(paths=kept, skipped=skipped, notes=notes, source=self.name)
