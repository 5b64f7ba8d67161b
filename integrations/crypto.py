"""Webhook signing secrets at rest: they must be recoverable (an HMAC needs the secret itself, not a
hash), so they are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under keys from the settings."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations import db
from integrations.settings import IntegrationsSettings

log = structlog.get_logger(__name__)


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        # The first key encrypts; every key decrypts, so an old key can stay listed during a rotation.
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, token: bytes) -> str:
        return self._fernet.decrypt(token).decode()


async def load_box(engine: AsyncEngine, settings: IntegrationsSettings) -> SecretBox:
    if settings.webhook_encryption_keys is not None:
        keys = [
            k.strip() for k in settings.webhook_encryption_keys.get_secret_value().split(",") if k.strip()
        ]
        return SecretBox(keys)
    # No key configured: one generated once and shared by every replica through the database. It keeps
    # `./run.sh` working out of the box; it is no protection against someone who reads the database.
    log.warning("webhook_secrets_key_in_database", hint="set WEBHOOK_ENCRYPTION_KEYS")
    async with engine.begin() as conn:
        key = await db.keyring_key(conn, Fernet.generate_key().decode(), datetime.now(UTC))
    return SecretBox([key])
