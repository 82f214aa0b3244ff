"""Reliability under load: many searches at once, one worker service per stage, workers killed.

Starts ``astrohunter api`` and a worker service for each of the four stages
(``astrohunter worker STAGE --processes P --threads T``) against the
RabbitMQ and Redis on 127.0.0.1 (a private vhost; SQLite in a temporary
folder unless ``--database-url``), submits ``--jobs`` searches of tiny
simulated fields (distinct positions and seeds) at once, and while they run
SIGKILLs a randomly chosen stage service ``--kills`` times, ``--kill-every``
seconds apart, starting it again at once. When every job has ended it audits
the database and prints:

- throughput (jobs done per minute of wall time) and the end-to-end time per
  job (p50, p95, max: from submission to its final state, database clock);
- faults injected (worker kills), jobs lost (submitted but not done), and
  duplicates (job ids returned twice, job rows beyond those submitted,
  tracks or observations stored twice), and the stage runs repeated because
  a killed worker's message came back (expected with kills; not duplicates).

It exits 1 if a job was lost or anything was duplicated. Run from the
repository root with the venv active (RabbitMQ, Redis and ``rabbitmqctl``
on this machine)::

    python benchmarks/reliability_load.py                   # 100 jobs, 2 kills
    python benchmarks/reliability_load.py --jobs 20 --kills 0
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.conftest import rabbitmq_vhost  # noqa: E402
from tests.reliability.harness import QUEUES, Deployment, run_load  # noqa: E402


def machine() -> str:
    model = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} usable cores, {model}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="searches submitted at once (100)")
    parser.add_argument("--processes", type=int, default=1, help="processes per stage (1)")
    parser.add_argument("--threads", type=int, default=2, help="threads per process (2)")
    parser.add_argument("--radius", type=float, default=1.0, help="field half-width, arcmin (1)")
    parser.add_argument("--kills", type=int, default=2, help="stage services SIGKILLed (2)")
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds between kills")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--seed", type=int, help="random seed (positions, kills)")
    parser.add_argument("--database-url", help="default: SQLite in the work folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    bodies = [
        {
            "ra": round(rng.uniform(0.0, 359.999), 5),
            "dec": round(rng.uniform(-70.0, 70.0), 5),
            "radius_arcmin": args.radius,
            "source": "simulated",
            "faint": False,
            "seed": rng.randrange(1, 2**31),
        }
        for _ in range(args.jobs)
    ]
    workdir = Path(tempfile.mkdtemp(prefix="astrohunter-reliability-"))
    print(f"machine: {machine()}")
    print(
        f"services: api + worker STAGE --processes {args.processes} --threads {args.threads} "
        f"for each of {', '.join(QUEUES)}; database "
        f"{(args.database_url or 'sqlite').split('://')[0]}; work folder {workdir}"
    )
    kills: list[str] = []
    try:
        with (
            rabbitmq_vhost() as (_, vhost),
            Deployment(workdir, vhost, database_url=args.database_url) as d,
        ):
            d.start_api()
            for stage in QUEUES:
                d.start_worker(stage, stage, processes=args.processes, threads=args.threads)

            def inject(seconds: float) -> int:
                if len(kills) >= args.kills or seconds < args.kill_every * (len(kills) + 1):
                    return 0
                stage = rng.choice(QUEUES)
                d.kill(stage)
                d.start_worker(stage, stage, processes=args.processes, threads=args.threads)
                kills.append(f"{stage} at {seconds:.1f} s")
                return 1

            print(f"submitting {args.jobs} searches (radius {args.radius}', faint off) at once")
            run = run_load(d, bodies, timeout=args.timeout, inject=inject)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    states = Counter(s["state"] for s in run.final.values())
    duplicates = run.duplicate_ids + run.extra_jobs + run.duplicates
    e2e = sorted(run.e2e_s.values())
    print(f"\njobs: {run.submitted} submitted, {len(run.rejected)} refused; final {dict(states)}")
    for reason in run.rejected[:5]:
        print(f"  refused: {reason}")
    for job_id, status in run.final.items():
        if status["state"] != "done":
            print(f"  {job_id} {status['state']}: {status.get('error')}")
    print(f"wall time: {run.wall_s:.1f} s; throughput: {run.done / run.wall_s * 60:.1f} jobs/min")
    if e2e:
        print(
            f"end-to-end per job (s): p50 {run.percentile(50):.2f}  p95 {run.percentile(95):.2f}"
            f"  max {e2e[-1]:.2f}"
        )
    print(f"faults injected: {run.faults} worker kill(s) ({'; '.join(kills) or 'none'})")
    print(f"jobs lost: {run.lost}")
    print(
        f"duplicates: {duplicates} (job ids returned twice {run.duplicate_ids}, extra job rows "
        f"{run.extra_jobs}, tracks/observations stored twice {run.duplicates})"
    )
    print(f"stage runs repeated after a kill (redeliveries): {run.stage_reruns}")
    return 0 if run.lost == 0 and duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
