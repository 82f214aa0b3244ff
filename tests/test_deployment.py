"""The deployment files: docker-compose.yml, docker-compose.gpu.yml, infra/Dockerfile*, .dockerignore.

No Docker engine is needed. The structural tests check, by hand, what
``docker compose config`` and ``docker build`` would refuse before running
anything (images or builds, build files on disk, ``depends_on`` targets,
declared volumes, port syntax, healthchecks), and then what only this
project knows: every service's command parses with the real ``astrohunter``
parser, each worker serves the queue its actor is declared on, the
environment validates as :class:`app.config.Settings`, and the images
install the pinned package. One test starts a real worker against the
RabbitMQ on 127.0.0.1:5672 (skipped without one, failed under
``ASTROHUNTER_STRICT=1``).
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from app.cli import build_parser, worker_command
from app.config import Settings
from tests.conftest import ROOT, need

COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "docker-compose.gpu.yml"
DOCKERFILE = ROOT / "infra" / "Dockerfile"
DOCKERFILE_GPU = ROOT / "infra" / "Dockerfile.gpu"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: Every service of the deployment, and the ``astrohunter`` command of each app service.
APP_COMMANDS = {
    "api-gateway": ("api",),
    "downloader": ("worker", "download"),
    "data-service": ("worker", "data"),
    "fast-detector": ("worker", "fast_detect"),
    "detailed-detector": ("worker", "detailed_detect"),
    "cleanup": ("cleanup",),
}
SERVICES = {"rabbitmq", "redis", *APP_COMMANDS}
WORKERS = [name for name, cmd in APP_COMMANDS.items() if cmd[0] == "worker"]
DEFAULTS = ("DATA_RETENTION_DAYS", "MIN_DISK_SPACE_GB", "CLEANUP_SCHEDULE_HOURS")

RABBITMQ = {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest"}
WAIT_S = 30.0


# --------------------------------------------------------------------------- helpers


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name}: not a YAML mapping"
    return data


def _merge(base, override):
    """Compose's merge of an override file: mappings merge key by key, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set: the defaults (deterministic here)."""
    return _VAR.sub(lambda m: m.group("default") or "", value).replace("$$", "$")


def _app_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment should be a mapping (the x-astrohunter-env anchor)"
    return {key: _interpolate(str(value)) for key, value in env.items()}


def _parse_command(service: str, command: list[str]):
    assert isinstance(command, list), f"{service}: command should be a list (exec form)"
    assert command[0] == "astrohunter", f"{service}: runs {command[0]!r}, not astrohunter"
    try:
        return build_parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"{service}: `{shlex.join(command)}` is not a valid astrohunter command")


def _instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def _copy_sources(instructions) -> list[tuple[int, str]]:
    """(instruction index, source) of every COPY from the build context."""
    out = []
    for i, (word, args) in enumerate(instructions):
        if word == "COPY" and "--from" not in args:
            parts = [p for p in args.split() if not p.startswith("--")]
            out.extend((i, src.rstrip("/")) for src in parts[:-1])
    return out


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Is ``path`` (relative to the context) left out by .dockerignore?"""

    def regex(pattern: str) -> re.Pattern:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + r"(?:/.*)?\Z")  # a folder's pattern covers what is inside

    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        if regex(body).match(path):
            excluded = not negate
    return excluded


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


# --------------------------------------------------------------------------- compose structure


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load(COMPOSE)


@pytest.fixture(scope="module")
def gpu_compose(compose) -> dict:
    return _merge(compose, _load(COMPOSE_GPU))


def test_compose_names_every_service_and_no_version_key(compose):
    assert "version" not in compose, "the compose spec has no `version:` key (obsolete)"
    assert set(compose["services"]) == SERVICES
    assert set(_app_services(compose)) == set(APP_COMMANDS)
    unknown = [k for k in compose if k not in {"services", "volumes", "networks"}]
    assert all(k.startswith("x-") for k in unknown), f"unknown top-level keys {unknown}"


@pytest.mark.parametrize("which", ["cpu", "gpu"])
def test_every_service_has_an_image_or_a_build_on_disk(compose, gpu_compose, which):
    services = (compose if which == "cpu" else gpu_compose)["services"]
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, f"{name}: neither image nor build"
        if "build" in svc:
            build = svc["build"]
            build = {"context": build} if isinstance(build, str) else build
            context = ROOT / build.get("context", ".")
            assert context.is_dir(), f"{name}: build context {context} is missing"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        assert svc.get("restart") == "unless-stopped", f"{name}: restart policy"


def test_depends_on_names_defined_services_that_have_healthchecks(compose):
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        deps = {target: {} for target in deps} if isinstance(deps, list) else deps
        for target, spec in deps.items():
            assert target in services, f"{name} depends on undefined service {target!r}"
            assert target != name, f"{name} depends on itself"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
                )
    for name in APP_COMMANDS:
        deps = services[name]["depends_on"]
        for infra in ("rabbitmq", "redis"):
            assert deps[infra]["condition"] == "service_healthy", f"{name} -> {infra}"


def test_named_volumes_are_declared_and_shared_at_data(compose):
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source, _, target = (volume if isinstance(volume, str) else "").partition(":")
            if isinstance(volume, dict):
                source, target = volume.get("source", ""), volume["target"]
            assert target.startswith("/"), f"{name}: volume target {target!r} not absolute"
            if source and not source.startswith(("/", ".", "~", "$")):
                assert source in declared, f"{name}: named volume {source!r} not declared"
    for name in APP_COMMANDS:
        assert "astrohunter-data:/data" in compose["services"][name]["volumes"], name


_PORT = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
    r"(?:(?P<host>\d+(?:-\d+)?):)?(?P<container>\d+(?:-\d+)?)(?:/(?:tcp|udp|sctp))?$"
)


def test_ports_are_well_formed_and_not_published_twice(compose):
    published = {}
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert isinstance(port, str), (
                f"{name}: quote port {port!r} (YAML reads 56:78 as base 60)"
            )
            m = _PORT.match(port)
            assert m, f"{name}: malformed port {port!r}"
            for part in filter(None, (m["host"], m["container"])):
                assert all(1 <= int(p) <= 65535 for p in part.split("-")), f"{name}: {port!r}"
            if m["host"]:
                key = (m["ip"] or "0.0.0.0", m["host"])
                assert key not in published, f"{name} and {published.get(key)} both publish {key}"
                published[key] = name
    containers = {
        name: [p.split(":")[-1] for p in svc.get("ports", [])]
        for name, svc in compose["services"].items()
    }
    assert {"5672", "15672"} <= set(containers["rabbitmq"])
    assert containers["api-gateway"] == ["8000"]


_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$")


def test_healthchecks_on_rabbitmq_redis_and_the_api(compose):
    services = compose["services"]
    expected = {
        "rabbitmq": ["rabbitmq-diagnostics", "-q", "ping"],
        "redis": ["redis-cli", "ping"],
        "api-gateway": ["python", "-c"],
    }
    for name, probe in expected.items():
        check = services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, f"{name}: {test}"
        assert test[1 : 1 + len(probe)] == probe, f"{name}: {test}"
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert _DURATION.match(str(check[key])), f"{name}: {key} {check[key]!r}"
        assert int(check.get("retries", 3)) >= 1


def test_api_healthcheck_probes_the_health_route_on_the_api_port(compose):
    from app.api.routes.health import router

    api = compose["services"]["api-gateway"]
    args = _parse_command("api-gateway", api["command"])
    assert args.host == "0.0.0.0", "the API must listen on every interface of its container"
    code = api["healthcheck"]["test"][-1]
    compile(code, "healthcheck", "exec")  # a syntax error would keep the service unhealthy
    assert "urllib.request" in code, "python:3.11-slim has no curl"
    assert f"http://127.0.0.1:{args.port}/health" in code
    assert any(route.path == "/health" for route in router.routes)
    assert api["ports"] == [f"{args.port}:{args.port}"]


# --------------------------------------------------------------------------- environment


def test_app_services_share_the_environment_and_it_validates_as_settings(compose):
    envs = {name: _env(svc) for name, svc in _app_services(compose).items()}
    env = envs["api-gateway"]
    assert all(e == env for e in envs.values()), "app services should share x-astrohunter-env"
    assert all(isinstance(v, str) for v in compose["x-astrohunter-env"].values()), (
        "quote environment values: YAML would read some (yes, 1.0) as other types"
    )
    settings = Settings(**env)
    assert settings.broker_kind == "rabbitmq"
    assert str(settings.data_dir) == "/data"
    assert env["DATABASE_URL"] == "sqlite:////data/astrohunter.db" == settings.db_url
    assert settings.redis_host == "redis" and settings.redis_host in compose["services"]
    assert settings.rabbitmq_host == "rabbitmq" and settings.rabbitmq_host in compose["services"]
    assert (settings.rabbitmq_port, settings.redis_port) == (5672, 6379)
    assert settings.device == "cpu"
    defaults = {f.alias: f.default for f in Settings.model_fields.values()}
    for name in DEFAULTS:
        assert float(env[name]) == defaults[name], f"{name} should keep config.py's default"
    assert (float(env["DATA_RETENTION_DAYS"]), float(env["MIN_DISK_SPACE_GB"])) == (7, 10)
    assert float(env["CLEANUP_SCHEDULE_HOURS"]) == 24
    # The app logs in to RabbitMQ with the user the rabbitmq service creates.
    rabbit = _env(compose["services"]["rabbitmq"])
    assert rabbit["RABBITMQ_DEFAULT_USER"] == settings.rabbitmq_user
    assert rabbit["RABBITMQ_DEFAULT_PASS"] == settings.rabbitmq_password


# --------------------------------------------------------------------------- commands and queues


@pytest.mark.parametrize("service", list(APP_COMMANDS))
def test_app_service_runs_a_real_astrohunter_command(compose, service):
    args = _parse_command(service, compose["services"][service]["command"])
    expected = APP_COMMANDS[service]
    assert args.command == expected[0]
    if args.command == "worker":
        assert args.stage == expected[1]
        assert args.processes >= 1 and args.threads >= 1
    if args.command == "cleanup":
        assert not (args.once or args.dry_run), "the service runs on its schedule, not once"


@pytest.mark.parametrize("service", WORKERS)
def test_worker_serves_the_queue_its_actor_is_declared_on(compose, service):
    from app.broker import QUEUES, broker

    args = _parse_command(service, compose["services"][service]["command"])
    command = worker_command(args.stage, processes=args.processes, threads=args.threads)
    assert command[1:3] == ["-m", "dramatiq"], command
    modules = command[3 : command.index("--processes")]
    queues = command[command.index("--queues") + 1 :]
    assert command[command.index("--processes") + 1] == str(args.processes)
    assert command[command.index("--threads") + 1] == str(args.threads)
    assert len(modules) == 1 and len(queues) == 1, command
    module, queue = modules[0], queues[0]
    assert queue == args.stage and queue in QUEUES
    importlib.import_module(module)
    assert queue in broker.get_declared_queues()
    actors = [a for a in broker.actors.values() if a.queue_name == queue]
    assert actors, f"no actor is declared on queue {queue!r}"
    assert any(a.fn.__module__ == module for a in actors), (
        f"{module} declares no actor on {queue!r}: the worker would consume a queue nobody fills"
    )


def test_every_queue_has_a_worker_service(compose):
    from app.broker import QUEUES

    served = {_parse_command(s, compose["services"][s]["command"]).stage for s in WORKERS}
    assert served == set(QUEUES), "a queue without a worker service would never drain"


# --------------------------------------------------------------------------- GPU override


def test_gpu_override_builds_the_fast_detector_for_the_gpu(compose, gpu_compose):
    override = _load(COMPOSE_GPU)
    assert "version" not in override
    assert set(override["services"]) <= set(compose["services"]), "override of an unknown service"
    fast = gpu_compose["services"]["fast-detector"]
    assert fast["build"]["dockerfile"] == "infra/Dockerfile.gpu"
    assert (ROOT / fast["build"]["context"] / fast["build"]["dockerfile"]).is_file()
    env = _env(fast)
    assert env["ASTROHUNTER_DEVICE"] == "gpu"
    assert Settings(**env).device == "gpu"
    assert {k: v for k, v in env.items() if k != "ASTROHUNTER_DEVICE"} == {
        k: v
        for k, v in _env(compose["services"]["fast-detector"]).items()
        if k != "ASTROHUNTER_DEVICE"
    }, "the override should change only the device"
    devices = fast["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia"
        and "gpu" in d.get("capabilities", [])
        and (d.get("count") in (1, "all") or d.get("device_ids"))
        for d in devices
    ), devices
    assert fast["command"] == compose["services"]["fast-detector"]["command"]
    for name in set(compose["services"]) - {"fast-detector"}:
        assert gpu_compose["services"][name] == compose["services"][name], name


# --------------------------------------------------------------------------- Dockerfiles


def _packages_found_by_setuptools() -> set[str]:
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in include)
    }


# Python of each base image: what `FROM` gives, to check against requires-python.
_BASE_PYTHON = {
    r"python:(\d+\.\d+)(?:[.-][\w.-]*)?": None,  # the tag is the version
    r"nvidia/cuda:[\w.-]*-ubuntu24\.04": "3.12",
    r"nvidia/cuda:[\w.-]*-ubuntu22\.04": "3.10",
}


@pytest.mark.parametrize(("path", "target"), [(DOCKERFILE, "."), (DOCKERFILE_GPU, ".[gpu]")])
def test_dockerfile_installs_the_pinned_package(path, target):
    instructions = _instructions(path)
    base = next(args for word, args in instructions if word == "FROM").split()[0]
    python = None
    for pattern, version in _BASE_PYTHON.items():
        if m := re.fullmatch(pattern, base):
            python = version or m.group(1)
    assert python, f"{path.name}: unknown base image {base}; add its Python to _BASE_PYTHON"
    assert python in SpecifierSet(PYPROJECT["project"]["requires-python"]), (
        f"{path.name}: {base} has Python {python}, the package needs "
        f"{PYPROJECT['project']['requires-python']}"
    )
    if path == DOCKERFILE:
        assert base == "python:3.11-slim"

    installs = [
        (i, args)
        for i, (w, args) in enumerate(instructions)
        if w == "RUN" and "pip install" in args
    ]
    assert installs, f"{path.name}: no pip install"
    for _, args in installs:
        for command in args.split("&&"):
            if "pip install" in command:
                assert "-c constraints.txt" in command, f"{path.name}: unpinned `{command.strip()}`"
                assert "[test]" not in command and "-e " not in command, f"{path.name}: {command}"
    package = [
        i
        for i, args in installs
        if re.search(rf"pip install -c constraints\.txt \"?{re.escape(target)}\"?(\s|$)", args)
    ]
    assert package, f"{path.name}: no `pip install -c constraints.txt {target}`"

    copied = _copy_sources(instructions)
    for _, src in copied:
        assert (ROOT / src).exists(), f"{path.name}: COPY {src} does not exist"
    before = {src for i, src in copied if i < package[0]}
    needed = {"pyproject.toml", "constraints.txt", PYPROJECT["project"]["readme"], "LICENSE"}
    needed |= _packages_found_by_setuptools()
    assert {"app", "detectors"} <= needed
    assert needed <= before, f"{path.name}: not copied before the install: {needed - before}"

    env = " ".join(args for w, args in instructions if w == "ENV")
    assert "DATA_DIR=/data" in env
    users = [args for w, args in instructions if w == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, f"{path.name}: runs as root"


def test_both_images_run_as_the_same_user():
    """The CPU and GPU images write the same /data volume."""

    def uid(path: Path) -> tuple[str, str]:
        text = " ".join(args for _, args in _instructions(path))
        user = [args for w, args in _instructions(path) if w == "USER"][-1]
        m = re.search(r"useradd .*--uid (\d+)", text)
        assert m, f"{path.name}: no useradd --uid"
        return m.group(1), user

    assert uid(DOCKERFILE) == uid(DOCKERFILE_GPU)
    assert uid(DOCKERFILE)[1].split(":")[0] == uid(DOCKERFILE)[0]


def test_gpu_image_installs_cupy():
    text = " ".join(args for _, args in _instructions(DOCKERFILE_GPU))
    assert "cupy-cuda12x" in PYPROJECT["project"]["optional-dependencies"]["gpu"][0]
    assert re.search(r"pip install -c constraints\.txt \"\.\[gpu\]\"", text)
    assert "import cupy" in text


def test_dockerignore_keeps_the_build_inputs_and_leaves_out_the_rest():
    patterns = _dockerignore()
    for path in (DOCKERFILE, DOCKERFILE_GPU):
        for _, src in _copy_sources(_instructions(path)):
            assert not _dockerignore_excludes(src, patterns), f".dockerignore drops {src}"
            for file in (ROOT / src).rglob("*.py") if (ROOT / src).is_dir() else []:
                rel = file.relative_to(ROOT).as_posix()
                assert not _dockerignore_excludes(rel, patterns), f".dockerignore drops {rel}"
    for left_out in (
        ".git",
        ".venv",
        "data",
        "data/jobs/x/raw/f.fits",
        "out",
        "benchmarks/results",
        "app/__pycache__/cli.cpython-311.pyc",
        "detectors/__pycache__",
    ):
        assert _dockerignore_excludes(left_out, patterns), f".dockerignore keeps {left_out}"


# --------------------------------------------------------------------------- a real worker


def _rabbitmq_parameters():
    import pika

    return pika.ConnectionParameters(
        host=RABBITMQ["host"],
        port=RABBITMQ["port"],
        credentials=pika.PlainCredentials(RABBITMQ["user"], RABBITMQ["password"]),
        socket_timeout=2,
        blocked_connection_timeout=5,
        connection_attempts=1,
    )


def _rabbitmq_reachable() -> bool:
    try:
        import pika

        pika.BlockingConnection(_rabbitmq_parameters()).close()
    except Exception:  # not installed, refused, bad login: all mean "not here"
        return False
    return True


def _consumers(connection, queue: str) -> int | None:
    """Consumers on ``queue`` now, or None when the queue does not exist."""
    import pika

    channel = connection.channel()
    try:
        return channel.queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:  # 404: not declared (yet)
        return None
    finally:
        if channel.is_open:
            channel.close()


def _wait_for(predicate, what: str, proc, log: Path, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"worker exited ({proc.returncode}) before {what}:\n{log.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"no {what} after {timeout:.0f} s:\n{log.read_text() if log.exists() else ''}")


def _astrohunter() -> list[str]:
    script = shutil.which("astrohunter", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "app.cli"]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a worker's graceful stop), then SIGKILL to its process group if it hangs."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        # The group this test started (start_new_session): the worker and its forks.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def test_fast_detect_worker_consumes_only_its_queue_on_real_rabbitmq(tmp_path):
    need(_rabbitmq_reachable(), "RabbitMQ on 127.0.0.1:5672 (guest/guest)")
    import pika

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RABBITMQ_", "REDIS_", "ASTROHUNTER_", "DATABASE_URL", "DATA_DIR"))
    }
    env.update(
        RABBITMQ_HOST=RABBITMQ["host"],
        RABBITMQ_PORT=str(RABBITMQ["port"]),
        RABBITMQ_USER=RABBITMQ["user"],
        RABBITMQ_PASSWORD=RABBITMQ["password"],
        ASTROHUNTER_BROKER="rabbitmq",
        DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'astrohunter.db'}",
    )
    command = [*_astrohunter(), "worker", "fast_detect", "--processes", "1", "--threads", "1"]
    log = tmp_path / "worker.log"
    connection = pika.BlockingConnection(_rabbitmq_parameters())
    try:
        # Another worker may already be on this broker: count relative to now.
        base_fast = _consumers(connection, "fast_detect") or 0
        base_detailed = _consumers(connection, "detailed_detect") or 0
        with log.open("w") as out:
            proc = subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            _wait_for(
                lambda: (_consumers(connection, "fast_detect") or 0) > base_fast,
                "consumer on the fast_detect queue",
                proc,
                log,
            )
            time.sleep(0.5)  # every consumer of one worker starts together
            assert proc.poll() is None, log.read_text()
            assert (_consumers(connection, "detailed_detect") or 0) == base_detailed, (
                "the fast_detect worker also consumes detailed_detect"
            )
        finally:
            _stop(proc)
        _wait_for(
            lambda: (_consumers(connection, "fast_detect") or 0) <= base_fast,
            "release of the fast_detect consumer after SIGTERM",
            None,
            log,
            timeout=15,
        )
    finally:
        connection.close()


# --------------------------------------------------------------------------- systemd units

SYSTEMD = ROOT / "infra" / "systemd"


def _unit(path: Path) -> dict[str, dict[str, str]]:
    """A systemd unit file as {section: {key: value}} (comments and blank lines dropped)."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line!r} outside a section"
        current[key.strip()] = value.strip()
    return sections


@pytest.mark.parametrize(
    ("name", "instances"),
    [
        ("astrohunter-worker@.service", ["download", "data", "fast_detect", "detailed_detect"]),
        ("astrohunter-api.service", [""]),
        ("astrohunter-cleanup.service", [""]),
    ],
)
def test_systemd_units_restart_their_service_and_run_real_commands(name, instances):
    """Without compose, systemd supervises: a worker that lost a child comes back."""
    unit = _unit(SYSTEMD / name)
    service = unit["Service"]
    assert service["Restart"] == "always" and float(service["RestartSec"]) > 0
    assert service["EnvironmentFile"] == "/etc/astrohunter.env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    program, *args = shlex.split(service["ExecStart"])
    assert program.endswith("/astrohunter")
    for instance in instances:
        build_parser().parse_args([a.replace("%i", instance) for a in args])


def test_systemd_environment_file_validates_as_settings():
    values = dict(
        line.split("=", 1)
        for line in (SYSTEMD / "astrohunter.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    settings = Settings(**values)
    assert settings.broker_kind == "rabbitmq" and settings.job_memory_gb > 0
    for name in DEFAULTS:
        assert name in values
