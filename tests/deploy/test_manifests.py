"""deploy/: everything that can be checked without a Docker engine or a Kubernetes cluster.

The project's machines have neither, so the image is never built and the manifests are never applied here
(docs/operations.md says so). What is checked instead:

- the Kubernetes manifests against Kubernetes' own schemas (kubernetes-validate, strict: unknown fields fail),
  for the oldest and the newest version the package knows of;
- the compose file against the Compose specification's JSON schema (shipped by check-jsonschema);
- the Dockerfile read against pyproject.toml, linted by hadolint, and the wheel built from exactly the files it
  copies, offline;
- every command, setting, port and probe path the files name against the relay itself: its CLI parser, its
  Settings, and a real API and worker answering on loopback;
- every metric the Grafana dashboard and the alert rules query against what the relay's /metrics exports;
- the alert rules and the Prometheus configuration with promtool, and the alerts' unit tests
  (deploy/prometheus/alerts.test.yaml).
"""

import asyncio
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import kubernetes_validate
import promql_parser
import pytest
import yaml
from aiohttp.test_utils import TestServer
from dockerfile_parse import DockerfileParser
from jsonschema import validators
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from redis.asyncio import Redis
from setuptools import find_packages

from relay.cli import _parser as relay_cli_parser
from relay.service import health_app, running
from relay.settings import Settings
from workers.metrics import Metrics
from workers.runtime import WorkerRuntime

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
DASHBOARD = DEPLOY / "grafana" / "relay-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# The oldest Kubernetes the manifests promise to work on (docs/operations.md), and the newest the package knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
SETTINGS = frozenset("RELAY_" + name.upper() for name in Settings.model_fields)
# Metrics the dashboard and the alerts use that the relay does not export yet. docs/operations.md says what
# each needs; once one is exported, test_pending_metrics_are_still_missing asks for it to be removed here.
PENDING_METRICS: frozenset[str] = frozenset()
PROMETHEUS_OWN = frozenset({"up"})  # series Prometheus makes itself for every target


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's settings come from the files under test, never from the environment running the tests."""
    for name in list(os.environ):
        if name.startswith("RELAY_") and name != "RELAY_TEST_REDIS_URL":
            monkeypatch.delenv(name)


# --- reading the files ----------------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def container(deployment: str) -> dict[str, Any]:
    (only,) = k8s_object("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def config_data() -> dict[str, str]:
    data: dict[str, str] = k8s_object("ConfigMap", "relay-config")["data"]
    return data


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves the x-relay anchor and `<<` merges
    return loaded


def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def stages(parser: DockerfileParser) -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, one list per stage (each starting with its FROM)."""
    result: list[list[dict[str, Any]]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result and instruction["instruction"] != "COMMENT":
            result[-1].append(instruction)
    return result


def instructions(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def relay_args_are_valid(args: list[str]) -> None:
    """``relay`` accepts these arguments (the parser exits 2 on an unknown command or option)."""
    relay_cli_parser().parse_args(args)


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bin_tool(name: str) -> str | None:
    """A tool from the venv (hadolint comes as a wheel) or from PATH (promtool: .ci/run installs it)."""
    beside_python = Path(sys.executable).parent / name
    return str(beside_python) if beside_python.exists() else shutil.which(name)


def require_tool(name: str, how: str) -> str:
    found = bin_tool(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; {how}")
        pytest.skip(f"{name} is not installed ({how})")
    return found


# --- Kubernetes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_kubernetes_manifest_is_valid(path: Path, version: str) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert documents, f"{path.name} holds no manifest"
    for doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)
        assert doc["metadata"].get("namespace", "relay") == "relay" or doc["kind"] == "Namespace"


def test_the_manifests_cover_what_the_issue_asks_for() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in k8s_documents()}
    assert kinds >= {
        ("Namespace", "relay"),
        ("ConfigMap", "relay-config"),
        ("Secret", "relay-secrets"),
        ("Deployment", "relay-api"),
        ("Service", "relay-api"),
        ("PodDisruptionBudget", "relay-api"),
        ("Deployment", "relay-worker"),
        ("PodDisruptionBudget", "relay-worker"),
        ("HorizontalPodAutoscaler", "relay-worker"),
        ("StatefulSet", "relay-redis"),
    }


def test_selectors_find_the_pods_they_mean() -> None:
    pods = {
        name: k8s_object("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        for name in ("relay-api", "relay-worker")
    }
    for name, labels in pods.items():
        selector = k8s_object("Deployment", name)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        pdb = k8s_object("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        assert pdb.items() <= labels.items()
        assert not (pdb.items() <= pods[({*pods} - {name}).pop()].items()), "a PDB must not cover the other pods"
    service = k8s_object("Service", "relay-api")["spec"]
    assert service["selector"].items() <= pods["relay-api"].items()
    assert not service["selector"].items() <= pods["relay-worker"].items()
    assert {p["targetPort"] for p in service["ports"]} == {p["name"] for p in container("relay-api")["ports"]}
    hpa = k8s_object("HorizontalPodAutoscaler", "relay-worker")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "relay-worker"}
    assert hpa["minReplicas"] >= 2
    assert "replicas" not in k8s_object("Deployment", "relay-worker")["spec"], "the autoscaler owns the count"


def test_containers_run_real_relay_commands_with_real_settings() -> None:
    assert container("relay-api")["args"] == ["api"]
    assert container("relay-worker")["args"] == ["worker"]
    secret = k8s_object("Secret", "relay-secrets")["stringData"]
    assert set(secret) == {"RELAY_API_TOKEN", "RELAY_ENCRYPTION_KEY", "RELAY_REDIS_URL"}
    assert set(config_data()) <= SETTINGS
    assert not set(config_data()) & set(secret)
    for name in ("relay-api", "relay-worker"):
        spec = container(name)
        relay_args_are_valid(spec["args"])
        refs = {(k, v["name"]) for source in spec["envFrom"] for k, v in source.items()}
        assert refs == {("configMapRef", "relay-config"), ("secretRef", "relay-secrets")}


def test_the_config_map_is_settings_the_relay_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in config_data().items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.host == "0.0.0.0"  # a container listens on its pod's address, not on its loopback
    assert settings.log_format == "json"


def test_ports_probes_and_scrape_annotations_agree() -> None:
    config = config_data()
    api, worker = container("relay-api"), container("relay-worker")
    assert api["ports"] == [{"name": "http", "containerPort": int(config["RELAY_PORT"]), "protocol": "TCP"}]
    assert worker["ports"] == [
        {"name": "metrics", "containerPort": int(config["RELAY_WORKER_PORT"]), "protocol": "TCP"}
    ]
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    for name, port in (("relay-api", config["RELAY_PORT"]), ("relay-worker", config["RELAY_WORKER_PORT"])):
        annotations = k8s_object("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": port,
            "prometheus.io/path": "/metrics",
        }


def test_pods_run_as_the_images_user_with_resources_set() -> None:
    uid = int(instructions(stages(dockerfile())[-1], "USER")[-1].split(":")[0])
    for name in ("relay-api", "relay-worker"):
        pod = k8s_object("Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["automountServiceAccountToken"] is False
        spec = container(name)
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"cpu", "memory"} <= set(spec["resources"]["requests"])
        assert "memory" in spec["resources"]["limits"]


def test_a_stopping_worker_has_time_to_drain() -> None:
    drain_s = inspect.signature(WorkerRuntime.stop).parameters["drain_s"].default
    grace_s = k8s_object("Deployment", "relay-worker")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s >= drain_s + 10, "SIGTERM: attempts drain for drain_s, then outcomes are recorded"
    assert compose()["x-relay"]["stop_grace_period"] == f"{grace_s}s"


def test_the_try_out_redis_keeps_an_append_only_file() -> None:
    redis = k8s_object("StatefulSet", "relay-redis")["spec"]
    args = redis["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert "for trying the relay out" in (K8S / "redis.yaml").read_text().lower()


# --- compose --------------------------------------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    import check_jsonschema  # only for where its vendored schemas are

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = compose_schema()
    validator = validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_compose_schema_catches_mistakes() -> None:
    """The schema really is strict: a misspelt key fails (so the test above can fail)."""
    schema = compose_schema()
    broken = compose()
    broken["services"]["worker"]["comand"] = ["worker"]
    assert not validators.validator_for(schema)(schema).is_valid(broken)


def test_the_compose_file_runs_redis_with_aof_the_api_and_workers() -> None:
    services = compose()["services"]
    redis = services["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert redis["command"][redis["command"].index("--maxmemory-policy") + 1] == "noeviction"
    assert "redis-data:/data" in redis["volumes"]
    assert "redis-data" in compose()["volumes"]
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert all("profiles" not in services[name] for name in ("redis", "api", "worker"))
    for name in ("api", "worker", "sandbox"):
        service = services[name]
        relay_args_are_valid(service["command"])
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert set(service["environment"]) <= SETTINGS
        assert (COMPOSE.parent / (service["env_file"] + ".example")).exists()


def test_the_env_example_names_only_real_settings() -> None:
    lines = (DEPLOY / "relay.env.example").read_text().splitlines()
    named = {m.group(1) for line in lines if (m := re.match(r"^#?\s*(RELAY_[A-Z_]+)=", line))}
    assert {"RELAY_API_TOKEN", "RELAY_ENCRYPTION_KEY"} <= named
    assert named <= SETTINGS


# --- the Dockerfile ---------------------------------------------------------------------------------------------


def project_packages() -> set[str]:
    """The top-level packages ``pip install .`` installs, found as pyproject.toml tells setuptools to."""
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return {name.split(".")[0] for name in find_packages(where=str(ROOT), include=include)}


def test_the_dockerfile_installs_the_project_as_pyproject_says() -> None:
    build, final = stages(dockerfile())
    base = instructions(build, "FROM")[0].split()[0]
    assert base == instructions(final, "FROM")[0] == "python:3.11-slim"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    copied = [value.split() for value in instructions(build, "COPY")]
    sources = {source for *sources, _ in copied for source in sources}
    assert {"pyproject.toml", PYPROJECT["project"]["readme"]} <= sources
    assert project_packages() == {"relay", "workers", "subscriptions"}
    for package in project_packages():
        assert [package, f"./{package}"] in copied
    installs = [run for run in instructions(build, "RUN") if "pip install" in run]
    assert len(installs) == 1
    assert re.search(r"/opt/relay/bin/pip install \.(\s|$)", installs[0]), "the project itself, no extras, not -e"
    assert instructions(final, "COPY")[0] == "--from=build /opt/relay /opt/relay"
    assert "PATH=/opt/relay/bin:$PATH" in instructions(final, "ENV")[0]
    assert "RELAY_HOST=0.0.0.0" in instructions(final, "ENV")[0]


def test_the_image_runs_relay_as_a_non_root_user_with_a_healthcheck() -> None:
    final = stages(dockerfile())[-1]
    user = instructions(final, "USER")[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert re.search(rf"--uid {user.split(':')[0]}\b", " ".join(instructions(final, "RUN")))
    assert json.loads(instructions(final, "ENTRYPOINT")[0]) == ["relay"]
    relay_args_are_valid(json.loads(instructions(final, "CMD")[0]))
    (healthcheck,) = instructions(final, "HEALTHCHECK")
    assert 'CMD ["python", "/opt/relay/healthcheck.py"]' in healthcheck
    assert "deploy/healthcheck.py /opt/relay/healthcheck.py" in instructions(stages(dockerfile())[0], "COPY")
    assert {"8080", "8081"} <= set(instructions(final, "EXPOSE")[0].split())


def test_the_dockerignore_sends_exactly_what_the_dockerfile_copies() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in lines if line.startswith("!")}
    copied = {
        source
        for stage in stages(dockerfile())
        for value in instructions(stage, "COPY")
        if not value.startswith("--from")
        for source in value.split()[:-1]
    }
    assert next(line for line in lines if not line.startswith("#")) == "**", "everything else is left out"
    assert allowed == copied


def test_hadolint_finds_nothing_to_fix() -> None:
    hadolint = require_tool("hadolint", "it comes with the dev dependencies: make install")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_what_the_dockerfile_copies_builds_a_complete_wheel(tmp_path: Path) -> None:
    """The image's `pip install .`, minus the download of the dependencies: the wheel built from exactly the
    files the Dockerfile copies holds every module, the dashboard's templates and the `relay` command."""
    source = tmp_path / "src"
    source.mkdir()
    for value in instructions(stages(dockerfile())[0], "COPY"):
        *paths, _ = value.split()
        for path in paths:
            if (ROOT / path).is_dir():
                shutil.copytree(ROOT / path, source / path, ignore=shutil.ignore_patterns("__pycache__"))
            elif path.startswith("deploy/"):
                continue  # copied to /opt/relay, beside the installation, not into it
            else:
                shutil.copy(ROOT / path, source / path)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
    result = subprocess.run([*command, "-w", str(tmp_path), str(source)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT))
        for package in project_packages()
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        folder = ROOT / package.replace(".", "/")
        expected |= {str(path.relative_to(ROOT)) for pattern in patterns for path in folder.glob(pattern)}
    assert expected - names == set()
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "relay = relay.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# --- the healthcheck --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "env", "url"),
    [
        (["/opt/relay/bin/python", "/opt/relay/bin/relay", "api"], {}, "http://127.0.0.1:8080/healthz"),
        (["relay", "api"], {"RELAY_HOST": "0.0.0.0", "RELAY_PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        (["relay", "run"], {"RELAY_HOST": "::"}, "http://127.0.0.1:8080/healthz"),
        (["relay", "worker"], {"RELAY_PORT": "9000"}, "http://127.0.0.1:8081/healthz"),
        (["relay", "worker"], {"RELAY_WORKER_PORT": "9001"}, "http://127.0.0.1:9001/healthz"),
        (["relay", "worker"], {"RELAY_HOST": "fd00::1"}, "http://[fd00::1]:8081/healthz"),
        (["relay", "sandbox", "--host", "0.0.0.0", "--port", "9100"], {}, "http://127.0.0.1:9100/_sandbox/accounts"),
        (["relay", "sandbox", "--port=9200"], {}, "http://127.0.0.1:9200/_sandbox/accounts"),
        (["relay", "demo"], {}, None),
    ],
)
def test_the_healthcheck_asks_the_command_that_runs(argv: list[str], env: dict[str, str], url: str | None) -> None:
    assert load_healthcheck().probe_url(argv, env) == url


async def healthcheck(*args: str, env: dict[str, str]) -> int:
    """Run deploy/healthcheck.py as the image does, without blocking the loop that serves what it asks."""
    script = str(DEPLOY / "healthcheck.py")
    process = await asyncio.create_subprocess_exec(
        sys.executable, script, *args, env={"PATH": os.environ["PATH"], **env}, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


@dataclass
class Served:
    """A real API and a real worker health server on loopback, over the test's Redis."""

    api_url: str
    worker_url: str


@pytest.fixture
async def served(redis_url: str) -> AsyncIterator[Served]:
    settings = Settings(redis_url=redis_url, api_token=SecretStr("deploy-token-0123456789abcdefghij"), _env_file=None)  # type: ignore[call-arg]
    redis = Redis.from_url(redis_url, decode_responses=True)
    worker = TestServer(health_app(Metrics(), redis), host="127.0.0.1")
    await worker.start_server()
    try:
        async with running(settings, api=True, worker=False, api_port=0) as parts:
            assert parts.api_url is not None
            yield Served(parts.api_url, str(worker.make_url("")).rstrip("/"))
    finally:
        await worker.close()
        await redis.aclose()


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


async def test_the_healthcheck_passes_on_a_running_api_and_worker(served: Served) -> None:
    assert await healthcheck("api", env={"RELAY_PORT": port_of(served.api_url)}) == 0
    assert await healthcheck("worker", env={"RELAY_WORKER_PORT": port_of(served.worker_url)}) == 0
    assert await healthcheck("sandbox", "--port", port_of(served.api_url), env={}) == 1  # the API answers 4xx
    assert await healthcheck("api", env={"RELAY_PORT": "1"}) == 1  # nothing listens


async def test_the_probe_paths_answer(served: Served) -> None:
    api, worker = container("relay-api"), container("relay-worker")
    async with aiohttp.ClientSession() as http:
        for base, spec in ((served.api_url, api), (served.worker_url, worker)):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                async with http.get(base + spec[probe]["httpGet"]["path"]) as answer:
                    assert answer.status == 200, (spec["name"], probe)


# --- metrics: the dashboard and the alerts --------------------------------------------------------------------


@pytest.fixture
async def exported(served: Served) -> frozenset[str]:
    """Every series name the relay's /metrics can show, from a running API and a running worker."""
    names: set[str] = set()
    async with aiohttp.ClientSession() as http:
        for base in (served.api_url, served.worker_url):
            async with http.get(base + "/metrics") as answer:
                text = await answer.text()
            for family in text_string_to_metric_families(text):
                suffixes = {
                    "counter": ("_total", "_created"),
                    "histogram": ("_bucket", "_sum", "_count", "_created"),
                    "summary": ("_sum", "_count", "_created"),
                }.get(family.type, ("",))
                names |= {family.name + suffix for suffix in suffixes}
    assert "relay_polls_total" in names
    return frozenset(names)


GRAFANA_VARIABLES = re.compile(r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)}")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana's interval variables stand for a duration)."""
    parsed = promql_parser.parse(GRAFANA_VARIABLES.sub("5m", expr))
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(parsed, visit)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    return [t["expr"] for panel in dashboard()["panels"] for t in panel.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    assert board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
    occupied: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24
        cells = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
    assert len(dashboard_exprs()) >= 15


def test_the_dashboard_queries_only_metrics_the_relay_exports(exported: frozenset[str]) -> None:
    used = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    assert used - exported - PENDING_METRICS - PROMETHEUS_OWN == set()
    exported_families = {metric_family(name) for name in exported if name.startswith("relay_")}
    assert exported_families - {metric_family(name) for name in used} == set(), "every metric has a panel"


def metric_family(series: str) -> str:
    """``relay_polls`` for ``relay_polls_total``, ``relay_delivery_attempt_seconds`` for its ``_bucket``."""
    for suffix in ("_total", "_created", "_bucket", "_sum", "_count"):
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def test_the_alert_rules_query_only_metrics_the_relay_exports(exported: frozenset[str]) -> None:
    used = {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert used - exported - PENDING_METRICS - PROMETHEUS_OWN == set()


def test_pending_metrics_are_still_missing(exported: frozenset[str]) -> None:
    assert PENDING_METRICS & exported == set(), "now exported: remove it from PENDING_METRICS"


def test_every_alert_says_what_it_means_and_where_its_runbook_is() -> None:
    guide = OPERATIONS.read_text()
    headings = {heading_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", guide, flags=re.MULTILINE)}
    rules = alert_rules()
    asked_for = {"RelayPollerStalled", "RelayDeliveryBacklogGrowing", "RelayDeliveriesFailing"}  # by issue #6
    assert {r["alert"] for r in rules} >= asked_for
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert {"summary", "description", "runbook"} <= set(rule["annotations"])
        anchor = rule["annotations"]["runbook"].removeprefix("docs/operations.md#")
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"docs/operations.md has no section for {rule['alert']}"


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- promtool -----------------------------------------------------------------------------------------------


@pytest.fixture
def promtool() -> str:
    return require_tool("promtool", ".ci/run installs it from Debian's prometheus package")


def test_promtool_accepts_the_alert_rules_and_their_unit_tests(promtool: str) -> None:
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", str(ALERTS.parent / "alerts.test.yaml")]):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_prometheus_configuration(promtool: str, tmp_path: Path) -> None:
    """Debian's promtool is built without Kubernetes discovery, so that one block is swapped for static targets;
    the relabelling rules, the rule file and everything else are checked as written."""
    config = yaml.safe_load((ALERTS.parent / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["relay"]}}]
    job["static_configs"] = [{"targets": ["relay-api:8080"]}]
    del job["kubernetes_sd_configs"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ALERTS, tmp_path / "alerts.yaml")
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the guide ----------------------------------------------------------------------------------------------


def test_the_operations_guide_walks_through_every_file() -> None:
    guide = OPERATIONS.read_text()
    for path in [*manifest_files(), DOCKERFILE, COMPOSE, DASHBOARD, ALERTS, DEPLOY / "relay.env.example"]:
        assert str(path.relative_to(ROOT)) in guide, f"docs/operations.md never mentions {path.relative_to(ROOT)}"
    assert "docs/operations.md" in (ROOT / "README.md").read_text()
    headings = {heading_anchor(h) for h in re.findall(r"^#{1,4} (.+)$", guide, flags=re.MULTILINE)}
    assert set(re.findall(r"\]\(#([^)]+)\)", guide)) - headings == set(), "links to sections that do not exist"


def test_the_kubernetes_examples_in_the_guide_are_valid() -> None:
    """The YAML examples in docs/operations.md of Kubernetes' own kinds (the Ingress) validate like the manifests;
    custom resources (the PodMonitor) have no schema here and are left out."""
    blocks = re.findall(r"```yaml\n(.*?)```", OPERATIONS.read_text(), flags=re.DOTALL)
    checked = 0
    for block in blocks:
        doc = yaml.safe_load(block)
        if not isinstance(doc, dict) or "apiVersion" not in doc or doc["apiVersion"].startswith("monitoring.coreos"):
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 1
