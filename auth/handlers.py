"""auth's commands on the bus: register, login, jwks."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError

from auth import db
from auth.domain import new_tenant_id, new_user_id, normalise_email, slugify
from auth.tokens import TokenIssuer
from contracts.commands import (
    CommandFailed,
    ErrorCode,
    Login,
    PublicKeys,
    RegisterTenant,
    TenantView,
    TokenGrant,
    UserView,
)
from contracts.envelope import EventEnvelope
from contracts.events import Role, TenantCreated, UserCreated
from runtime.outbox import stage
from runtime.service import Service

hasher = PasswordHasher()
# Verified when the email is unknown, so a login takes as long whether or not the account exists.
_DUMMY_HASH = hasher.hash("not-a-real-password")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def register_handlers(service: Service, issuer: TokenIssuer) -> None:
    @service.command("cmd.auth.register", RegisterTenant)
    async def register(cmd: RegisterTenant) -> TokenGrant:
        password_hash = await asyncio.to_thread(hasher.hash, cmd.password)
        tenant_id, user_id = new_tenant_id(), new_user_id()
        email = normalise_email(cmd.email)
        slug = slugify(cmd.tenant_name)
        events = [
            EventEnvelope(
                type="tenant.created",
                tenant_id=tenant_id,
                aggregate_id=tenant_id,
                actor=user_id,
                correlation_id=cmd.correlation_id,
                data=TenantCreated(name=cmd.tenant_name, slug=slug).model_dump(mode="json"),
            ),
            EventEnvelope(
                type="user.created",
                tenant_id=tenant_id,
                aggregate_id=user_id,
                actor=user_id,
                correlation_id=cmd.correlation_id,
                data=UserCreated(
                    user_id=user_id, email=email, full_name=cmd.full_name, role=Role.OWNER
                ).model_dump(mode="json"),
            ),
        ]
        try:
            async with service.engine.begin() as conn:
                await conn.execute(db.tenants.insert().values(id=tenant_id, name=cmd.tenant_name, slug=slug))
                await conn.execute(
                    db.users.insert().values(
                        id=user_id,
                        tenant_id=tenant_id,
                        email=email,
                        full_name=cmd.full_name,
                        password_hash=password_hash,
                        role=Role.OWNER.value,
                    )
                )
                await stage(conn, db.outbox, events)
        except IntegrityError as exc:
            raise CommandFailed(ErrorCode.CONFLICT, "an account with this email already exists") from exc
        seq = await service.relay.publish_now(events)
        return TokenGrant(
            access_token=issuer.issue(user_id, tenant_id, Role.OWNER),
            expires_in=issuer.ttl_seconds,
            user=UserView(
                id=user_id, email=email, full_name=cmd.full_name, role=Role.OWNER, tenant_id=tenant_id
            ),
            tenant=TenantView(id=tenant_id, name=cmd.tenant_name, slug=slug),
            seq=seq,
        )

    @service.command("cmd.auth.login", Login)
    async def login(cmd: Login) -> TokenGrant:
        async with service.engine.connect() as conn:
            user = await db.user_by_email(conn, normalise_email(cmd.email))
        valid = await asyncio.to_thread(_verify, user.password_hash if user else _DUMMY_HASH, cmd.password)
        if user is None or not valid or not user.is_active:
            raise CommandFailed(ErrorCode.UNAUTHORIZED, "invalid email or password")
        role = Role(user.role)
        return TokenGrant(
            access_token=issuer.issue(user.id, user.tenant_id, role),
            expires_in=issuer.ttl_seconds,
            user=UserView(
                id=user.id, email=user.email, full_name=user.full_name, role=role, tenant_id=user.tenant_id
            ),
            tenant=TenantView(id=user.tenant_id, name=user.tenant_name, slug=user.tenant_slug),
        )

    @service.broker.subscriber("cmd.auth.jwks", queue="auth")
    async def jwks(body: dict[str, object]) -> dict[str, object]:
        return PublicKeys.model_validate(issuer.jwks()).model_dump()
