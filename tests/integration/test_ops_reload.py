"""`up --reload`: a change to a service's code restarts that service's process; a change to the
shared runtime restarts it too. The watcher runs over a scratch source tree; the child is a real
auth service joining the session's bus (an extra replica with the session's keys)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sre_copilot.reload import supervise_with_reload
from sre_copilot.supervisor import Child, Platform
from tests.conftest import PREVIOUS_SIGNING_KEY


def restarted_after_editing(child: Child, path: Path) -> int:
    """Edit `path` until the child runs under a new pid (the watcher may still be starting)."""
    assert child.process is not None
    before = child.process.pid
    for attempt in range(100):
        path.write_text(f"# edit {attempt}\n")
        for _ in range(10):
            if child.process.pid != before:
                return child.process.pid
            time.sleep(0.05)
    raise AssertionError(f"editing {path} did not restart {child.name}")


def test_editing_code_restarts_the_service_that_runs_it(platform: Platform, tmp_path: Path) -> None:
    source = tmp_path / "src"
    for package in ("runtime", "contracts", "auth"):
        (source / package).mkdir(parents=True)
        (source / package / "__init__.py").write_text("")
    dev = Platform(
        state_dir=tmp_path / "state",
        nats_url=platform.nats_url,
        database_url=platform.database_url,
        log_dir=tmp_path / "logs",
        reload=True,
        extra_env={
            "LOG_LEVEL": "WARNING",
            "JWT_PRIVATE_KEY_FILE": str(platform.state_dir / "jwt-signing-key.pem"),
            "JWT_PREVIOUS_PUBLIC_KEY_FILES": str(platform.state_dir / PREVIOUS_SIGNING_KEY),
        },
    )
    dev.state_dir.mkdir()
    auth = Child("auth", "auth")
    dev.children = [auth]
    dev._spawn(auth, dev.env())
    watcher = threading.Thread(target=supervise_with_reload, args=(dev, source), kwargs={"step_ms": 50})
    watcher.start()
    try:
        first = auth.process.pid if auth.process else None
        second = restarted_after_editing(auth, source / "auth" / "handlers.py")
        third = restarted_after_editing(auth, source / "runtime" / "outbox.py")
        assert len({first, second, third}) == 3
        assert auth.restarts == 0  # a reload, not a crash: no back-off
    finally:
        dev.stopping = True
        watcher.join(10)
        dev.stop()
    assert not watcher.is_alive()
    assert auth.process is not None and auth.process.poll() is not None
