"""The deploy files: the Helm chart rendered and checked against Kubernetes' schemas, the compose
file through `docker-compose config`, and what each promises (probes, WebSockets, non-root, ...).

Offline: Helm and docker-compose are installed by deploy/test.sh, and the Kubernetes schemas
come with the kubernetes-validate package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "voicegraph"
COMPOSE = DEPLOY / "compose.yaml"
KUBERNETES = "1.33.0"
"""The Kubernetes version whose schemas the rendered manifests must meet."""
WEBSOCKET_TIMEOUT_S = 3600


def _tool(name: str) -> str:
    """A binary from the virtualenv (where deploy/test.sh puts helm) or the PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: run deploy/test.sh, which installs it"
    return found


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _render(*values: str) -> list[dict[str, Any]]:
    options = [arg for value in values for arg in ("--set", value)]
    text = _run(_tool("helm"), "template", "vg", str(CHART), *options)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} named {name}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def _api_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = _one(docs, "Deployment", "vg-voicegraph")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return dict(container)


DEFAULT = ()
EXTERNAL_GPU = (
    "apiKeys=key1:acme",
    "redis.bundled=false",
    "redis.url=redis://:secret@redis.example:6379/0",
    "chroma.bundled=false",
    "chroma.url=http://chroma.example:8000",
    "planner.gpu.enabled=true",
    "ingress.tlsSecretName=voicegraph-tls",
)
NO_AUTOSCALING = ("autoscaling.enabled=false", "replicaCount=3", "ingress.enabled=false")


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return _render(*DEFAULT)


@pytest.fixture(scope="module")
def external_gpu() -> list[dict[str, Any]]:
    return _render(*EXTERNAL_GPU)


# ---- Helm ----


@pytest.mark.parametrize("values", [DEFAULT, EXTERNAL_GPU, NO_AUTOSCALING], ids=["default", "external-gpu", "fixed"])
def test_chart_lints(values: tuple[str, ...]) -> None:
    options = [arg for value in values for arg in ("--set", value)]
    _run(_tool("helm"), "lint", "--strict", str(CHART), *options)


@pytest.mark.parametrize("values", [DEFAULT, EXTERNAL_GPU, NO_AUTOSCALING], ids=["default", "external-gpu", "fixed"])
def test_rendered_manifests_meet_the_kubernetes_schemas(values: tuple[str, ...]) -> None:
    docs = _render(*values)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_schema_check_refuses_a_wrong_manifest(default: list[dict[str, Any]]) -> None:
    """The check above can fail: a misspelt field and a wrong type are both refused."""
    misspelt = yaml.safe_load(yaml.safe_dump(_one(default, "Deployment")))
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES, strict=True)
    wrong_type = yaml.safe_load(yaml.safe_dump(_one(default, "Deployment")))
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES, strict=True)


def test_the_default_release_has_everything_it_needs(default: list[dict[str, Any]]) -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in default)
    assert kinds == [
        "ConfigMap/vg-voicegraph",
        "Deployment/vg-voicegraph",
        "HorizontalPodAutoscaler/vg-voicegraph",
        "Ingress/vg-voicegraph",
        "PodDisruptionBudget/vg-voicegraph",
        "Secret/vg-voicegraph",
        "Service/vg-voicegraph",
        "Service/vg-voicegraph-chroma",
        "Service/vg-voicegraph-redis",
        "StatefulSet/vg-voicegraph-chroma",
        "StatefulSet/vg-voicegraph-redis",
    ]


def test_probes_ask_readiness_of_redis_and_liveness_of_the_process(default: list[dict[str, Any]]) -> None:
    container = _api_container(default)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "http"
        # Without API keys the service refuses a Host that is not loopback (or allowed).
        assert {"name": "Host", "value": "localhost"} in get["httpHeaders"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_pods_run_as_non_root_on_a_read_only_root(default: list[dict[str, Any]]) -> None:
    pod = _one(default, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    container = _api_container(default)
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/var/lib/voicegraph", "/tmp"}
    redis = _one(default, "StatefulSet", "vg-voicegraph-redis")["spec"]["template"]["spec"]
    assert redis["securityContext"]["runAsNonRoot"] is True


def test_two_replicas_scale_out_and_one_always_stays(default: list[dict[str, Any]]) -> None:
    assert _one(default, "Deployment")["spec"]["replicas"] == 2
    hpa = _one(default, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vg-voicegraph"}
    pdb = _one(default, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 1
    selector = _one(default, "Deployment")["spec"]["selector"]["matchLabels"]
    assert pdb["selector"]["matchLabels"] == selector == _one(default, "Service", "vg-voicegraph")["spec"]["selector"]


def test_without_autoscaling_the_replica_count_is_the_values(default: list[dict[str, Any]]) -> None:
    docs = _render(*NO_AUTOSCALING)
    assert _one(docs, "Deployment")["spec"]["replicas"] == 3
    assert not [d for d in docs if d["kind"] in {"HorizontalPodAutoscaler", "Ingress"}]


def test_the_ingress_keeps_websockets_and_event_streams_open(default: list[dict[str, Any]]) -> None:
    ingress = _one(default, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-http-version"] == "1.1"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= WEBSOCKET_TIMEOUT_S
    assert int(notes["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= WEBSOCKET_TIMEOUT_S
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "vg-voicegraph", "port": {"name": "http"}}
    config = _one(default, "ConfigMap")["data"]
    assert rule["host"] in config["VOICEGRAPH_ALLOWED_HOSTS"].split(",")


def test_bundled_redis_keeps_an_append_only_file(default: list[dict[str, Any]]) -> None:
    redis = _one(default, "StatefulSet", "vg-voicegraph-redis")["spec"]
    args = redis["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert redis["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config = _one(default, "ConfigMap")["data"]
    assert config["VOICEGRAPH_REDIS_URL"] == "redis://vg-voicegraph-redis:6379/0"
    assert config["VOICEGRAPH_CHROMA_URL"] == "http://vg-voicegraph-chroma:8000"
    assert config["VOICEGRAPH_PLANNER"] == "cascade" and "VOICEGRAPH_PLANNER_URL" not in config


def test_external_stores_and_the_gpu_planner(external_gpu: list[dict[str, Any]]) -> None:
    assert not [d for d in external_gpu if d["kind"] == "StatefulSet"]
    secret = _one(external_gpu, "Secret")["stringData"]
    assert secret == {
        "VOICEGRAPH_REDIS_URL": "redis://:secret@redis.example:6379/0",
        "VOICEGRAPH_API_KEYS": "key1:acme",
    }
    config = _one(external_gpu, "ConfigMap")["data"]
    assert "secret" not in yaml.safe_dump(config)
    assert config["VOICEGRAPH_CHROMA_URL"] == "http://chroma.example:8000"
    assert config["VOICEGRAPH_PLANNER"] == "step-audio-2"
    assert config["VOICEGRAPH_PLANNER_URL"] == "http://vg-voicegraph-planner:8000/v1"
    planner = _one(external_gpu, "Deployment", "vg-voicegraph-planner")["spec"]["template"]["spec"]
    [vllm] = planner["containers"]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--served-model-name=step-audio-2-mini" in vllm["args"]
    assert _one(external_gpu, "Service", "vg-voicegraph-planner")["spec"]["ports"][0]["port"] == 8000
    assert _one(external_gpu, "Ingress")["spec"]["tls"] == [
        {"hosts": ["voicegraph.example.com"], "secretName": "voicegraph-tls"}
    ]


def test_an_external_redis_needs_its_url() -> None:
    done = subprocess.run(
        [_tool("helm"), "template", "vg", str(CHART), "--set", "redis.bundled=false"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "redis.url is required" in done.stderr


def test_pods_roll_when_their_settings_change() -> None:
    def checksums(*values: str) -> dict[str, str]:
        annotations = _one(_render(*values), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return {k: v for k, v in annotations.items() if k.startswith("checksum/")}

    before = checksums()
    assert checksums("config.VOICEGRAPH_SESSION_TTL_S=60")["checksum/config"] != before["checksum/config"]
    assert checksums("apiKeys=k:t")["checksum/secret"] != before["checksum/secret"]


# ---- Compose ----


@pytest.mark.parametrize("profile", ["", "planner-cpu", "planner-gpu", "tracing"])
def test_compose_file_passes_its_own_config_check(profile: str) -> None:
    options = ["--profile", profile] if profile else []
    env = ["--env-file", str(DEPLOY / f"{profile}.env")] if (DEPLOY / f"{profile}.env").exists() else []
    _run(_tool("docker-compose"), "-f", str(COMPOSE), *env, *options, "config", "--quiet")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_compose_runs_two_replicas_behind_a_websocket_load_balancer(compose: dict[str, Any]) -> None:
    services = compose["services"]
    replicas = [name for name, service in services.items() if service.get("image") == "voicegraph:latest"]
    assert replicas == ["voicegraph-1", "voicegraph-2"]
    for name in replicas:
        env = services[name]["environment"]
        assert env["VOICEGRAPH_REDIS_URL"] == "redis://redis:6379/0"
        assert env["VOICEGRAPH_CHROMA_URL"] == "http://chroma:8000"
        assert services[name]["build"]["target"] == "runtime"
    lb = services["lb"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    nginx = (DEPLOY / "nginx.conf").read_text()
    upstream = re.search(r"upstream voicegraph \{(.*?)\}", nginx, re.S)
    assert upstream and re.findall(r"server (\S+)", upstream.group(1)) == ["voicegraph-1:8000", "voicegraph-2:8000"]
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx
    assert "proxy_set_header Connection $connection_upgrade;" in nginx
    assert "proxy_http_version 1.1;" in nginx
    assert f"proxy_read_timeout {WEBSOCKET_TIMEOUT_S}s;" in nginx


def test_compose_redis_keeps_an_append_only_file(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]


def test_compose_profiles(compose: dict[str, Any]) -> None:
    profiles = {name: s.get("profiles", []) for name, s in compose["services"].items()}
    assert profiles["planner-cpu"] == ["planner-cpu"] and profiles["planner-gpu"] == ["planner-gpu"]
    assert profiles["otel-collector"] == profiles["jaeger"] == ["tracing"]
    assert [name for name, p in profiles.items() if not p] == [
        "voicegraph-1",
        "voicegraph-2",
        "lb",
        "redis",
        "chroma",
    ]
    assert compose["services"]["planner-cpu"]["build"]["target"] == "planner-cpu"
    gpu = compose["services"]["planner-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    cpu_env = dict(line.split("=", 1) for line in _env_lines(DEPLOY / "planner-cpu.env"))
    assert (
        cpu_env["VOICEGRAPH_PLANNER"] == "openai" and cpu_env["VOICEGRAPH_PLANNER_URL"] == "http://planner-cpu:8080/v1"
    )
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert collector["service"]["pipelines"]["traces"]["exporters"] == ["otlp/jaeger"]


def _env_lines(path: Path) -> Iterator[str]:
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.strip()


def test_every_setting_the_deploy_files_name_is_one_the_service_reads() -> None:
    """A misspelt VOICEGRAPH_ variable would be ignored silently (extra="ignore")."""
    known = {f"VOICEGRAPH_{name.upper()}" for name in Settings.model_fields}
    files = [COMPOSE, DEPLOY / "planner-cpu.env", DEPLOY / "planner-gpu.env", ROOT / "Dockerfile"]
    files += sorted(CHART.rglob("*.yaml")) + sorted(CHART.rglob("*.tpl"))
    named = {(path.name, name) for path in files for name in re.findall(r"VOICEGRAPH_[A-Z0-9_]+", path.read_text())}
    assert len({name for _, name in named}) > 15
    unknown = sorted((path, name) for path, name in named if name not in known)
    assert not unknown, unknown


# ---- Dockerfile ----


def _stage(dockerfile: str, name: str) -> str:
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", dockerfile, re.S | re.M)
    assert match, f"no stage {name}"
    return match.group(1)


def test_the_image_is_built_by_bootstrap_and_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", dockerfile, re.M)
    assert [name for _, name in stages] == ["build", "planner-build", "runtime-base", "planner-cpu", "runtime"]
    assert "bash deploy/bootstrap.sh" in _stage(dockerfile, "build")  # and with it `voicegraph models prepare`
    runtime = _stage(dockerfile, "runtime")
    assert "COPY --from=build /opt/voicegraph/ /opt/voicegraph/" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", runtime, re.M)
    assert 'CMD ["voicegraph", "serve"]' in runtime
    planner = _stage(dockerfile, "planner-cpu")
    assert re.search(r"^USER 10001:10001$", planner, re.M) and "HEALTHCHECK" in planner
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1] == "*" and "!deploy/bootstrap.sh" in ignored and "!tests/" not in ignored
