"""The deployment files: compose.yaml, the Dockerfile, deploy/ (monitor.toml, haproxy.cfg, k8s,
prometheus).

No container runs on these machines. compose.yaml is resolved by ``docker-compose config``
(Debian's ``docker-compose``) and its result read back; the alerts are checked and unit-tested by
``promtool`` (Debian's ``prometheus``); the Dockerfile and the Kubernetes manifests are read. The
checks tie each file to the code it deploys — every backend setting, the health endpoints, the
metric names, the TUI's authentication, the monitor's config parser — so that a rename there
fails here. A missing ``docker-compose`` or ``promtool`` fails these tests
(scripts/ensure-system-deps installs both).

The fleet (ARCHITECTURE §11): compose runs two backend replicas behind one published port and
two monitors on one store; Kubernetes gains a headless Service and a monitor Deployment of two.
Both monitor configs name the replicas by DNS, and the names are tied here to the services that
answer them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from backend.auth.keys import PRIVATE_KEY_FILE
from backend.observability import Metrics, render
from backend.settings import PREFIX, Settings
from monitor.config import dns_replica, parse_config
from monitor.leadership import MONITOR_ID_ENV
from monitor.tui.serve import PASSWORD_ENV, check_bind, credentials_from
from shared.resilience import CircuitBreakerConfig, PolicyRegistry
from shared.resilience.health_report import CheckResult
from shared.resilience.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MONITOR_TOML = ROOT / "deploy" / "monitor.toml"
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
K8S_BACKEND = ROOT / "deploy" / "k8s" / "backend.yaml"
K8S_CONFIGMAP = ROOT / "deploy" / "k8s" / "configmap.yaml"
K8S_MONITOR = ROOT / "deploy" / "k8s" / "monitor.yaml"
K8S_README = ROOT / "deploy" / "k8s" / "README.md"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"

INSTALL_HINT = "scripts/ensure-system-deps installs it (Debian: apt-get install {package})"

# The variables compose.yaml requires (${VAR:?...}); dummies, never real secrets.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD": "dummy-postgres-password",
    "MONITOR_DB_PASSWORD": "dummy-monitor-db-password",
    "MINIO_ROOT_PASSWORD": "dummy-minio-root-password",
    "BACKEND_S3_SECRET_KEY": "dummy-backend-s3-secret",
    "QUESTCITY_TUI_PASSWORD": "dummy-tui-password",
}
# Names of variables that hold secrets (QUESTCITY_ACCESS_TOKEN_TTL and _TOKEN_ISSUER do not).
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|_TOKEN)$")
# ${NAME:?message} (required) or ${NAME:-} / ${NAME-} (optional, empty by default)
FROM_ENVIRONMENT = re.compile(r"\$\{[A-Z][A-Z0-9_]*(:\?[^}]*|:?-)\}")

BACKEND_SERVICES = ("backend", "migrate")
USER_FACING_PORTS = {"api": 8000, "tui": 8081, "statuspage": 8082}
PER_PROCESS_SETTINGS = {PREFIX + "INSTANCE_ID"}
"""Settings each process must pick for itself: never one value for every replica."""
POSTGRES_MAX_CONNECTIONS = 100  # the default of the postgres images and of most servers
HEALTH_LIVE = "/api/v1/health/live"
HEALTH_READY = "/api/v1/health/ready"
MONITOR_TOML_IN_CONTAINER = "/etc/questcity/monitor.toml"


# -- helpers ----------------------------------------------------------------------------------


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: {INSTALL_HINT.format(package=package)}", pytrace=False)
    return path


def compose_command() -> list[str]:
    """``docker-compose`` (Debian's package, v1), else the ``docker compose`` plugin (v2)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker is not None:
        plugin = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if plugin.returncode == 0:
            return [docker, "compose"]
    pytest.fail(
        f"docker-compose is missing: {INSTALL_HINT.format(package='docker-compose')}",
        pytrace=False,
    )


def run_compose_config(tmp: Path, environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``compose config`` on compose.yaml with exactly ``environ`` (no .env, no caller's vars)."""
    empty_env_file = tmp / "empty.env"
    empty_env_file.write_text("", encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), **environ}
    return subprocess.run(
        [*compose_command(), "--env-file", str(empty_env_file), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = tool("promtool", "prometheus")
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: expected a mapping at the top"
    return data


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def backend_setting_names() -> set[str]:
    """Every backend setting's variable, from the Settings dataclass itself."""
    return {PREFIX + field.name.upper() for field in dataclasses.fields(Settings)}


def seconds(duration: str | int | float) -> float:
    """A compose duration ("1m30s", "30s", 30) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def published_ports(service: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port, short or long syntax."""
    result = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            host_ip = str(port.get("host_ip", ""))
            published = int(str(port["published"]).split("-")[0])
            target = int(port["target"])
        else:
            spec = str(port).split("/")[0]
            parts = spec.rsplit(":", 2)
            assert len(parts) == 3, f"{port!r}: no host address, so it binds every interface"
            host_ip, published, target = parts[0], int(parts[1]), int(parts[2])
        result.append((host_ip, published, target))
    return result


def command_option(command: list[str], option: str) -> str:
    assert option in command, f"{option} missing from {command}"
    return command[command.index(option) + 1]


# -- compose.yaml -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_raw() -> dict[str, Any]:
    """compose.yaml as written (anchors resolved by the YAML loader, ${...} left as written)."""
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """compose.yaml as compose resolves it, with dummy secrets and nothing else set."""
    result = run_compose_config(tmp_path_factory.mktemp("compose"), REQUIRED_SECRETS)
    assert result.returncode == 0, f"compose config failed:\n{result.stderr}"
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


def services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def test_compose_config_accepts_the_file(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {
        "postgres",
        "monitor-db",
        "minio",
        "minio-init",
        "migrate",
        "backend",
        "api",
        "monitor",
        "tui",
        "statuspage",
    }


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_compose_config_refuses_to_start_without_a_secret(tmp_path: Path, missing: str) -> None:
    environ = {k: v for k, v in REQUIRED_SECRETS.items() if k != missing}
    result = run_compose_config(tmp_path, environ)
    assert result.returncode != 0, f"compose config passed without {missing}"
    assert f"set {missing} in .env" in result.stderr, result.stderr


def test_backend_gets_every_setting_with_a_production_value(compose: dict[str, Any]) -> None:
    for name in BACKEND_SERVICES:
        env = environment(services(compose)[name])
        missing = backend_setting_names() - PER_PROCESS_SETTINGS - env.keys()
        assert not missing, f"{name}: settings missing from compose.yaml: {sorted(missing)}"
        # One value here would give every replica the same name.
        assert not PER_PROCESS_SETTINGS & env.keys(), name
        # What the backend makes of them: valid, and the production choices.
        settings = Settings.from_mapping(env)
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert urlsplit(settings.database_url).hostname == "postgres"
        assert settings.s3_endpoint_url == "http://minio:9000"
        assert settings.s3_secret_key == REQUIRED_SECRETS["BACKEND_S3_SECRET_KEY"]
        assert env["PGPASSWORD"] == REQUIRED_SECRETS["POSTGRES_PASSWORD"]
        assert settings.health_details == "authenticated"
        assert settings.drain_delay == 5.0
        assert settings.shutdown_grace > 0


def test_backend_runs_from_the_dockerfile_on_all_interfaces(compose: dict[str, Any]) -> None:
    for name in ("backend", "migrate", "monitor", "tui", "statuspage"):
        service = services(compose)[name]
        build = service["build"]
        context = build if isinstance(build, str) else build["context"]
        assert Path(context).resolve() == ROOT, name
        assert isinstance(build, str) or build.get("dockerfile", "Dockerfile") == "Dockerfile"
    backend = services(compose)["backend"]
    assert backend["command"] == ["backend", "--host", "0.0.0.0", "--port", "8000"]
    assert services(compose)["migrate"]["command"] == ["db", "upgrade"]


def test_signing_keys_live_on_a_named_volume(compose: dict[str, Any]) -> None:
    backend = services(compose)["backend"]
    keys_dir = environment(backend)["QUESTCITY_KEYS_DIR"]
    mounts = {_volume_target(v): _volume_source(v) for v in backend.get("volumes", [])}
    assert keys_dir in mounts, f"{keys_dir} is not a volume: keys would die with the container"
    assert mounts[keys_dir] in compose["volumes"], "the keys volume must be a named volume"


def _volume_source(volume: str | Mapping[str, Any]) -> str:
    return str(volume["source"]) if isinstance(volume, Mapping) else volume.split(":")[0]


def _volume_target(volume: str | Mapping[str, Any]) -> str:
    return str(volume["target"]) if isinstance(volume, Mapping) else volume.split(":")[1]


def test_stateful_services_keep_their_data_on_named_volumes(compose: dict[str, Any]) -> None:
    data_dirs = {
        "postgres": "/var/lib/postgresql/data",
        "monitor-db": "/var/lib/postgresql/data",
        "minio": "/data",
    }
    for name, target in data_dirs.items():
        mounts = {_volume_target(v): _volume_source(v) for v in services(compose)[name]["volumes"]}
        assert mounts.get(target) in compose["volumes"], f"{name}: {target} on a named volume"


def healthcheck_test(service: Mapping[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def test_health_checks_use_the_right_endpoints(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert "pg_isready" in healthcheck_test(svc["postgres"])
    assert "pg_isready" in healthcheck_test(svc["monitor-db"])
    assert "/minio/health/live" in healthcheck_test(svc["minio"])
    backend_check = healthcheck_test(svc["backend"])
    assert f"http://127.0.0.1:8000{HEALTH_LIVE}" in backend_check
    assert f"http://127.0.0.1:8000{HEALTH_LIVE}" in healthcheck_test(svc["api"])
    assert "/api/v2/status.json" in healthcheck_test(svc["statuspage"])
    assert "8081" in healthcheck_test(svc["tui"])
    for name, service in svc.items():
        if "healthcheck" in service:
            check = service["healthcheck"]
            assert seconds(check["timeout"]) <= seconds(check["interval"]), name
            assert int(check["retries"]) >= 3, name


def test_depends_on_waits_for_health_and_completed_jobs(compose: dict[str, Any]) -> None:
    svc = services(compose)

    def condition(service: str, dependency: str) -> str:
        depends_on = svc[service]["depends_on"]
        assert isinstance(depends_on, dict), f"{service}: depends_on needs conditions"
        return str(depends_on[dependency]["condition"])

    assert condition("backend", "postgres") == "service_healthy"
    assert condition("backend", "migrate") == "service_completed_successfully"
    assert condition("backend", "minio-init") == "service_completed_successfully"
    assert condition("migrate", "postgres") == "service_healthy"
    assert condition("minio-init", "minio") == "service_healthy"
    for reader in ("monitor", "tui", "statuspage"):
        assert condition(reader, "monitor-db") == "service_healthy"
    # Every condition can be met: a health condition needs a health check, a completion
    # condition a one-shot service.
    for name, service in svc.items():
        for dependency, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in svc[dependency], f"{name} waits on {dependency}'s health"
            if spec["condition"] == "service_completed_successfully":
                assert svc[dependency].get("restart") == "no", f"{dependency} is a one-shot"


def test_restart_policies(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if name in ("migrate", "minio-init"):
            assert service.get("restart") == "no", name
        else:
            assert service.get("restart") in ("unless-stopped", "always"), name


def test_only_user_facing_ports_are_published_on_loopback(compose: dict[str, Any]) -> None:
    published = {
        name: published_ports(service)
        for name, service in services(compose).items()
        if service.get("ports")
    }
    assert set(published) == set(USER_FACING_PORTS)
    for name, ports in published.items():
        assert ports == [("127.0.0.1", USER_FACING_PORTS[name], USER_FACING_PORTS[name])], name


def test_backend_gets_time_to_drain_before_it_is_killed(compose: dict[str, Any]) -> None:
    backend = services(compose)["backend"]
    settings = Settings.from_mapping(environment(backend))
    needed = settings.drain_delay + settings.shutdown_grace
    assert seconds(backend["stop_grace_period"]) > needed


def test_no_secret_is_written_in_compose_yaml(compose_raw: dict[str, Any]) -> None:
    for name, service in services(compose_raw).items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert FROM_ENVIRONMENT.fullmatch(value), f"{name}: {key}={value!r}"
            for url in re.findall(r"[a-z+]+://[^\s\"']+", value):
                assert urlsplit(url).password is None, f"{name}: {key} has a password in a URL"
    text = COMPOSE.read_text(encoding="utf-8")
    for well_known in ("minioadmin", "changeme", "POSTGRES_PASSWORD: postgres"):
        assert well_known not in text
    assert ".env" in DOCKERIGNORE.read_text(encoding="utf-8").split()


def test_containers_run_locked_down(compose: dict[str, Any]) -> None:
    for name in ("migrate", "backend", "api", "monitor", "tui", "statuspage"):
        service = services(compose)[name]
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        if name != "api":  # HAProxy's image is its own PID 1; ours run under tini
            assert service.get("init") is True, name


def test_tui_is_served_with_authentication(compose: dict[str, Any]) -> None:
    tui = services(compose)["tui"]
    command = tui["command"]
    assert command[0] == "tui" and "--serve" in command
    assert command_option(command, "--host") == "0.0.0.0"
    assert command_option(command, "--port") == "8081"
    env = environment(tui)
    assert env[PASSWORD_ENV] == REQUIRED_SECRETS[PASSWORD_ENV]
    # The TUI's own rule: it will serve on 0.0.0.0 with that environment.
    check_bind("0.0.0.0", credentials_from(env))


def test_monitor_tui_and_statuspage_read_deploy_monitor_toml(compose: dict[str, Any]) -> None:
    for name in ("monitor", "tui", "statuspage"):
        service = services(compose)[name]
        assert command_option(service["command"], "--config") == MONITOR_TOML_IN_CONTAINER
        mounts = {_volume_target(v): _volume_source(v) for v in service["volumes"]}
        assert Path(mounts[MONITOR_TOML_IN_CONTAINER]).resolve() == MONITOR_TOML
        # The store's password (monitor.toml has none).
        assert environment(service)["PGPASSWORD"] == REQUIRED_SECRETS["MONITOR_DB_PASSWORD"]
    statuspage = services(compose)["statuspage"]["command"]
    assert command_option(statuspage, "--host") == "0.0.0.0"
    assert command_option(statuspage, "--port") == "8082"
    assert command_option(statuspage, "--public-url") == "http://127.0.0.1:8082"


# -- deploy/monitor.toml ----------------------------------------------------------------------


def test_monitor_toml_watches_the_compose_backend(compose: dict[str, Any]) -> None:
    config = parse_config(MONITOR_TOML.read_text(encoding="utf-8"), MONITOR_TOML)
    storage = urlsplit(config.storage_url)
    assert storage.scheme.startswith("postgresql")
    assert storage.password is None, "the store's password belongs in PGPASSWORD"
    monitor_db = environment(services(compose)["monitor-db"])
    assert storage.hostname == "monitor-db"
    assert storage.username == monitor_db["POSTGRES_USER"]
    assert storage.path.lstrip("/") == monitor_db["POSTGRES_DB"]

    (target,) = config.targets
    url = urlsplit(target.url)
    assert (url.hostname, url.port) == ("backend", 8000)
    monitor_env = environment(services(compose)["monitor"])
    tui_env = environment(services(compose)["tui"])
    assert target.token_env in monitor_env and target.token_env in tui_env
    assert target.admin_token_env in tui_env


def test_monitor_toml_probes_every_backend_replica_by_compose_dns(compose: dict[str, Any]) -> None:
    config = parse_config(MONITOR_TOML.read_text(encoding="utf-8"), MONITOR_TOML)
    (target,) = config.targets
    (entry,) = target.replicas
    # Compose's DNS answers a service's name with every one of its containers' addresses.
    name, port = dns_replica(entry) or pytest.fail(f"{entry!r} is not dns:NAME:PORT")
    backend = services(compose)[name]
    assert int(command_option(backend["command"], "--port")) == port


# -- the fleet in compose.yaml ----------------------------------------------------------------


def replicas_of(service: Mapping[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def haproxy_sections(text: str) -> dict[str, list[str]]:
    """haproxy.cfg as {section header: its lines}, comments and blank lines left out."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            header = " ".join(line.split())
            assert header not in sections, f"two sections {header!r}"
            current = sections[header] = []
        else:
            assert current is not None, f"{raw!r} before the first section"
            current.append(" ".join(line.split()))
    return sections


def directive(lines: list[str], keyword: str) -> list[str]:
    """The words after ``keyword`` on the one line that starts with it."""
    found = [line.split()[len(keyword.split()) :] for line in lines if line.startswith(keyword)]
    assert len(found) == 1, f"{keyword}: {len(found)} lines"
    return found[0]


def test_compose_runs_backend_replicas_each_with_its_own_name(compose: dict[str, Any]) -> None:
    backend = services(compose)["backend"]
    assert replicas_of(backend) >= 2
    # Host ports cannot be shared by replicas: the api front holds the published one.
    assert not backend.get("ports")
    # Each replica's default id is its container's host name (and pid): not one name for all.
    assert "hostname" not in backend and "container_name" not in backend


def test_backend_replicas_fit_in_postgresqls_connections(compose: dict[str, Any]) -> None:
    backend = services(compose)["backend"]
    settings = Settings.from_mapping(environment(backend))
    per_replica = settings.db_pool_size + settings.db_max_overflow
    # The replicas, one more being recreated, and room for the migration job and psql.
    assert (replicas_of(backend) + 1) * per_replica + 5 <= POSTGRES_MAX_CONNECTIONS


def test_the_published_api_port_balances_over_every_ready_replica(compose: dict[str, Any]) -> None:
    svc = services(compose)
    api, backend = svc["api"], svc["backend"]
    mounts = {_volume_target(v): _volume_source(v) for v in api["volumes"]}
    assert Path(mounts["/usr/local/etc/haproxy/haproxy.cfg"]).resolve() == HAPROXY_CFG
    [(_, _, container_port)] = published_ports(api)

    config = haproxy_sections(HAPROXY_CFG.read_text(encoding="utf-8"))
    assert directive(config["frontend api"], "bind") == [f":{container_port}"]
    assert directive(config["frontend api"], "default_backend") == ["replicas"]
    # Layer 4: the backend keeps its own limits, and X-Forwarded-For passes unchanged.
    assert directive(config["defaults"], "mode") == ["tcp"]
    replicas = config["backend replicas"]
    _, slots, address = directive(replicas, "server-template")
    assert address == f"backend:{command_option(backend['command'], '--port')}"
    assert int(slots) >= replicas_of(backend) + 2, "room to --scale"
    # Found by compose's DNS and looked up again: a new or replaced replica joins by itself.
    defaults = directive(replicas, "default-server")
    assert defaults[defaults.index("resolvers") + 1] == "docker"
    assert "parse-resolv-conf" in config["resolvers docker"]
    # Only ready replicas get connections: a starting or draining one (503) is left out.
    assert "check" in defaults
    send = directive(replicas, "http-check send")
    assert send[send.index("uri") + 1] == HEALTH_READY
    assert directive(replicas, "http-check expect") == ["status", "200"]
    assert "option httpchk" in replicas


def test_compose_runs_two_monitors_on_one_postgresql_store(compose: dict[str, Any]) -> None:
    monitor = services(compose)["monitor"]
    assert replicas_of(monitor) == 2
    # Each monitor's id is its own host name and pid: one value would name both the same.
    assert MONITOR_ID_ENV not in environment(monitor)
    assert "hostname" not in monitor and "container_name" not in monitor
    # Both read one monitor.toml (one service), hence one store, and it is PostgreSQL: a second
    # monitor on a SQLite file is refused.
    mounts = {_volume_target(v): _volume_source(v) for v in monitor["volumes"]}
    assert Path(mounts[MONITOR_TOML_IN_CONTAINER]).resolve() == MONITOR_TOML
    config = parse_config(MONITOR_TOML.read_text(encoding="utf-8"), MONITOR_TOML)
    assert urlsplit(config.storage_url).scheme.startswith("postgresql")
    assert urlsplit(config.storage_url).hostname in services(compose)


# -- Dockerfile -------------------------------------------------------------------------------


@dataclasses.dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]]

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """The Dockerfile's stages, with continuation lines joined and ARG defaults substituted."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation"

    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = " ".join(rest.split())
        if keyword == "ARG" and not stages:
            arg, _, default = rest.partition("=")
            args[arg] = default
        elif keyword == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[0])
            stage = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, stage, []))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))


def test_dockerfile_installs_the_locked_dependencies(stages: list[Stage]) -> None:
    build = next(s for s in stages if s.name == "build")
    syncs = [args for args in build.all("RUN") if "uv sync" in args]
    assert syncs, "the build stage never runs uv sync"
    for args in syncs:
        words = shlex.split(args)
        assert "--locked" in words, args  # fails if uv.lock is out of date with pyproject.toml
        assert "--no-dev" in words, args
    copied: set[str] = set()
    for keyword, args in build.instructions:
        if keyword == "COPY":
            copied.update(shlex.split(args)[:-1])
        if keyword == "RUN" and "uv sync" in args:
            break
    assert {"pyproject.toml", "uv.lock"} <= copied, "uv sync needs the lock file copied first"


def test_dockerfile_copies_every_package_of_the_wheel(stages: list[Stage]) -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    build = next(s for s in stages if s.name == "build")
    copied = {shlex.split(args)[0] for args in build.all("COPY") if not args.startswith("--")}
    assert set(packages) <= copied


def test_dockerfile_runtime_is_slim_python_as_a_non_root_user(stages: list[Stage]) -> None:
    runtime = stages[-1]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", runtime.image), runtime.image
    user = runtime.all("USER")[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: a numeric non-root uid"
    assert json.loads(runtime.all("ENTRYPOINT")[-1]) == ["questcity"]
    assert "8000" in runtime.all("EXPOSE")[-1].split()
    # Only the built environment reaches the runtime: no uv, no sources.
    sources = [shlex.split(args) for args in runtime.all("COPY")]
    assert sources and all(words[0] == "--from=build" for words in sources)


def dockerfile_uid() -> int:
    runtime = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]
    return int(runtime.all("USER")[-1].split(":")[0])


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", "var", ".venv", ".git"} <= ignored


# -- deploy/k8s -------------------------------------------------------------------------------


BACKEND_APP = "questcity-backend"
HEADLESS_SERVICE = "questcity-backend-headless"
MONITOR_APP = "questcity-monitor"


@pytest.fixture(scope="module")
def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of deploy/k8s by (kind, name)."""
    documents = [
        *load_yaml_documents(K8S_BACKEND),
        *load_yaml_documents(K8S_CONFIGMAP),
        *load_yaml_documents(K8S_MONITOR),
    ]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for document in documents:
        key = (document["kind"], document["metadata"]["name"])
        assert key not in found, f"two {key}"
        found[key] = document
    assert set(found) == {
        ("Deployment", BACKEND_APP),
        ("Service", BACKEND_APP),
        ("Service", HEADLESS_SERVICE),
        ("PodDisruptionBudget", BACKEND_APP),
        ("ConfigMap", BACKEND_APP),
        ("Deployment", MONITOR_APP),
        ("PodDisruptionBudget", MONITOR_APP),
        ("ConfigMap", MONITOR_APP),
    }
    return found


def app_objects(objects: Mapping[tuple[str, str], dict[str, Any]], app: str) -> dict[str, Any]:
    """One app's objects by kind (its Service is the one called after it)."""
    return {kind: document for (kind, name), document in objects.items() if name == app}


@pytest.fixture(scope="module")
def k8s(k8s_objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The backend's objects by kind."""
    return app_objects(k8s_objects, BACKEND_APP)


@pytest.fixture(scope="module")
def k8s_monitor(k8s_objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return app_objects(k8s_objects, MONITOR_APP)


def pod_spec(k8s: Mapping[str, Any]) -> dict[str, Any]:
    spec = k8s["Deployment"]["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def container(k8s: Mapping[str, Any], name: str = "backend") -> dict[str, Any]:
    """The container ``name`` of the app's Deployment (``k8s``: one app's objects by kind)."""
    found = [c for c in pod_spec(k8s)["containers"] if c["name"] == name]
    assert len(found) == 1, name
    result = found[0]
    assert isinstance(result, dict)
    return result


def configmap_settings(k8s: Mapping[str, Any]) -> Settings:
    data = dict(k8s["ConfigMap"]["data"])
    secret_refs = {e["name"]: "dummy" for e in container(k8s).get("env", []) if "valueFrom" in e}
    return Settings.from_mapping({**data, **secret_refs})


def probe_budget(probe: Mapping[str, Any]) -> float:
    """Seconds a probe tolerates failing before it acts."""
    return float(probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3))


def test_k8s_runs_three_replicas_rolling_without_losing_capacity(
    k8s: dict[str, dict[str, Any]],
) -> None:
    spec = k8s["Deployment"]["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert k8s["PodDisruptionBudget"]["spec"]["minAvailable"] < spec["replicas"]
    labels = spec["template"]["metadata"]["labels"]
    for selector in (
        spec["selector"]["matchLabels"],
        k8s["Service"]["spec"]["selector"],
        k8s["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()


def test_k8s_probes_use_our_endpoints_with_sensible_thresholds(
    k8s: dict[str, dict[str, Any]],
) -> None:
    backend = container(k8s)
    assert backend["args"] == ["backend", "--host", "0.0.0.0", "--port", "8000"]
    ports = {p["name"]: p["containerPort"] for p in backend["ports"]}
    startup, liveness, readiness = (
        backend["startupProbe"],
        backend["livenessProbe"],
        backend["readinessProbe"],
    )
    expected = ((startup, HEALTH_LIVE), (liveness, HEALTH_LIVE), (readiness, HEALTH_READY))
    for probe, path in expected:
        get = probe["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 8000
        assert probe["timeoutSeconds"] < probe["periodSeconds"]
    # Liveness never depends on the database (/live), so the start-up probe only covers the
    # process's own start; migrations and a slow database wait behind /ready. Still generous.
    assert probe_budget(startup) >= 60
    # A restart needs several missed answers in a row, never one slow one.
    assert liveness["failureThreshold"] >= 3
    assert probe_budget(liveness) >= 30
    # A draining pod (503) leaves the endpoints before its in-flight grace runs out.
    settings = configmap_settings(k8s)
    assert probe_budget(readiness) <= settings.drain_delay + settings.shutdown_grace


def test_k8s_termination_grace_covers_the_drain(k8s: dict[str, dict[str, Any]]) -> None:
    settings = configmap_settings(k8s)
    assert settings.drain_delay > 0, "behind Kubernetes the endpoint removal needs a drain delay"
    grace = pod_spec(k8s)["terminationGracePeriodSeconds"]
    assert grace > settings.drain_delay + settings.shutdown_grace
    for c in [*pod_spec(k8s)["containers"], *pod_spec(k8s).get("initContainers", [])]:
        assert "preStop" not in c.get("lifecycle", {}), "the backend drains itself on SIGTERM"


def test_k8s_every_setting_comes_from_the_configmap_or_the_secret(
    k8s: dict[str, dict[str, Any]],
) -> None:
    backend = container(k8s)
    configmap = k8s["ConfigMap"]
    assert {"configMapRef": {"name": configmap["metadata"]["name"]}} in backend["envFrom"]
    from_secret = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in backend.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert {"PGPASSWORD", "QUESTCITY_S3_SECRET_KEY"} <= from_secret.keys()
    from_pod = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in backend.get("env", [])
        if "fieldRef" in e.get("valueFrom", {})
    }
    # Each replica is named after its pod: unique, and what kubectl shows.
    assert from_pod == {PREFIX + "INSTANCE_ID": "metadata.name"}
    provided = set(configmap["data"]) | set(from_secret) | set(from_pod)
    assert backend_setting_names() <= provided
    for name in configmap["data"]:
        assert not SECRET_NAME.search(name), f"{name} belongs in the Secret"
    settings = configmap_settings(k8s)  # the ConfigMap's values are valid settings
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert urlsplit(settings.database_url).password is None
    # 3 replicas plus the rolling update's surge must fit in PostgreSQL's default 100.
    per_replica = settings.db_pool_size + settings.db_max_overflow
    assert (k8s["Deployment"]["spec"]["replicas"] + 1) * per_replica < 100


def test_k8s_replicas_share_the_signing_key_from_a_secret(k8s: dict[str, dict[str, Any]]) -> None:
    spec = pod_spec(k8s)
    keys_dir = Path(str(k8s["ConfigMap"]["data"]["QUESTCITY_KEYS_DIR"]))
    volumes = {v["name"]: v for v in spec["volumes"]}
    secret_volumes = [v for v in volumes.values() if "secret" in v]
    (secret_volume,) = secret_volumes
    assert PRIVATE_KEY_FILE in {item["path"] for item in secret_volume["secret"]["items"]}

    def mounted_at(c: Mapping[str, Any], directory: Path) -> str | None:
        for mount in c["volumeMounts"]:
            if directory == Path(mount["mountPath"]) or Path(mount["mountPath"]) in (
                directory.parents
            ):
                return str(mount["name"])
        return None

    (init,) = spec["initContainers"]
    backend = container(k8s)
    # The init container copies the key from the Secret into the keys directory, which both
    # containers see on the same emptyDir; the backend never mounts the Secret itself.
    shared = mounted_at(init, keys_dir)
    assert shared is not None and shared == mounted_at(backend, keys_dir)
    assert "emptyDir" in volumes[shared]
    assert secret_volume["name"] in {m["name"] for m in init["volumeMounts"]}
    assert secret_volume["name"] not in {m["name"] for m in backend["volumeMounts"]}
    script = " ".join(init["command"])
    assert PRIVATE_KEY_FILE in script and "QUESTCITY_KEYS_DIR" in script
    assert init["image"] == backend["image"]


def test_k8s_pod_is_locked_down(k8s: dict[str, dict[str, Any]]) -> None:
    spec = pod_spec(k8s)
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == dockerfile_uid()
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    for c in [*spec["containers"], *spec["initContainers"]]:
        security = c["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, c["name"]
        assert security["allowPrivilegeEscalation"] is False, c["name"]
        assert security["capabilities"]["drop"] == ["ALL"], c["name"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"], c["name"]


def test_k8s_service_reaches_the_http_port(k8s: dict[str, dict[str, Any]]) -> None:
    (port,) = k8s["Service"]["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container(k8s)["ports"]}


def apply_namespace() -> str:
    """The namespace backend.yaml's instructions apply into (``kubectl -n NS apply``)."""
    found = re.search(r"kubectl -n (\S+) apply", K8S_BACKEND.read_text(encoding="utf-8"))
    assert found, "backend.yaml says which namespace to apply into"
    return found.group(1)


def test_k8s_headless_service_answers_with_every_ready_backend_pod(
    k8s_objects: dict[tuple[str, str], dict[str, Any]], k8s: dict[str, dict[str, Any]]
) -> None:
    headless = k8s_objects[("Service", HEADLESS_SERVICE)]["spec"]
    assert headless["clusterIP"] == "None"  # DNS answers with the pods, not one balanced IP
    assert headless["publishNotReadyAddresses"] is False  # starting or draining: retired
    # The same pods as the ordinary Service and the Deployment.
    assert headless["selector"] == k8s["Service"]["spec"]["selector"]
    labels = k8s["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert headless["selector"].items() <= labels.items()
    (port,) = headless["ports"]
    assert port["targetPort"] in {p["name"] for p in container(k8s)["ports"]}
    assert port["port"] == 8000


def monitor_config_of(k8s_monitor: Mapping[str, Any]) -> Any:
    """The ConfigMap's monitor.toml, through the monitor's own parser."""
    path = Path(command_option(container(k8s_monitor, "monitor")["args"], "--config"))
    text = k8s_monitor["ConfigMap"]["data"][path.name]
    return parse_config(text, path)


def test_k8s_monitor_probes_every_replica_through_the_headless_service(
    k8s_objects: dict[tuple[str, str], dict[str, Any]], k8s_monitor: dict[str, dict[str, Any]]
) -> None:
    config = monitor_config_of(k8s_monitor)
    (target,) = config.targets
    (entry,) = target.replicas
    name, port = dns_replica(entry) or pytest.fail(f"{entry!r} is not dns:NAME:PORT")
    headless = k8s_objects[("Service", HEADLESS_SERVICE)]
    assert name == f"{HEADLESS_SERVICE}.{apply_namespace()}.svc.cluster.local"
    assert port == headless["spec"]["ports"][0]["port"]
    monitor = container(k8s_monitor, "monitor")
    env_names = {e["name"] for e in monitor.get("env", [])}
    assert target.token_env in env_names


def test_k8s_runs_two_monitors_on_one_postgresql_store(
    k8s_monitor: dict[str, dict[str, Any]],
) -> None:
    spec = k8s_monitor["Deployment"]["spec"]
    assert spec["replicas"] == 2
    labels = spec["template"]["metadata"]["labels"]
    for selector in (
        spec["selector"]["matchLabels"],
        k8s_monitor["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    # A drain never takes both at once; a rolling update starts the new standby first.
    assert 1 <= k8s_monitor["PodDisruptionBudget"]["spec"]["minAvailable"] < spec["replicas"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # One store for both, PostgreSQL (a second monitor on a SQLite file is refused), its
    # password from a Secret and never in the URL.
    storage = urlsplit(monitor_config_of(k8s_monitor).storage_url)
    assert storage.scheme.startswith("postgresql") and storage.password is None
    monitor = container(k8s_monitor, "monitor")
    env = {e["name"]: e.get("valueFrom", {}) for e in monitor["env"]}
    assert "secretKeyRef" in env["PGPASSWORD"]
    # Each monitor is named after its pod in the lease, its logs and the TUI.
    assert env[MONITOR_ID_ENV] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert monitor["args"][0] == "monitor"


def test_k8s_monitor_reads_its_config_from_the_configmap(
    k8s_monitor: dict[str, dict[str, Any]],
) -> None:
    spec = k8s_monitor["Deployment"]["spec"]["template"]["spec"]
    monitor = container(k8s_monitor, "monitor")
    config_path = Path(command_option(monitor["args"], "--config"))
    volumes = {v["name"]: v for v in spec["volumes"]}
    (mount,) = [m for m in monitor["volumeMounts"] if Path(m["mountPath"]) == config_path.parent]
    source = volumes[mount["name"]]["configMap"]
    assert source["name"] == k8s_monitor["ConfigMap"]["metadata"]["name"]
    assert {"key": config_path.name, "path": config_path.name} in source["items"]


def test_k8s_monitor_pod_is_locked_down(
    k8s: dict[str, dict[str, Any]], k8s_monitor: dict[str, dict[str, Any]]
) -> None:
    spec = k8s_monitor["Deployment"]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == dockerfile_uid()
    # The lease is in PostgreSQL: no Kubernetes API access needed.
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    monitor = container(k8s_monitor, "monitor")
    security = monitor["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert monitor["resources"]["requests"] and monitor["resources"]["limits"]["memory"]
    assert monitor["image"] == container(k8s)["image"]
    # A stopping leader finishes its checks and releases the lease before the SIGKILL.
    assert spec["terminationGracePeriodSeconds"] >= 15


def test_k8s_readme_explains_discovery_and_takeover() -> None:
    text = K8S_README.read_text(encoding="utf-8")
    assert HEADLESS_SERVICE in text
    assert "clusterIP: None" in text and "publishNotReadyAddresses: false" in text
    assert "takeover" in text.lower() and "ttl" in text
    for name in ("backend.yaml", "configmap.yaml", "monitor.yaml"):
        assert name in text


# -- deploy/prometheus ------------------------------------------------------------------------


def test_promtool_accepts_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_failures_and_stay_quiet_on_healthy_series() -> None:
    result = run_promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def alert_rules() -> Iterator[dict[str, Any]]:
    for group in load_yaml(ALERTS)["groups"]:
        yield from group["rules"]


def test_each_alert_says_how_bad_it_is_and_what_to_do() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert {
        "QuestCityCircuitBreakerOpen",
        "QuestCityHealthCheckFailureRate",
        "QuestCityDatabasePoolExhausted",
        "QuestCityS3FailureRate",
        "QuestCityBackendDown",
    } <= rules.keys()
    for name, rule in rules.items():
        assert "for" in rule, name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        assert "Runbook" in rule["annotations"]["description"], name
    assert (
        "min_over_time(questcity_circuit_breaker_state"
        in (rules["QuestCityCircuitBreakerOpen"]["expr"])
    )


def exposed_series() -> dict[str, set[str]]:
    """Every series name the backend exposes on /metrics, with its label names."""
    policies = PolicyRegistry(FakeClock())
    policies.circuit_breaker(
        "database",
        CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30.0, success_threshold=1),
    )
    metrics = Metrics(
        CollectorRegistry(),
        policies=policies,
        pool_stats=lambda: {"size": 1, "checked_out": 0, "overflow": 0, "waiting": 0},
    )
    metrics.observer.on_check("database", CheckResult(ok=False, at=0.0, duration=0.1))
    metrics.record_s3_operation("get_object", "success")
    metrics.on_pool_exhausted()
    metrics.http_request_duration.labels("GET", "/x", "200").observe(0.1)
    body, _ = render(metrics.registry)
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def test_alerts_use_series_the_backend_exposes() -> None:
    series = exposed_series()
    for rule in alert_rules():
        expr = str(rule["expr"])
        used = set(re.findall(r"\bquestcity_[a-z0-9_]+", expr))
        for name in used:
            assert name in series, f"{rule['alert']}: the backend has no series {name}"
        grouped_by = {
            label.strip()
            for labels in re.findall(r"\bby \(([^)]*)\)", expr)
            for label in labels.split(",")
        }
        for label in grouped_by - {"job", "instance"}:  # those two come from the scrape
            for name in used:
                assert label in series[name], f"{rule['alert']}: {name} has no label {label}"
