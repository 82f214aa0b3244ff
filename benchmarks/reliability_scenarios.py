"""The attacks of issue 12, replayed against a real deployment, with the bars measured.

Each scenario starts ``astrohunter api`` and one worker service per stage
(``astrohunter worker STAGE``) on the RabbitMQ and Redis of this machine (a
private vhost each; SQLite in a temporary folder), submits a background load
of small simulated searches, injects its fault, and waits for every job to
end. Throughout, a reader thread calls ``/health``, ``/status/{id}`` and
``/jobs`` and records the slowest answer, and a watcher samples the memory
(RSS) of every worker service. It prints, per scenario: jobs submitted,
final states, lost, duplicated, 5xx answers, time to recover, the slowest
read, the peak worker memory against the per-job budget, and whether every
service is still up at the end.

Scenarios:

- ``kill-between``: the API dies after saving a search and before the broker
  confirmed its message (its broker hangs: a black-hole port); a new API
  sends it again.
- ``crash-loop``: a job whose fast-detect worker is SIGKILLed in the same
  stage again and again.
- ``disk-alarm``: RabbitMQ's disk alarm raised (node-wide) during a burst of
  searches; recovery is the time from clearing it to the first 202.
- ``huge``: the request that OOM-killed a 24 GB machine (rate_max 36000"/h,
  faint search on), on a 1000 px field, within a 2 GB per-job budget.

Run from the repository root (RabbitMQ, Redis and ``rabbitmqctl`` here)::

    python benchmarks/reliability_scenarios.py              # all four
    python benchmarks/reliability_scenarios.py huge --load 10
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app.conftest import rabbitmq_vhost  # noqa: E402
from tests.reliability.harness import (  # noqa: E402
    QUEUES,
    Deployment,
    black_hole,
    disk_alarm,
    rss_bytes,
)

BUDGET_GB = 2.0
HUGE = {
    "ra": 222.2,
    "dec": 11.1,
    "source": "simulated",
    "radius_arcmin": 10,
    "rate_min": 0,
    "rate_max": 36000,
    "faint": True,
}


@dataclass
class Watch:
    """Slowest read, 5xx answers and worker memory while a scenario runs."""

    d: Deployment
    slowest_read_s: float = 0.0
    server_errors: int = 0
    peak_rss: dict[str, int] = field(default_factory=dict)
    job: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watch:
        self._threads = [threading.Thread(target=self._read), threading.Thread(target=self._rss)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _read(self) -> None:
        with httpx.Client(base_url=self.d.url, timeout=10) as http:
            while not self._stop.is_set():
                for path in ("/health", "/jobs", f"/status/{self.job}" if self.job else None):
                    if path is None:
                        continue
                    started = time.monotonic()
                    try:
                        r = http.get(path)
                        if r.status_code >= 500 and path != "/health":
                            self.server_errors += 1
                    except httpx.HTTPError:
                        continue  # the API is down on purpose in one scenario
                    self.slowest_read_s = max(self.slowest_read_s, time.monotonic() - started)
                time.sleep(0.1)

    def _rss(self) -> None:
        while not self._stop.is_set():
            for name, proc in list(self.d.procs.items()):
                if name.startswith("worker") and proc.poll() is None:
                    self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss_bytes(proc.pid))
            time.sleep(0.2)


def _body(rng: random.Random, **extra) -> dict:
    return {
        "ra": round(rng.uniform(0.0, 359.999), 5),
        "dec": round(rng.uniform(-70.0, 70.0), 5),
        "radius_arcmin": 1.0,
        "source": "simulated",
        "faint": False,
        "seed": rng.randrange(1, 2**31),
        **extra,
    }


def _post_and_forget(url: str, body: dict) -> None:
    """A POST whose API is killed before it answers (its error is the point)."""
    try:
        httpx.post(f"{url}/search", json=body, timeout=30)
    except httpx.HTTPError:
        pass


def _start_workers(d: Deployment) -> None:
    for stage in QUEUES:
        d.start_worker(f"worker-{stage}", stage, threads=1)


def kill_between(d: Deployment, rng: random.Random, load: list[str]) -> dict:
    d.env["ASTROHUNTER_REDISPATCH_AFTER"] = "3"
    d.kill("api")
    real = d.env.get("RABBITMQ_PORT", "5672")
    with black_hole() as port:
        d.env["RABBITMQ_PORT"] = str(port)
        d.start_api(healthy=False)
        before = {j.id for j in d.db_jobs()}
        threading.Thread(target=_post_and_forget, args=(d.url, _body(rng)), daemon=True).start()
        while not (new := {j.id for j in d.db_jobs()} - before):
            time.sleep(0.05)
        d.kill("api")
        d.env["RABBITMQ_PORT"] = real
    killed = time.monotonic()
    d.start_api()
    orphan = new.pop()
    d.wait_status(orphan, lambda s: s["state"] != "queued", timeout=120, interval=0.1)
    return {"jobs": [*load, orphan], "faults": 1, "recover_s": time.monotonic() - killed}


def crash_loop(d: Deployment, rng: random.Random, load: list[str]) -> dict:
    poison = d.submit(_body(rng, radius_arcmin=10.0))
    kills = 0
    started = time.monotonic()
    while d.status(poison)["state"] not in ("failed", "done"):
        runs = d.stage_runs(poison)["fast_detect"]
        if runs > kills:
            d.kill("worker-fast_detect")
            kills += 1
            d.start_worker("worker-fast_detect", "fast_detect", threads=1)
        time.sleep(0.05)
        if time.monotonic() - started > 600:
            break
    return {"jobs": [*load, poison], "faults": kills, "expect_failed": {poison}, "recover_s": 0.0}


def disk_alarm_burst(d: Deployment, rng: random.Random, load: list[str]) -> dict:
    refused = 0
    with disk_alarm():
        time.sleep(6)  # the API's probe sees it
        for _ in range(20):
            r = d.http.post("/search", json=_body(rng), timeout=30)
            refused += r.status_code == 503
    cleared = time.monotonic()
    while (r := d.http.post("/search", json=_body(rng), timeout=30)).status_code != 202:
        time.sleep(0.1)
    return {
        "jobs": [*load, r.json()["job_id"]],
        "faults": 1,
        "refused": refused,
        "recover_s": time.monotonic() - cleared,
    }


def huge(d: Deployment, rng: random.Random, load: list[str]) -> dict:
    job = d.submit(HUGE)
    return {"jobs": [*load, job], "faults": 0, "recover_s": 0.0}


SCENARIOS: dict[str, Callable[[Deployment, random.Random, list[str]], dict]] = {
    "kill-between": kill_between,
    "crash-loop": crash_loop,
    "disk-alarm": disk_alarm_burst,
    "huge": huge,
}


def run(name: str, *, load_jobs: int, rng: random.Random, timeout: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"astrohunter-{name}-"))
    env = {"ASTROHUNTER_JOB_MEMORY_GB": str(BUDGET_GB), "ASTROHUNTER_MAX_DELIVERIES": "3"}
    try:
        with rabbitmq_vhost() as (_, vhost), Deployment(workdir, vhost, env=env) as d:
            d.start_api()
            _start_workers(d)
            load = [d.submit(_body(rng)) for _ in range(load_jobs)]
            with Watch(d) as watch:
                watch.job = load[0]
                outcome = SCENARIOS[name](d, rng, load)
                final = d.wait_final(outcome["jobs"], timeout=timeout)
            alive = all(p.poll() is None for p in d.procs.values())
            jobs = d.db_jobs()
            duplicates = max(0, len(jobs) - len(outcome["jobs"])) + sum(
                d.duplicates(j) for j in outcome["jobs"]
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    expect_failed = outcome.get("expect_failed", set())
    states = Counter(s["state"] for s in final.values())
    lost = sum(
        1
        for j, s in final.items()
        if (s["state"] != "done" and j not in expect_failed)
        or (j in expect_failed and s["state"] != "failed")
    )
    return {
        "scenario": name,
        "submitted": len(outcome["jobs"]) + outcome.get("refused", 0),
        "states": dict(states),
        "refused_503": outcome.get("refused", 0),
        "lost": lost,
        "duplicated": duplicates,
        "server_errors": watch.server_errors,
        "faults": outcome["faults"],
        "recover_s": round(outcome["recover_s"], 1),
        "slowest_read_s": round(watch.slowest_read_s, 2),
        "peak_worker_gb": round(max(watch.peak_rss.values(), default=0) / 1e9, 2),
        "services_up": alive,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (all)")
    parser.add_argument("--load", type=int, default=10, help="background searches (10)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")
    rng = random.Random(args.seed)
    rows = [
        run(name, load_jobs=args.load, rng=rng, timeout=args.timeout)
        for name in (args.scenarios or list(SCENARIOS))
    ]
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    bad = [
        r["scenario"]
        for r in rows
        if r["lost"]
        or r["duplicated"]
        or not r["services_up"]
        or r["slowest_read_s"] > 1.0
        or r["peak_worker_gb"] > BUDGET_GB + 1.0
    ]
    print(
        f"per-job memory budget {BUDGET_GB} GB (+1 GB for the worker process itself); "
        "bars: 0 lost, 0 duplicated, services up, every read < 1 s"
    )
    print("all bars met" if not bad else f"bars missed in: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
