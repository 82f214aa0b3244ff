"""Where a job's time goes in services mode: seconds per service stage, and the work file.

Starts ``astrohunter api`` and one worker per stage (``download``, ``data``,
``fast_detect``, ``detailed_detect``, one process and one thread each)
against the RabbitMQ and Redis on 127.0.0.1 (a private vhost when
``rabbitmqctl`` is available), submits simulated searches with the faint
search on (``--radius 20.5`` gives the simulator's largest field, 2048^2 x 8
frames) one after the other (``--jobs``, different seeds), and prints for
each, when it is done: the seconds of each service stage from
``GET /status`` and the detailed detector's share of the compute time
(``fast_detect + detailed_detect``, and of all four stages), the engine's
seconds and device per stage from the ``run`` block, and the size of the
work file next to the frames'. The first job meets fresh workers (imports,
compiled kernels loaded from numba's cache on first call); later ones meet
them warm, as a long-running deployment does.

Run from the repository root with the venv active::

    python benchmarks/stage_split.py            # 2048^2, faint search on
    python benchmarks/stage_split.py --radius 5 --no-faint
    python benchmarks/stage_split.py --jobs 3   # fresh workers, then warm

A measurement, not a test: it exits 1 only when the job does not finish.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from api_load import COMMAND, SERVICE_ENV, _free_port, _rabbitmqctl, machine

WORKERS = ("download", "data", "fast_detect", "detailed_detect")
STAGES = ("downloading", "ingesting", "fast_detect", "detailed_detect")


def _start(procs: list, workdir: Path, env: dict, name: str, *args: str) -> None:
    log = (workdir / f"{name}.log").open("w")
    procs.append(
        subprocess.Popen(
            [*COMMAND, *args],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    )


def _stop(procs: list) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _wait(url: str, job_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/status/{job_id}", timeout=10).json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(1.0)
    raise TimeoutError(f"job {job_id} did not finish within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--radius", type=float, default=20.5, help="arcmin (20.5: 2048^2)")
    parser.add_argument("--seed", type=int, default=1, help="first job's seed (then +1, ...)")
    parser.add_argument("--jobs", type=int, default=1, help="searches, one after the other")
    parser.add_argument("--no-faint", action="store_true", help="faint search off")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="astrohunter-split-"))
    vhost = f"astrohunter-split-{uuid.uuid4().hex[:12]}"
    own_vhost = bool(shutil.which("rabbitmqctl")) and _rabbitmqctl("add_vhost", vhost)
    if own_vhost:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}
    env.update(
        ASTROHUNTER_BROKER="rabbitmq",
        RABBITMQ_HOST="127.0.0.1",
        RABBITMQ_VHOST=vhost if own_vhost else "/",
        REDIS_HOST="127.0.0.1",
        DATA_DIR=str(workdir / "data"),
        DATABASE_URL=f"sqlite:///{workdir / 'astrohunter.db'}",
        MIN_DISK_SPACE_GB="0",
    )
    print(f"machine: {machine()}; load average {os.getloadavg()}")
    print(f"services: api + one worker per stage (1 process x 1 thread); work folder {workdir}")
    url = f"http://127.0.0.1:{_free_port()}"
    procs: list[subprocess.Popen] = []
    try:
        _start(procs, workdir, env, "api", "api", "--port", url.rsplit(":", 1)[1])
        for queue in WORKERS:
            _start(
                procs,
                workdir,
                env,
                f"worker-{queue}",
                "worker",
                queue,
                "--processes",
                "1",
                "--threads",
                "1",
            )
        for _ in range(240):
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        for k in range(args.jobs):
            body = {
                "ra": 150.0, "dec": 2.0, "radius_arcmin": args.radius, "seed": args.seed + k,
                "source": "simulated", "faint": not args.no_faint,
            }  # fmt: skip
            job_id = httpx.post(f"{url}/search", json=body, timeout=30).raise_for_status().json()
            job_id = job_id["job_id"]
            status = _wait(url, job_id, args.timeout)
            workers = "fresh workers" if k == 0 else "warm workers"
            print(
                f"job {k + 1} ({workers}) {job_id}: {status['state']} {status.get('error') or ''}"
            )
            if status["state"] != "done":
                return 1
            run = httpx.get(f"{url}/jobs/{job_id}/tracks", timeout=30).json()["run"]
            _report(status, run, workdir / "data", job_id)
        return 0
    finally:
        _stop(procs)
        if own_vhost:
            _rabbitmqctl("delete_vhost", vhost)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _report(status: dict, run: dict, data: Path, job_id: str) -> None:
    timings = status["timings_s"]
    print("service stage seconds: " + ", ".join(f"{s} {timings.get(s, 0):.2f}" for s in STAGES))
    detect = timings["fast_detect"] + timings["detailed_detect"]
    total = sum(timings.get(s, 0.0) for s in STAGES)
    print(
        f"detailed_detect share: {timings['detailed_detect'] / detect:.1%} of fast+detailed "
        f"({detect:.2f} s), {timings['detailed_detect'] / total:.1%} of all stages ({total:.2f} s)"
    )
    devices = run.get("devices") or {}
    print(
        "engine seconds (device): "
        + ", ".join(f"{k} {v:.2f} ({devices.get(k, '-')})" for k, v in run["timings_s"].items())
    )
    frames = sum(p.stat().st_size for p in (data / "jobs" / job_id / "raw").glob("*.fits"))
    counts = status["counts"]
    work = counts.get("work_file_bytes", 0)
    print(
        f"frames: {counts.get('frames')} files, {frames / 1e6:.1f} MB; work file {work / 1e6:.1f} MB "
        f"({work / max(frames, 1):.1%} of the frames); candidates {counts.get('candidates')}, "
        f"tracklets {counts.get('tracklets')}, faint seeds {counts.get('faint_seeds')}, "
        f"tracks {counts.get('tracks')}"
    )
    print("counts: " + json.dumps(counts))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
