"""The files that build, ship and watch the platform, checked where no Docker, GitHub runner or
Prometheus is at hand: the workflows and compose.yaml against their published JSON schemas
(vendored by check-jsonschema), the Dockerfile through BuildKit's own parser (`dockerfile`), the
Prometheus and Alertmanager files for the keys they need."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import dockerfile
import yaml

from contracts.subjects import SERVICES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
SEVERITIES = {"critical", "high", "medium", "low"}


def schema_errors(schema: str, *files: Path) -> str:
    """Empty when every file validates against the vendored schema, else the validator's report."""
    done = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", f"vendor.{schema}", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def steps_run(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_workflows_follow_the_github_schema() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "images.yml"}
    assert schema_errors("github-workflows", *files) == ""


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = load(WORKFLOWS / "ci.yml")
    broken["jobs"]["lint"]["runs-on"] = {"labels": 3}
    broken["jobs"]["lint"]["steps"][0] = {"uses": "actions/checkout@v4", "whith": {}}
    target = tmp_path / "broken.yml"
    target.write_text(yaml.safe_dump(broken))
    assert schema_errors("github-workflows", target) != ""


def test_ci_runs_lint_types_tests_and_the_console() -> None:
    workflow = load(WORKFLOWS / "ci.yml")
    jobs = workflow["jobs"]
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    lint = steps_run(jobs["lint"])
    for command in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy ."):
        assert command in lint
    # The tests job runs the README's command, as .ci/run does, with the versions it needs.
    assert "./test.sh" in steps_run(jobs["test"])
    assert "exec ./test.sh" in (ROOT / ".ci" / "run").read_text()
    uses = {step.get("uses", "").split("@")[0]: step for step in jobs["test"]["steps"]}
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert uses["actions/setup-node"]["with"]["node-version"] == "20"
    # No service containers: the tests start their own nats-server and PostgreSQL.
    assert all("services" not in job for job in jobs.values())
    console = jobs["console"]
    assert console["defaults"]["run"]["working-directory"] == "web"
    console_steps = steps_run(console)
    for command in ("npm ci", "npm run build", "npm test"):
        assert command in console_steps
    scripts = json.loads((ROOT / "web" / "package.json").read_text())["scripts"]
    assert {"build", "test"} <= set(scripts)


def test_coverage_covers_every_package_and_ci_keeps_the_reports() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    run = pyproject["tool"]["coverage"]["run"]
    found = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").split(".")[0] for pattern in found}
    assert set(run["source"]) == packages, "coverage measures every package the project ships"
    # The services are processes of their own: without these their handlers would never count.
    assert run["branch"] is True and run["parallel"] is True and run["sigterm"] is True
    assert "subprocess" in run["patch"]
    assert pyproject["tool"]["coverage"]["report"]["fail_under"] > 0
    assert "--cov" in (ROOT / "test.sh").read_text()
    jobs = load(WORKFLOWS / "ci.yml")["jobs"]
    for job, folder in (("test", "coverage/python/"), ("console", "coverage/web/")):
        uploads = [
            s["with"] for s in jobs[job]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
        ]
        assert any(folder in u["path"] for u in uploads), f"the {job} job keeps {folder}"
    assert "--coverage" in steps_run(jobs["console"])


def test_images_are_built_for_every_service() -> None:
    workflow = load(WORKFLOWS / "images.yml")
    build = workflow["jobs"]["build"]
    assert sorted(build["strategy"]["matrix"]["service"]) == sorted(["gateway", *SERVICES])
    action = next(s for s in build["steps"] if s.get("uses", "").startswith("docker/build-push-action"))
    assert action["with"]["build-args"] == "SERVICE=${{ matrix.service }}"
    assert action["with"]["push"] is False


def test_dockerfile_parses_and_copies_what_exists() -> None:
    commands = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    names = [c.cmd.upper() for c in commands]
    # Only ARGs may come before the first FROM.
    assert "FROM" in names and set(names[: names.index("FROM")]) <= {"ARG"}
    stages = {c.value[2].lower() for c in commands if c.cmd.upper() == "FROM" and len(c.value) == 3}
    for command in commands:
        if command.cmd.upper() not in {"COPY", "ADD"}:
            continue
        stage = next((f.split("=", 1)[1] for f in command.flags if f.startswith("--from=")), None)
        if stage is not None:  # from an earlier stage (or an image)
            assert stage.lower() in stages or ":" in stage or "/" in stage, command.original
            continue
        *sources, _target = command.value
        for source in sources:
            assert list(ROOT.glob(source)), f"{command.original}: {source} is not in the checkout"
    # Every service's image picks its service from the build argument (images.yml's matrix).
    assert any(c.cmd.upper() == "ARG" and c.value[0].startswith("SERVICE") for c in commands)
    env = " ".join(" ".join(c.value) for c in commands if c.cmd.upper() == "ENV")
    assert "SRE_COPILOT_SERVICE" in env


def test_compose_follows_the_compose_schema_and_watches_itself() -> None:
    assert schema_errors("compose-spec", ROOT / "compose.yaml") == ""
    compose = load(ROOT / "compose.yaml")
    services = compose["services"]
    for name in ("gateway", *SERVICES):
        assert services[name]["command"] == ["service", name]
    for name in ("prometheus", "alertmanager"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), volume


def test_prometheus_scrapes_the_gateway_and_loads_the_rules() -> None:
    config = load(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    platform = jobs["sre-copilot"]
    assert platform["metrics_path"] == "/metrics"
    assert platform["honor_labels"] is True
    assert platform["static_configs"][0]["targets"] == ["gateway:8000"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_alert_rules_are_complete_and_go_back_to_sre_copilot() -> None:
    rules = [
        r for group in load(ROOT / "deploy" / "prometheus" / "alerts.yml")["groups"] for r in group["rules"]
    ]
    names = {r["alert"] for r in rules}
    assert {"SreCopilotConsumerLagging", "SreCopilotOutboxStuck", "SreCopilotDeadLetters"} <= names
    for rule in rules:
        assert re.fullmatch(r"SreCopilot[A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in SEVERITIES
        assert rule["labels"]["service"].startswith("sre-copilot-")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
    receiver = load(ROOT / "deploy" / "alertmanager" / "alertmanager.yml")["receivers"][0]
    webhook = receiver["webhook_configs"][0]
    assert webhook["url"] == "http://gateway:8000/api/v1/integrations/alertmanager"
    assert webhook["http_config"]["authorization"]["credentials_file"] == "/etc/alertmanager/alerts.key"


def test_readme_documents_operating_and_developing() -> None:
    text = (ROOT / "README.md").read_text()
    assert "## Operating" in text and "## Developing" in text
