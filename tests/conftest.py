"""One real platform per test session: embedded nats-server and PostgreSQL, migrations applied once,
every service as its own process, the gateway on a free port. Each test makes its own tenant."""

from __future__ import annotations

import ipaddress
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.tokens import generate_private_key_pem
from sre_copilot.embedded import free_port
from sre_copilot.supervisor import Platform
from tests.platforms import bus_of, database_of, started

PREVIOUS_SIGNING_KEY = "jwt-previous-signing-key.pem"
# Websockets one organisation may hold open (the session's LIVE_MAX_CONNECTIONS_PER_TENANT).
LIVE_MAX_CONNECTIONS_PER_TENANT = 20
# The session's key for webhook secrets at rest (tests decrypt with it to check what is stored).
WEBHOOK_ENCRYPTION_KEY = Fernet.generate_key().decode()


# On-call: notifications go to the test's own receivers (a webhook on loopback, an SMTP server on
# this port, started once for the session), and escalations are looked at five times a second.
ONCALL_SMTP_PORT = free_port()
# Slack DMs go to a stand-in for Slack's Web API on this port (tests/e2e/test_slack_actions.py starts
# it), from an app whose signing secret is this: the DM's Acknowledge button is interactive.
ONCALL_SLACK_PORT = free_port()
ONCALL_SLACK_SIGNING_SECRET = secrets.token_hex(16)
ONCALL_ENV = {
    "NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
    "SLACK_BOT_TOKEN": "xoxb-test-token",
    "SLACK_API_URL": f"http://127.0.0.1:{ONCALL_SLACK_PORT}/api",
    "SLACK_SIGNING_SECRET": ONCALL_SLACK_SIGNING_SECRET,
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": str(ONCALL_SMTP_PORT),
    "ESCALATION_POLL_SECONDS": "0.2",
    "NOTIFY_TIMEOUT_SECONDS": "5",
}


@dataclass
class Mailbox:
    """What the session's SMTP server received."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=email_policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in list(self.messages) if address in str(m["To"])]


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=ONCALL_SMTP_PORT)
    controller.start()
    yield box
    controller.stop()


def fresh_address() -> str:
    """A client address of its own (in 198.18.0.0/15, the range set aside for testing networks)."""
    return str(ipaddress.IPv4Address("198.18.0.0") + secrets.randbelow(2**17))


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    state = tmp_path_factory.mktemp("platform")
    env = {
        # INFO: one line per request and command, which tests/e2e/test_ops_logs.py follows by
        # correlation id through every service's log file (`<state>/logs/<service>.log`).
        "LOG_LEVEL": os.environ.get("TEST_SERVICE_LOG_LEVEL", "INFO"),
        # Small (two projector batches), so the slow-client rule of the live feed shows quickly.
        "LIVE_QUEUE_SIZE": "1000",
        # A small cap on one organisation's websockets, so that reaching it takes a handful.
        "LIVE_MAX_CONNECTIONS_PER_TENANT": str(LIVE_MAX_CONNECTIONS_PER_TENANT),
    }
    # Auth also publishes a "previous" signing key, as after a key rotation; tests sign with it.
    previous_key = state / PREVIOUS_SIGNING_KEY
    previous_key.write_text(generate_private_key_pem())
    env["JWT_PREVIOUS_PUBLIC_KEY_FILES"] = str(previous_key)
    # The tests are the proxy: each test's client says it is its own address (X-Forwarded-For), so
    # per-address rate limits keep their production defaults without one test tripping another's.
    env["TRUSTED_PROXIES"] = '["127.0.0.1"]'
    # Small per-organisation caps, so that reaching them takes a handful of requests.
    env["MAX_ACTIVE_KEYS_PER_TENANT"] = "5"
    env["MAX_PENDING_INVITES_PER_TENANT"] = "10"
    # A shorter coalescing window than the default 2 s: the AI worker's tests wait it out. The offline
    # engine whatever the developer's environment holds: no test reaches the real Anthropic API.
    env["COALESCE_WINDOW_SECONDS"] = "0.5"
    env["AI_ENGINE"] = "rules"
    # Integrations: webhook receivers are local test servers (private addresses), retries are quick,
    # and a hanging receiver is given up on within five seconds.
    env["WEBHOOK_ENCRYPTION_KEYS"] = WEBHOOK_ENCRYPTION_KEY
    env["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    env["WEBHOOK_MAX_ATTEMPTS"] = "3"
    env["WEBHOOK_BACKOFF_BASE_SECONDS"] = "0.05"
    env["WEBHOOK_TIMEOUT_SECONDS"] = "5"
    env["INBOUND_BACKOFF_BASE_SECONDS"] = "0.1"
    # Each service prunes what aged past its retention every second (tests/integration/test_retention.py
    # waits for it), not every minute.
    env["PRUNE_INTERVAL_SECONDS"] = "1"
    env.update(ONCALL_ENV)
    # fsync off: still the real PostgreSQL server, only not crash-safe, which tests do not need.
    running = Platform(
        state_dir=state, port=free_port(), durable=False, extra_env=env, log_dir=state / "logs"
    )
    with started(running):
        yield running


@pytest.fixture(scope="session")
async def engine(platform: Platform) -> AsyncIterator[AsyncEngine]:
    async with database_of(platform, pool_size=5) as db:
        yield db


@pytest.fixture(scope="session")
async def nc(platform: Platform) -> AsyncIterator[Client]:
    async with bus_of(platform, "tests") as client:
        yield client


@pytest.fixture(scope="session")
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Forwarded-For": fresh_address()}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=15, headers=headers) as http:
        yield http


@dataclass
class Tenant:
    token: str
    email: str
    password: str
    tenant_id: str
    user_id: str
    body: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register_tenant(client: httpx.AsyncClient, org: str = "Acme") -> Tenant:
    suffix = uuid.uuid4().hex[:10]
    email, password = f"owner-{suffix}@example.com", f"correct-horse-{suffix}"
    response = await client.post(
        "/api/v1/auth/register",
        headers={"X-Forwarded-For": fresh_address()},
        json={
            "email": email,
            "password": password,
            "full_name": f"{org} Owner",
            "tenant_name": f"{org} {suffix}",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(body["access_token"], email, password, body["tenant"]["id"], body["user"]["id"], body)


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> Tenant:
    """A clean tenant for this test."""
    return await register_tenant(client)


INCIDENT = {
    "title": "High CPU usage on payment-api",
    "description": "CPU spiked to 90% after recent deployment at 10:30 AM",
    "service_name": "payment-api",
    "severity": "high",
}
