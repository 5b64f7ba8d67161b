"""The deployment artifacts for real clusters, checked where no Docker or Kubernetes can run: the Helm
chart rendered by Helm's own Go SDK (helm-python-sdk) and every object validated against the
Kubernetes API schemas (kubernetes-validate, strict: no unknown fields); compose.cluster.yaml against
the compose specification (check-jsonschema); the NATS configuration by nats-server's own `-t`; the
Caddyfile by Caddy's own `validate` where Debian's caddy is installed; every probe command by the CLI
that runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from contracts.subjects import SERVICES
from sre_copilot.embedded import free_port, nats_server_binary

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sre-copilot"
CLUSTER = ROOT / "compose.cluster.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas here.
KUBERNETES = ("1.27", latest_version())
SECRETS = {"databaseUrl": "postgresql://sre:pw@db.example.com:5432/sre_copilot", "jwtPrivateKey": "PEM"}
NATS_DEPENDENCY = sorted((CHART / "charts").glob("nats-*.tgz"))


def render(values: dict[str, Any] | None = None, release: str = "sre-copilot") -> list[dict[str, Any]]:
    """`helm template` of the chart: every object it would install, hooks included."""
    chart = helm.Chart.load(str(CHART))
    merged = {"secrets": dict(SECRETS), **(values or {})}
    manifests = chart.render(merged, name=release, namespace="prod", is_install=True)
    return [
        doc
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def component(name: str) -> str:
    return f"sre-copilot-{name.replace('_', '-')}"


def schema_problems(objects: list[dict[str, Any]]) -> list[str]:
    problems = []
    for version in KUBERNETES:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{version} {obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    return problems


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def run_probe(command: list[str]) -> subprocess.CompletedProcess[str]:
    """A probe's command line as the CLI parses it, against a NATS that is not there: a usage error
    would exit 2; a well-formed probe gets as far as connecting and fails with 1."""
    assert command[0] == "sre-copilot"
    env = {**os.environ, "NATS_URL": f"nats://127.0.0.1:{free_port()}", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "sre_copilot", *command[1:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render({"ingress": {"enabled": True, "className": "nginx", "tlsSecretName": "sre-tls"}})


def test_every_rendered_object_follows_the_kubernetes_schemas(objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Job", "PodDisruptionBudget", "Service", "Ingress", "Secret"} <= kinds
    assert schema_problems(objects) == []


def test_the_schema_check_catches_a_broken_object(objects: list[dict[str, Any]]) -> None:
    deployment = dict(by_kind(objects, "Deployment")[component("gateway")])
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two", "replica": 2}}
    assert len(schema_problems([broken])) == len(KUBERNETES)


def test_helm_lint_finds_nothing_but_the_dependency_to_fetch() -> None:
    report = helm.lint(str(CHART), {"secrets": SECRETS}, strict=True)
    errors = [m for m in report["messages"] if m["severity"] >= 2]
    if NATS_DEPENDENCY:
        assert errors == []
    else:  # `helm dependency build` fetches it (README, Scaling out); no network here
        assert [e["error"] for e in errors] == ["chart directory is missing these dependencies: nats"]


def test_a_deployment_per_service_with_replicas_resources_and_a_budget(
    objects: list[dict[str, Any]],
) -> None:
    deployments = by_kind(objects, "Deployment")
    budgets = by_kind(objects, "PodDisruptionBudget")
    for name in ("gateway", *SERVICES):
        deployment = deployments[component(name)]
        assert deployment["spec"]["replicas"] == 2
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["args"] == ["service", name]
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        env = env_of(container)
        assert env["NATS_URL"] == "nats://sre-copilot-nats.prod.svc:4222"
        assert env["STREAM_REPLICAS"] == "3"
        assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "sre-copilot", "key": "DATABASE_URL"}}
        budget = budgets[component(name)]
        assert budget["spec"]["maxUnavailable"] == 1
        assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    auth = env_of(deployments[component("auth")]["spec"]["template"]["spec"]["containers"][0])
    assert auth["JWT_PRIVATE_KEY"] == {"secretKeyRef": {"name": "sre-copilot", "key": "JWT_PRIVATE_KEY"}}


def test_the_gateway_is_probed_over_http_and_served_through_the_ingress(
    objects: list[dict[str, Any]],
) -> None:
    (container,) = by_kind(objects, "Deployment")[component("gateway")]["spec"]["template"]["spec"][
        "containers"
    ]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert env_of(container)["HOST"] == "0.0.0.0"
    service = by_kind(objects, "Service")[component("gateway")]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    ingress = by_kind(objects, "Ingress")["sre-copilot"]["spec"]
    (path,) = ingress["rules"][0]["http"]["paths"]
    # One prefix for everything, the live feed's websocket (/api/v1/stream) included.
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"]["name"] == component("gateway")
    assert ingress["tls"][0]["secretName"] == "sre-tls"


def test_the_bus_only_services_are_probed_with_ping_commands_the_cli_runs(
    objects: list[dict[str, Any]],
) -> None:
    deployments = by_kind(objects, "Deployment")
    commands = set()
    for name in SERVICES:
        (container,) = deployments[component(name)]["spec"]["template"]["spec"]["containers"]
        readiness = container["readinessProbe"]["exec"]["command"]
        liveness = container["livenessProbe"]["exec"]["command"]
        assert readiness[:4] == ["sre-copilot", "ping", "--local", name]
        assert "--ignore-database" not in readiness and "--ignore-database" in liveness
        commands |= {tuple(readiness), tuple(liveness), tuple(container["startupProbe"]["exec"]["command"])}
    for command in sorted(commands)[:3]:
        done = run_probe(list(command))
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: cannot reach NATS at ")


def test_migrations_run_once_before_the_services(objects: list[dict[str, Any]]) -> None:
    job = by_kind(objects, "Job")["sre-copilot-migrate"]
    secret = by_kind(objects, "Secret")["sre-copilot"]
    hooks = {o["metadata"]["name"]: o["metadata"].get("annotations", {}) for o in (job, secret)}
    assert hooks["sre-copilot-migrate"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # The Secret it reads exists first: a hook too, of a lower weight.
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for deployment in by_kind(objects, "Deployment").values():
        assert "helm.sh/hook" not in deployment["metadata"].get("annotations", {})


def test_an_existing_secret_and_a_nats_of_your_own() -> None:
    objects = render(
        {
            "secrets": {"create": False, "existingSecret": "sre-prod"},
            "nats": {"enabled": False},
            "natsUrl": "nats://a:4222,nats://b:4222",
        }
    )
    assert "Secret" not in {o["kind"] for o in objects}
    (container,) = by_kind(objects, "Deployment")[component("incidents")]["spec"]["template"]["spec"][
        "containers"
    ]
    env = env_of(container)
    assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "sre-prod", "key": "DATABASE_URL"}}
    assert env["NATS_URL"] == "nats://a:4222,nats://b:4222"
    assert schema_problems(objects) == []


def test_what_is_missing_is_named() -> None:
    with pytest.raises(helm.HelmError, match=r"secrets\.databaseUrl"):
        render({"secrets": {"jwtPrivateKey": "PEM"}})
    with pytest.raises(helm.HelmError, match="natsUrl"):
        render({"nats": {"enabled": False}})
    with pytest.raises(helm.HelmError, match=r"secrets\.existingSecret"):
        render({"secrets": {"create": False}})


def test_nats_is_the_official_chart_with_three_jetstream_nodes_on_volumes() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (dependency,) = chart["dependencies"]
    assert dependency["name"] == "nats"
    assert dependency["repository"] == "https://nats-io.github.io/k8s/helm/charts/"
    assert dependency["condition"] == "nats.enabled"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    nats = values["nats"]["config"]
    assert nats["cluster"] == {"enabled": True, "replicas": 3}
    assert nats["jetstream"]["enabled"] is True
    assert nats["jetstream"]["fileStore"]["enabled"] is True
    assert nats["jetstream"]["fileStore"]["pvc"]["enabled"] is True
    assert nats["jetstream"]["memoryStore"]["enabled"] is False
    assert values["streamReplicas"] == nats["cluster"]["replicas"]


@pytest.mark.skipif(not NATS_DEPENDENCY, reason="charts/nats-*.tgz: run `helm dependency build` first")
def test_with_the_nats_chart_a_statefulset_of_three_on_claims() -> None:
    objects = render()
    (statefulset,) = by_kind(objects, "StatefulSet").values()
    assert statefulset["metadata"]["name"] == "sre-copilot-nats"
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["volumeClaimTemplates"]
    assert "sre-copilot-nats" in by_kind(objects, "Service")
    assert schema_problems([o for o in objects if o["kind"] != "Pod"]) == []


# compose.cluster.yaml


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CLUSTER.read_text())
    return loaded


def compose_schema_errors(path: Path) -> str:
    done = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def test_the_cluster_compose_file_follows_the_compose_schema(tmp_path: Path) -> None:
    assert compose_schema_errors(CLUSTER) == ""
    broken = yaml.safe_load(CLUSTER.read_text())
    broken["services"]["gateway"]["deploy"]["replicas"] = "two"
    broken["services"]["proxy"]["helthcheck"] = {}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert compose_schema_errors(tmp_path / "broken.yaml") != ""


def test_three_nats_nodes_each_named_with_a_volume_and_a_working_healthcheck(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    services = cluster["services"]
    nodes = [f"nats-{n}" for n in (1, 2, 3)]
    volumes = set()
    for node in nodes:
        spec = services[node]
        assert spec["environment"]["SERVER_NAME"] == node == spec["hostname"]
        # wget is in the alpine image only (the default nats image is scratch).
        assert spec["healthcheck"]["test"][:2] == ["CMD", "wget"]
        assert spec["image"].startswith("nats:") and spec["image"].endswith("-alpine")
        data, config = spec["volumes"]
        volumes.add(data.split(":")[0])
        assert config == "./deploy/nats-cluster.conf:/etc/nats/nats.conf:ro"
    assert len(volumes) == 3 and volumes <= set(cluster["volumes"])
    conf = (ROOT / "deploy" / "nats-cluster.conf").read_text()
    for node in nodes:
        assert f"//{node}:6222" in conf
        # nats-server's own check of the file, with each node's name.
        done = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(ROOT / "deploy" / "nats-cluster.conf")],
            capture_output=True,
            text=True,
            env={**os.environ, "SERVER_NAME": node},
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    # The single-node compose.yaml's healthcheck needs wget too.
    single = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["nats"]
    assert single["healthcheck"]["test"][1] != "wget" or single["image"].endswith("-alpine")


def test_two_replicas_of_every_service_on_the_cluster_after_migrating(cluster: dict[str, Any]) -> None:
    services = cluster["services"]
    commands = []
    for name in ("gateway", *SERVICES):
        spec = services[name]
        assert spec["command"] == ["service", name]
        assert spec["deploy"]["replicas"] == 2
        env = spec["environment"]
        assert env["NATS_URL"] == "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
        assert env["STREAM_REPLICAS"] == "3"
        assert spec["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        for node in ("nats-1", "nats-2", "nats-3"):
            assert spec["depends_on"][node] == {"condition": "service_healthy"}
        if name != "gateway":
            test = spec["healthcheck"]["test"]
            assert test == ["CMD", "sre-copilot", "ping", "--local", name]
            commands.append(test[1:])
    assert services["migrate"]["command"] == ["migrate"]
    assert "ports" not in services["gateway"]  # only through the proxy
    for command in commands[:2]:
        done = run_probe(command)
        assert done.returncode == 1 and done.stderr.startswith("error: cannot reach NATS at "), done.stderr


def test_the_proxy_is_an_official_image_in_front_of_every_gateway(cluster: dict[str, Any]) -> None:
    proxy = cluster["services"]["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert proxy["volumes"][0] == "./deploy/caddy/Caddyfile:/etc/caddy/Caddyfile:ro"
    assert proxy["depends_on"]["gateway"] == {"condition": "service_healthy"}
    caddyfile = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    assert "dynamic a gateway 8000" in caddyfile


@pytest.fixture
def caddy() -> Iterator[str]:
    binary = shutil.which("caddy")
    if binary is None:
        pytest.skip("Debian's caddy is not installed (apt-get install caddy)")
    yield binary


def test_caddy_accepts_the_caddyfile(caddy: str) -> None:
    done = subprocess.run(
        [
            caddy,
            "validate",
            "--adapter",
            "caddyfile",
            "--config",
            str(ROOT / "deploy" / "caddy" / "Caddyfile"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_both_compose_files_carry_the_nats_cli_for_backup_and_restore(cluster: dict[str, Any]) -> None:
    single = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for compose, servers in ((single, ["nats"]), (cluster, ["nats-1", "nats-2", "nats-3"])):
        box = compose["services"]["nats-box"]
        assert box["image"].startswith("natsio/nats-box:")
        assert box["profiles"] == ["tools"]  # never started by a plain `up`
        assert box["environment"]["NATS_URL"] == ",".join(f"nats://{s}:4222" for s in servers)
        assert box["volumes"] == ["./backup:/backup"]
