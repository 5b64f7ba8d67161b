"""auth's wiring."""

from __future__ import annotations

from auth import db
from auth.handlers import register_handlers
from auth.settings import AuthSettings
from auth.tokens import TokenIssuer
from runtime.service import Service


def build() -> Service:
    settings = AuthSettings()
    service = Service("auth", settings, outbox=db.outbox)
    issuer = TokenIssuer(
        settings.private_key_pem(),
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_access_ttl_seconds,
        previous_key_pems=settings.previous_key_pems(),
        next_key_pems=settings.next_key_pems(),
    )
    register_handlers(service, issuer, settings)
    return service
