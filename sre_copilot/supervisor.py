"""Runs the whole platform: embedded servers when no URLs are given, migrations, the streams, then
each service as its own process (restarted with back-off if it dies), the gateway last."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from contracts.subjects import SERVICES, ping_subject
from runtime.bus import connect, declare_streams
from sre_copilot import embedded
from sre_copilot.migrate import upgrade

log = structlog.get_logger("supervisor")

RUNTIME_FILE = "runtime.json"
MAX_BACKOFF_SECONDS = 30.0
# An embedded server is tried again sooner: every service waits on it.
SERVER_MAX_BACKOFF_SECONDS = 5.0
STORE_CHECK_SECONDS = 1.0


@dataclass
class Child:
    name: str
    module: str
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0


@dataclass
class Platform:
    state_dir: Path
    port: int = 8000
    host: str = "127.0.0.1"
    nats_url: str | None = None
    database_url: str | None = None
    durable: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: list[embedded.ServerProcess] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    # Each service's output goes to `<log_dir>/<service>.log` (appended) instead of this stderr.
    log_dir: Path | None = None
    # Restart a service when its code changes (`up --reload`, see sre_copilot/reload.py).
    reload: bool = False
    # Restart an embedded server that exits (PostgreSQL after a failed crash recovery) or whose
    # store failed (nats-server after a full disk). Off where a test restarts them by hand.
    restart_servers: bool = True
    # A local cluster (`up --nats-nodes 3 --replicas 2`): embedded NATS as that many routed nodes with
    # the streams replicated on up to three of them, and that many processes of every service (the
    # gateways sharing the port).
    nats_nodes: int = 1
    replicas: int = 1
    # Per server: failed restarts in a row, and when to try again.
    _server_retries: dict[str, tuple[int, float]] = field(default_factory=dict, init=False, repr=False)
    _next_store_check: float = field(default=0.0, init=False, repr=False)
    _waiting_for_room: bool = field(default=False, init=False, repr=False)

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _lock_state_dir(self) -> None:
        """Two installations may run side by side, but never two on the same data."""
        self._lock_file = (self.state_dir / "lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"another `sre-copilot up` is using {self.state_dir}; stop it or pick another --state-dir"
            ) from None

    def start_dependencies(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_state_dir()
        if not self.nats_url and self.nats_nodes > 1:
            nodes = embedded.start_nats_cluster(self.state_dir, self.nats_nodes, durable=self.durable)
            self.servers.extend(nodes)
            self.nats_url = ",".join(node.url for node in nodes)
            self.extra_env.setdefault("STREAM_REPLICAS", str(min(3, self.nats_nodes)))
        elif not self.nats_url:
            nats = embedded.start_nats(self.state_dir, durable=self.durable)
            self.servers.append(nats)
            self.nats_url = nats.url
        if not self.database_url:
            pg = embedded.start_postgres(self.state_dir, durable=self.durable)
            self.servers.append(pg)
            self.database_url = pg.url
        upgrade(self.database_url)
        asyncio.run(self._declare_streams())

    async def _declare_streams(self) -> None:
        assert self.nats_url
        from runtime.settings import StreamSettings

        replicas = self.extra_env.get("STREAM_REPLICAS")
        settings = StreamSettings(stream_replicas=int(replicas)) if replicas else StreamSettings()
        nc = await connect(self.nats_url, "supervisor", reconnect=False)
        try:
            await declare_streams(nc.jetstream(), settings)
        finally:
            await nc.close()

    def _signing_key_env(self) -> dict[str, str]:
        if os.environ.get("JWT_PRIVATE_KEY") or os.environ.get("JWT_PRIVATE_KEY_FILE"):
            return {}
        from auth.tokens import generate_private_key_pem

        key_file = self.state_dir / "jwt-signing-key.pem"
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(generate_private_key_pem())
        return {"JWT_PRIVATE_KEY_FILE": str(key_file.resolve())}

    def env(self) -> dict[str, str]:
        assert self.nats_url and self.database_url
        return {
            **os.environ,
            "NATS_URL": self.nats_url,
            "DATABASE_URL": self.database_url,
            "HOST": self.host,
            "PORT": str(self.port),
            **self._signing_key_env(),
            **self.extra_env,
        }

    def _replicas(self, module: str) -> list[Child]:
        if self.replicas == 1:
            return [Child(module, module)]
        return [Child(f"{module}-{n}", module) for n in range(1, self.replicas + 1)]

    def _spawn(self, child: Child, env: dict[str, str]) -> None:
        if self.replicas > 1:
            # Each replica's metrics and pings carry its name; every gateway listens on the one port
            # (SO_REUSEPORT) and the kernel spreads the clients.
            env = {**env, "INSTANCE": f"{socket.gethostname()}-{child.name}"}
            if child.module == "gateway":
                env["REUSE_PORT"] = "1"
        if self.log_dir is None:
            child.process = subprocess.Popen([sys.executable, "-m", child.module], env=env)
        else:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.log_dir / f"{child.name}.log").open("ab") as output:  # the child keeps its copy
                child.process = subprocess.Popen(
                    [sys.executable, "-m", child.module], env=env, stdout=output, stderr=subprocess.STDOUT
                )
        child.started_at = time.monotonic()
        log.info("service_spawned", service=child.name, pid=child.process.pid)

    def start_services(self, timeout: float = 60.0) -> None:
        env = self.env()
        self.children = [child for name in SERVICES for child in self._replicas(name)]
        for child in self.children:
            self._spawn(child, env)
        asyncio.run(self._until_services_answer(timeout))
        gateways = self._replicas("gateway")
        self.children.extend(gateways)
        for gateway in gateways:
            self._spawn(gateway, env)
        self._write_runtime_file()

    async def _until_services_answer(self, timeout: float) -> None:
        assert self.nats_url
        nc = await connect(self.nats_url, "supervisor", reconnect=False)
        deadline = time.monotonic() + timeout
        try:
            for name in SERVICES:
                while True:
                    try:
                        await nc.request(ping_subject(name), b"{}", timeout=0.5)
                        break
                    except Exception:
                        if self.stopping:
                            return
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"{name} did not start within {timeout:.0f} s") from None
                        await asyncio.sleep(0.1)
        finally:
            await nc.close()

    def wait_gateway(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            try:
                if httpx.get(f"{self.gateway_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        if self.stopping:
            return
        raise RuntimeError(f"the gateway did not answer on {self.gateway_url} within {timeout:.0f} s")

    def _write_runtime_file(self) -> None:
        info = {
            "pid": os.getpid(),
            "gateway_url": self.gateway_url,
            "nats_url": self.nats_url,
            "database_url": self.database_url,
            "embedded": [s.name for s in self.servers],
        }
        (self.state_dir / RUNTIME_FILE).write_text(json.dumps(info, indent=2))

    def supervise_once(self) -> None:
        """Restart any child that died, with exponential back-off; a child that ran a minute is forgiven.
        Then the embedded servers (see `_supervise_servers`)."""
        now = time.monotonic()
        if self.restart_servers and not self.stopping:
            self._supervise_servers(now)
        env: dict[str, str] | None = None
        for child in self.children:
            if child.process is None or child.process.poll() is None:
                continue
            if child.next_start == 0.0:
                uptime = now - child.started_at
                if uptime > 60:
                    child.restarts = 0
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**child.restarts)
                child.next_start = now + delay
                log.warning(
                    "service_died", service=child.name, code=child.process.returncode, restart_in_s=delay
                )
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                env = env or self.env()
                self._spawn(child, env)

    def _supervise_servers(self, now: float) -> None:
        """An embedded server that exited is started again on the same port and data. nats-server
        whose store failed to write (a full disk) keeps running but takes no publish on that stream
        until it restarts: it is restarted once the disk has room again. Meanwhile every service
        keeps its events in its outbox, and the relays publish them after the restart."""
        check_store = now >= self._next_store_check
        if check_store:
            self._next_store_check = now + STORE_CHECK_SECONDS
        for index, server in enumerate(self.servers):
            if server.process.poll() is not None:
                reason = f"exited with {server.process.returncode}"
            elif server.name.startswith("nats") and check_store:
                failure = embedded.nats_store_failure(server)
                if failure is None:
                    continue
                if not embedded.has_room(self.state_dir):
                    if not self._waiting_for_room:
                        log.error("nats_store_failed_waiting_for_space", error=failure)
                    self._waiting_for_room = True
                    continue
                self._waiting_for_room = False
                reason = failure
            else:
                continue
            attempts, not_before = self._server_retries.get(server.name, (0, 0.0))
            if now < not_before:
                continue
            log.warning("server_restarting", server=server.name, reason=reason, attempt=attempts + 1)
            try:
                self.servers[index] = embedded.restart(server, self.state_dir, self.durable)
            except (embedded.EmbeddedServerError, OSError) as exc:  # e.g. still no room to start
                delay = min(SERVER_MAX_BACKOFF_SECONDS, 0.5 * 2**attempts)
                log.error("server_restart_failed", server=server.name, error=str(exc), retry_in_s=delay)
                self._server_retries[server.name] = (attempts + 1, time.monotonic() + delay)
                continue
            self._server_retries.pop(server.name, None)
            log.info("server_restarted", server=server.name, pid=self.servers[index].process.pid)

    def restart(self, names: Collection[str], timeout: float = 15.0) -> None:
        """Stop these children and start them again at once (a reload, not a crash: no back-off).
        Children start in their usual order, the gateway last."""
        chosen = [child for child in self.children if child.name in names or child.module in names]
        for child in chosen:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in chosen:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)
        env = self.env()
        for child in chosen:
            child.restarts, child.next_start = 0, 0.0
            self._spawn(child, env)

    def stop(self, timeout: float = 15.0) -> None:
        self.stopping = True  # a supervising thread still running restarts nothing from here on
        for child in reversed(self.children):  # the gateway first: stop taking requests
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)
        for server in reversed(self.servers):
            server.stop()
        runtime_file = self.state_dir / RUNTIME_FILE
        if self.children and runtime_file.exists():  # ours: we got as far as starting services
            runtime_file.unlink()


def run_forever(platform: Platform) -> None:
    def request_stop(signum: int, frame: object) -> None:
        platform.stopping = True

    # The store checks ask each nats-server's /healthz every second: not a line each in the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        platform.start_dependencies()
        if platform.stopping:
            return
        platform.start_services()
        platform.wait_gateway()
        if not platform.stopping:
            log.info("platform_ready", url=platform.gateway_url, docs=f"{platform.gateway_url}/docs")
        if platform.reload:
            from sre_copilot.reload import supervise_with_reload

            supervise_with_reload(platform)
        while not platform.stopping:
            platform.supervise_once()
            time.sleep(0.25)
    finally:
        log.info("platform_stopping")
        platform.stop()
