"""Page-load benchmark of the review page: a 2048x2048 field with about 30 tracks.

Makes one job in a fresh data folder by running the pipeline's four stages in
this process on the simulated source (2048x2048 pixels at 1.2"/px, ``--objects``
movers, faint search off unless ``--faint``), then serves it with the embedded
server and opens ``/jobs/{id}`` in headless Chromium (Debian's, through
Playwright) ``--runs`` times: each run in a new browser context (nothing
cached), and once more reloading in the same context (pictures from the
browser's cache). It prints the job's tracks, the seconds the detailed stage
spent making pictures (``run.timings_s.pictures``), the bytes of the pictures
the page loads, and per run the time from navigation start to the ``load``
event, by which every picture has loaded (they are not lazy), with the count
of pictures that loaded.

Run from the repository root with the venv::

    python benchmarks/review_page.py                  # 5 runs, 32 movers
    python benchmarks/review_page.py --runs 10 --objects 45 --keep /tmp/review-bench

This is a measurement, not a test: the bar (issue 14) is <= 2 s to ``load``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MIN_DISK_SPACE_GB", "0")

#: Half-width giving 2048 pixels at the simulated source's 1.2"/px.
RADIUS_ARCMIN = 2048 * 1.2 / 120
CHROMIUM = os.environ.get("ASTROHUNTER_CHROMIUM", "/usr/bin/chromium")
#: The navigation's load time and what loaded, measured in the page.
MEASURE = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const images = [...document.images];
  return {
    load_ms: nav.loadEventEnd - nav.startTime,
    dom_ms: nav.domContentLoadedEventEnd - nav.startTime,
    images: images.length,
    loaded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
    tracks: document.querySelectorAll("[data-track-id]").length,
  };
}"""


def make_job(*, objects: int, faint: bool, seed: int) -> tuple[str, float]:
    """Run the four stages of one simulated 2048x2048 job here; its id and total seconds."""
    from app import pipeline
    from app.config import get_settings
    from app.db import crud

    ctx = pipeline.Context(get_settings())
    params = {"radius_arcmin": RADIUS_ARCMIN, "seed": seed, "faint": faint, "objects": objects}
    with ctx.sessions() as session:
        job, _ = crud.create_or_get_job(
            session=session, ra=150.0, dec=2.2, source="simulated", params=params, simulated=True
        )
    started = time.perf_counter()
    for stage in (pipeline.download, pipeline.ingest, pipeline.fast, pipeline.detailed):
        t0 = time.perf_counter()
        stage(ctx, job.id)
        print(f"  {stage.__name__:<9} {time.perf_counter() - t0:6.1f} s", flush=True)
    return job.id, time.perf_counter() - started


def _load(page, url: str) -> dict:
    page.goto(url, wait_until="load")
    return page.evaluate(MEASURE)


def _show(label: str, m: dict) -> None:
    print(
        f"  {label:<15} load {m['load_ms']:6.0f} ms  (DOM {m['dom_ms']:5.0f} ms)  "
        f"{m['loaded']}/{m['images']} images loaded, {m['tracks']} entries"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="cold page loads (5)")
    parser.add_argument(
        "--objects", type=int, default=32, help="movers injected (32: about 30 tracks)"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulated field's seed (1)")
    parser.add_argument("--faint", action="store_true", help="run the faint search too")
    parser.add_argument("--keep", type=Path, help="data folder to use and keep (default: temp)")
    parser.add_argument("--job", help="measure this job of --keep's folder instead of making one")
    args = parser.parse_args(argv)

    data = args.keep or Path(tempfile.mkdtemp(prefix="review-bench-"))
    os.environ["DATA_DIR"] = str(data)
    os.environ.pop("DATABASE_URL", None)
    from playwright.sync_api import sync_playwright

    from app.embedded import embedded_server, use_in_process_broker

    use_in_process_broker()
    if args.job:
        job_id, seconds = args.job, float("nan")
    else:
        print(f"making a 2048x2048 job with {args.objects} movers in {data} ...", flush=True)
        job_id, seconds = make_job(objects=args.objects, faint=args.faint, seed=args.seed)
    import httpx

    try:
        with embedded_server() as url:
            document = httpx.get(f"{url}/jobs/{job_id}/tracks", timeout=30).json()
            pictures = data / "jobs" / job_id / "results" / "images"
            names = [
                p.name
                for p in pictures.glob("*.png")
                if p.name == "field.png" or p.name.startswith("stamps-")
            ]
            size = sum((pictures / n).stat().st_size for n in names if (pictures / n).exists())
            print(
                f"job {job_id}: {len(document['tracks'])} tracks in {seconds:.1f} s; pictures "
                f"{document['run']['timings_s']['pictures']:.2f} s; the page loads "
                f"{len(names)} pictures, {size / 1e6:.2f} MB"
            )
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                results = []
                for run in range(args.runs):
                    with browser.new_context(viewport={"width": 1400, "height": 1000}) as context:
                        m = _load(context.new_page(), f"{url}/jobs/{job_id}")
                    _show(f"run {run + 1}", m)
                    results.append(m["load_ms"])
                with browser.new_context(viewport={"width": 1400, "height": 1000}) as context:
                    page = context.new_page()
                    _load(page, f"{url}/jobs/{job_id}")
                    _show("again (cached)", _load(page, f"{url}/jobs/{job_id}"))
                browser.close()
            print(
                f"cold loads: median {statistics.median(results):.0f} ms, "
                f"max {max(results):.0f} ms over {len(results)} runs (bar: 2000 ms)"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(data, ignore_errors=True)
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
