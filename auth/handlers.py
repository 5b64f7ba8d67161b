"""auth's commands on the bus: sessions (register, login, refresh, logout, password, invitations),
the organisation's users, integration keys, and the JWKS."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from auth import db
from auth.domain import (
    Limit,
    ManagementRefused,
    address_bucket,
    can_grant,
    check_member_change,
    family_expired,
    new_integration_key,
    new_invite_token,
    new_key_id,
    new_refresh_token,
    new_tenant_id,
    new_user_id,
    normalise_email,
    refresh_expiry,
    slugify,
)
from auth.passwords import check_new_password, hash_password, needs_rehash, verify_password
from auth.ratelimit import RateLimiter
from auth.settings import AuthSettings
from auth.tokens import TokenIssuer
from contracts.commands import (
    AcceptInvite,
    Caller,
    ChangePassword,
    ChangeUserRole,
    CommandFailed,
    CreateIntegrationKey,
    Done,
    ErrorCode,
    GetMember,
    IntegrationKeyAccepted,
    IntegrationKeyIssued,
    IntegrationKeyView,
    InviteIssued,
    InviteUser,
    Login,
    Logout,
    MemberAccepted,
    MemberView,
    PublicKeys,
    RefreshSession,
    RegisterTenant,
    RevokeIntegrationKey,
    SetUserActive,
    TenantView,
    TokenGrant,
    UserView,
)
from contracts.credentials import secret_sha256
from contracts.envelope import EventEnvelope
from contracts.events import (
    EventData,
    IntegrationKeyCreated,
    IntegrationKeyRevoked,
    KeyScope,
    Role,
    TenantCreated,
    UserActivated,
    UserCreated,
    UserDeactivated,
    UserInvited,
    UserPasswordChanged,
    UserReactivated,
    UserRoleChanged,
    UserStatus,
)
from runtime.outbox import stage
from runtime.service import Service

log = structlog.get_logger(__name__)

INVALID_LOGIN = "invalid email or password"
INVALID_REFRESH = "invalid or expired refresh token"


def _event(
    event_type: str,
    tenant_id: str,
    aggregate_id: str,
    version: int,
    actor: str,
    correlation_id: str,
    data: EventData,
) -> EventEnvelope:
    return EventEnvelope(
        type=event_type,
        tenant_id=tenant_id,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        actor=actor,
        correlation_id=correlation_id,
        data=data.model_dump(mode="json"),
    )


def _member(row: Any) -> MemberView:
    return MemberView(
        id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        full_name=row.full_name,
        role=Role(row.role),
        status=UserStatus(row.status),
        created_at=row.created_at,
    )


def _key_view(row: Any) -> IntegrationKeyView:
    return IntegrationKeyView(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        scopes=[KeyScope(s) for s in row.scopes],
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _refused(exc: ManagementRefused) -> CommandFailed:
    return CommandFailed(ErrorCode.FORBIDDEN if exc.forbidden else ErrorCode.CONFLICT, exc.reason)


async def _actor(conn: AsyncConnection, caller: Caller, needed: Role) -> Role:
    """The caller's role as auth knows it now (the token's may be older), if it is at least `needed`."""
    row = await db.user_by_id(conn, caller.user_id)
    if row is None or row.tenant_id != caller.tenant_id or row.status != UserStatus.ACTIVE:
        raise CommandFailed(ErrorCode.UNAUTHORIZED, "the caller is not an active user")
    role = Role(row.role)
    if not role.at_least(needed):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {role.value} may not do this")
    return role


async def _bump(conn: AsyncConnection, user_id: str, now: datetime, **values: Any) -> Any:
    """Update a user and advance its aggregate version; returns the updated row."""
    statement = (
        update(db.users)
        .where(db.users.c.id == user_id)
        .values(version=db.users.c.version + 1, updated_at=now, **values)
        .returning(db.users)
    )
    return (await conn.execute(statement)).one()


def register_handlers(service: Service, issuer: TokenIssuer, settings: AuthSettings) -> None:
    login_window = timedelta(seconds=settings.login_window_seconds)
    register_window = timedelta(seconds=settings.register_window_seconds)
    per_account = Limit(settings.login_max_failures_per_account, login_window)
    per_address = Limit(settings.login_max_failures_per_address, login_window)
    registrations_per_address = Limit(settings.register_max_per_address, register_window)
    registrations_per_email = Limit(settings.register_max_per_email, register_window)
    refresh_ttl = timedelta(seconds=settings.refresh_ttl_seconds)
    family_max_age = timedelta(seconds=settings.refresh_family_max_age_seconds)
    limiter: RateLimiter | None = None

    def rate_limiter() -> RateLimiter:
        nonlocal limiter
        if limiter is None:  # the engine exists only once the service has started
            limiter = RateLimiter(service.engine, max(login_window, register_window))
        return limiter

    async def open_session(conn: AsyncConnection, user_id: str, tenant_id: str, now: datetime) -> str:
        """A new refresh-token family for a fresh login; returns the token (kept only as a hash)."""
        token = new_refresh_token()
        await conn.execute(
            db.refresh_tokens.insert().values(
                id=uuid.uuid4(),
                token_hash=secret_sha256(token),
                family_id=uuid.uuid4(),
                user_id=user_id,
                tenant_id=tenant_id,
                created_at=now,
                family_created_at=now,
                expires_at=refresh_expiry(now, refresh_ttl, now, family_max_age),
            )
        )
        return token

    def grant(
        user: Any, refresh_token: str, seq: int | None = None, refresh_expires_in: int | None = None
    ) -> TokenGrant:
        role = Role(user.role)
        if refresh_expires_in is None:
            refresh_expires_in = int(min(refresh_ttl, family_max_age).total_seconds())
        return TokenGrant(
            access_token=issuer.issue(user.id, user.tenant_id, role, user.session_epoch),
            expires_in=issuer.ttl_seconds,
            refresh_token=refresh_token,
            refresh_expires_in=refresh_expires_in,
            user=UserView(
                id=user.id, email=user.email, full_name=user.full_name, role=role, tenant_id=user.tenant_id
            ),
            tenant=TenantView(id=user.tenant_id, name=user.tenant_name, slug=user.tenant_slug),
            seq=seq,
        )

    # ------------------------------------------------------------ sessions

    @service.command("cmd.auth.register", RegisterTenant)
    async def register(cmd: RegisterTenant) -> TokenGrant:
        email = normalise_email(cmd.email)
        check_new_password(cmd.password, email)
        await rate_limiter().acquire(
            [
                ("register_address", address_bucket(cmd.client_address), registrations_per_address),
                ("register_email", email, registrations_per_email),
            ]
        )
        password_hash = await hash_password(cmd.password)
        tenant_id, user_id = new_tenant_id(), new_user_id()
        slug = slugify(cmd.tenant_name)
        now = datetime.now(UTC)
        events = [
            _event(
                "tenant.created",
                tenant_id,
                tenant_id,
                1,
                user_id,
                cmd.correlation_id,
                TenantCreated(name=cmd.tenant_name, slug=slug),
            ),
            _event(
                "user.created",
                tenant_id,
                user_id,
                1,
                user_id,
                cmd.correlation_id,
                UserCreated(user_id=user_id, email=email, full_name=cmd.full_name, role=Role.OWNER),
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
                        status=UserStatus.ACTIVE.value,
                        created_at=now,
                        updated_at=now,
                    )
                )
                refresh_token = await open_session(conn, user_id, tenant_id, now)
                await stage(conn, db.outbox, events)
                user = await db.user_by_id(conn, user_id)
        except IntegrityError as exc:
            raise CommandFailed(ErrorCode.CONFLICT, "an account with this email already exists") from exc
        seq = await service.relay.publish_now(events)
        return grant(user, refresh_token, seq)

    @service.command("cmd.auth.login", Login)
    async def login(cmd: Login) -> TokenGrant:
        email = normalise_email(cmd.email)
        # Counted per email whether or not the account exists, so a lock-out reveals nothing either.
        attempts = await rate_limiter().acquire(
            [
                ("login_account", email, per_account),
                ("login_address", address_bucket(cmd.client_address), per_address),
            ]
        )
        async with service.engine.connect() as conn:
            user = await db.user_by_email(conn, email)
        valid = await verify_password(user.password_hash if user else None, cmd.password)
        if user is None or not valid or user.status != UserStatus.ACTIVE:
            raise CommandFailed(ErrorCode.UNAUTHORIZED, INVALID_LOGIN)
        # A success does not count against the address, and starts the account's count afresh.
        await rate_limiter().forget(attempts)
        await rate_limiter().clear("login_account", email)
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
            if needs_rehash(user.password_hash):
                new_hash = await hash_password(cmd.password)
                await conn.execute(
                    update(db.users).where(db.users.c.id == user.id).values(password_hash=new_hash)
                )
            refresh_token = await open_session(conn, user.id, user.tenant_id, now)
        return grant(user, refresh_token)

    @service.command("cmd.auth.refresh", RefreshSession)
    async def refresh(cmd: RefreshSession) -> TokenGrant:
        now = datetime.now(UTC)
        failure: str | None = None
        async with service.engine.begin() as conn:
            row = await db.refresh_token_by_hash(conn, secret_sha256(cmd.refresh_token))
            user = await db.user_by_id(conn, row.user_id) if row is not None else None
            if row is None or user is None or row.revoked_at is not None or row.expires_at <= now:
                failure = INVALID_REFRESH
            elif row.used_at is not None:
                # Rotated already: a second holder exists. Whoever it is, that login is over.
                await db.revoke_family(conn, row.family_id, now)
                log.warning("refresh_token_reused", user_id=row.user_id, family_id=str(row.family_id))
                failure = "refresh token reused: the session was revoked"
            elif user.status != UserStatus.ACTIVE:
                await db.revoke_family(conn, row.family_id, now)
                failure = INVALID_REFRESH
            elif family_expired(row.family_created_at, now, family_max_age):
                # However often it rotated, a login ends this long after it began.
                await db.revoke_family(conn, row.family_id, now)
                failure = "this login is too old: log in again"
            else:
                await conn.execute(
                    update(db.refresh_tokens).where(db.refresh_tokens.c.id == row.id).values(used_at=now)
                )
                token = new_refresh_token()
                expires_at = refresh_expiry(now, refresh_ttl, row.family_created_at, family_max_age)
                await conn.execute(
                    db.refresh_tokens.insert().values(
                        id=uuid.uuid4(),
                        token_hash=secret_sha256(token),
                        family_id=row.family_id,
                        user_id=row.user_id,
                        tenant_id=row.tenant_id,
                        created_at=now,
                        family_created_at=row.family_created_at,
                        expires_at=expires_at,
                    )
                )
        # Raised after the commit, so that a reuse's revocation sticks.
        if failure is not None:
            raise CommandFailed(ErrorCode.UNAUTHORIZED, failure)
        return grant(user, token, refresh_expires_in=max(0, int((expires_at - now).total_seconds())))

    @service.command("cmd.auth.logout", Logout)
    async def logout(cmd: Logout) -> Done:
        """Ends the login the refresh token belongs to. Unknown tokens get the same answer."""
        async with service.engine.begin() as conn:
            row = await db.refresh_token_by_hash(conn, secret_sha256(cmd.refresh_token))
            if row is not None:
                await db.revoke_family(conn, row.family_id, datetime.now(UTC))
        return Done()

    @service.command("cmd.auth.change_password", ChangePassword)
    async def change_password(cmd: ChangePassword) -> TokenGrant:
        caller = cmd.caller
        async with service.engine.connect() as conn:
            user = await db.user_by_id(conn, caller.user_id)
        if user is None or user.tenant_id != caller.tenant_id or user.status != UserStatus.ACTIVE:
            raise CommandFailed(ErrorCode.UNAUTHORIZED, "the caller is not an active user")
        check_new_password(cmd.new_password, user.email, "new_password")
        # Whoever holds a stolen access token must not get unlimited guesses at the password either.
        attempts = await rate_limiter().acquire([("login_account", user.email, per_account)])
        if not await verify_password(user.password_hash, cmd.current_password):
            raise CommandFailed(ErrorCode.FORBIDDEN, "the current password is wrong")
        await rate_limiter().forget(attempts)
        new_hash = await hash_password(cmd.new_password)
        now = datetime.now(UTC)
        async with service.engine.begin() as conn:
            updated = await _bump(
                conn,
                user.id,
                now,
                password_hash=new_hash,
                session_epoch=db.users.c.session_epoch + 1,
            )
            # Every other login ends: refresh tokens now, access tokens as soon as the gateway has
            # the new epoch (before this command answers).
            await db.revoke_user_sessions(conn, user.id, now)
            refresh_token = await open_session(conn, user.id, user.tenant_id, now)
            events = [
                _event(
                    "user.password_changed",
                    user.tenant_id,
                    user.id,
                    updated.version,
                    caller.user_id,
                    cmd.correlation_id,
                    UserPasswordChanged(user_id=user.id, session_epoch=updated.session_epoch),
                )
            ]
            await stage(conn, db.outbox, events)
            fresh = await db.user_by_id(conn, user.id)
        seq = await service.relay.publish_now(events)
        return grant(fresh, refresh_token, seq)

    # ------------------------------------------------------------ invitations and users

    @service.command("cmd.auth.invite", InviteUser)
    async def invite(cmd: InviteUser) -> InviteIssued:
        caller = cmd.caller
        email = normalise_email(cmd.email)
        token = new_invite_token()
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=settings.invite_ttl_seconds)
        user_id = new_user_id()
        event = _event(
            "user.invited",
            caller.tenant_id,
            user_id,
            1,
            caller.user_id,
            cmd.correlation_id,
            UserInvited(
                user_id=user_id,
                email=email,
                full_name=cmd.full_name,
                role=cmd.role,
                invited_by=caller.user_id,
                expires_at=expires_at,
            ),
        )
        try:
            async with service.engine.begin() as conn:
                actor = await _actor(conn, caller, Role.ADMIN)
                await db.lock_tenant(conn, caller.tenant_id)
                if (
                    await db.count_pending_invites(conn, caller.tenant_id)
                    >= settings.max_pending_invites_per_tenant
                ):
                    raise CommandFailed(
                        ErrorCode.CONFLICT,
                        f"at most {settings.max_pending_invites_per_tenant} invitations may be pending: "
                        "withdraw some (deactivate them) first",
                    )
                if not can_grant(actor, cmd.role):
                    raise CommandFailed(
                        ErrorCode.FORBIDDEN, f"role {actor.value} may not grant {cmd.role.value}"
                    )
                await conn.execute(
                    db.users.insert().values(
                        id=user_id,
                        tenant_id=caller.tenant_id,
                        email=email,
                        full_name=cmd.full_name,
                        password_hash=None,
                        role=cmd.role.value,
                        status=UserStatus.INVITED.value,
                        invite_token_hash=secret_sha256(token),
                        invite_expires_at=expires_at,
                        invited_by=caller.user_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await stage(conn, db.outbox, [event])
                row = await db.user_by_id(conn, user_id)
        except IntegrityError as exc:
            raise CommandFailed(ErrorCode.CONFLICT, "a user with this email already exists") from exc
        seq = await service.relay.publish_now([event])
        return InviteIssued(user=_member(row), invite_token=token, invite_expires_at=expires_at, seq=seq)

    @service.command("cmd.auth.accept_invite", AcceptInvite)
    async def accept_invite(cmd: AcceptInvite) -> TokenGrant:
        invalid = CommandFailed(ErrorCode.UNAUTHORIZED, "invalid or expired invitation")
        token_hash = secret_sha256(cmd.invite_token)
        now = datetime.now(UTC)
        async with service.engine.connect() as conn:
            pending = await db.user_by_invite(conn, token_hash)
        if pending is None or pending.invite_expires_at is None or pending.invite_expires_at <= now:
            raise invalid
        check_new_password(cmd.password, pending.email)
        password_hash = await hash_password(cmd.password)
        async with service.engine.begin() as conn:
            row = await db.user_by_invite(conn, token_hash)  # again, locked: used only once
            if row is None or row.status != UserStatus.INVITED:
                raise invalid
            full_name = cmd.full_name or row.full_name
            updated = await _bump(
                conn,
                row.id,
                now,
                password_hash=password_hash,
                status=UserStatus.ACTIVE.value,
                full_name=full_name,
                invite_token_hash=None,
                invite_expires_at=None,
            )
            refresh_token = await open_session(conn, row.id, row.tenant_id, now)
            events = [
                _event(
                    "user.activated",
                    row.tenant_id,
                    row.id,
                    updated.version,
                    row.id,
                    cmd.correlation_id,
                    UserActivated(user_id=row.id, full_name=full_name),
                )
            ]
            await stage(conn, db.outbox, events)
            user = await db.user_by_id(conn, row.id)
        seq = await service.relay.publish_now(events)
        return grant(user, refresh_token, seq)

    async def managed_user(conn: AsyncConnection, caller: Caller, user_id: str) -> tuple[Role, Any]:
        """The actor's current role and the target (locked); another tenant's user is not found."""
        actor = await _actor(conn, caller, Role.ADMIN)
        target = await db.user_by_id(conn, user_id, for_update=True)
        if target is None or target.tenant_id != caller.tenant_id:
            raise CommandFailed(ErrorCode.NOT_FOUND, "user not found")
        return actor, target

    @service.command("cmd.auth.change_role", ChangeUserRole)
    async def change_role(cmd: ChangeUserRole) -> MemberAccepted:
        caller = cmd.caller
        now = datetime.now(UTC)
        events: list[EventEnvelope] = []
        async with service.engine.begin() as conn:
            actor, target = await managed_user(conn, caller, cmd.user_id)
            try:
                check_member_change(caller.user_id, actor, target.id, Role(target.role), cmd.role)
            except ManagementRefused as exc:
                raise _refused(exc) from exc
            if target.role != cmd.role.value:
                updated = await _bump(conn, target.id, now, role=cmd.role.value)
                events.append(
                    _event(
                        "user.role_changed",
                        target.tenant_id,
                        target.id,
                        updated.version,
                        caller.user_id,
                        cmd.correlation_id,
                        UserRoleChanged(user_id=target.id, from_role=Role(target.role), to_role=cmd.role),
                    )
                )
                await stage(conn, db.outbox, events)
            row = await db.user_by_id(conn, target.id)
        seq = await service.relay.publish_now(events) if events else None
        return MemberAccepted(user=_member(row), seq=seq)

    @service.command("cmd.auth.get_member", GetMember)
    async def get_member(cmd: GetMember) -> MemberView:
        async with service.engine.connect() as conn:
            row = await db.user_by_id(conn, cmd.user_id)
        if row is None or row.tenant_id != cmd.tenant_id:
            raise CommandFailed(ErrorCode.NOT_FOUND, "user not found")
        return _member(row)

    @service.command("cmd.auth.set_active", SetUserActive)
    async def set_active(cmd: SetUserActive) -> MemberAccepted:
        caller = cmd.caller
        now = datetime.now(UTC)
        events: list[EventEnvelope] = []
        async with service.engine.begin() as conn:
            actor, target = await managed_user(conn, caller, cmd.user_id)
            try:
                check_member_change(caller.user_id, actor, target.id, Role(target.role), None)
            except ManagementRefused as exc:
                raise _refused(exc) from exc
            status = UserStatus(target.status)
            if not cmd.active and status is not UserStatus.DEACTIVATED:
                updated = await _bump(
                    conn,
                    target.id,
                    now,
                    status=UserStatus.DEACTIVATED.value,
                    session_epoch=db.users.c.session_epoch + 1,
                    invite_token_hash=None,
                    invite_expires_at=None,
                )
                await db.revoke_user_sessions(conn, target.id, now)
                data: EventData = UserDeactivated(user_id=target.id, session_epoch=updated.session_epoch)
                events.append(
                    _event(
                        "user.deactivated",
                        target.tenant_id,
                        target.id,
                        updated.version,
                        caller.user_id,
                        cmd.correlation_id,
                        data,
                    )
                )
            elif cmd.active and status is UserStatus.DEACTIVATED:
                if target.password_hash is None:
                    raise CommandFailed(
                        ErrorCode.CONFLICT,
                        "this user never accepted their invitation, so cannot be reactivated",
                    )
                updated = await _bump(conn, target.id, now, status=UserStatus.ACTIVE.value)
                events.append(
                    _event(
                        "user.reactivated",
                        target.tenant_id,
                        target.id,
                        updated.version,
                        caller.user_id,
                        cmd.correlation_id,
                        UserReactivated(user_id=target.id),
                    )
                )
            elif cmd.active and status is UserStatus.INVITED:
                raise CommandFailed(ErrorCode.CONFLICT, "this user has not accepted their invitation yet")
            await stage(conn, db.outbox, events)
            row = await db.user_by_id(conn, target.id)
        seq = await service.relay.publish_now(events) if events else None
        return MemberAccepted(user=_member(row), seq=seq)

    # ------------------------------------------------------------ integration keys

    @service.command("cmd.auth.create_key", CreateIntegrationKey)
    async def create_key(cmd: CreateIntegrationKey) -> IntegrationKeyIssued:
        caller = cmd.caller
        key_id = new_key_id()
        secret, secret_hash = new_integration_key(key_id)
        scopes = sorted(set(cmd.scopes))
        now = datetime.now(UTC)
        event = _event(
            "integration_key.created",
            caller.tenant_id,
            key_id,
            1,
            caller.user_id,
            cmd.correlation_id,
            IntegrationKeyCreated(
                key_id=key_id,
                name=cmd.name,
                scopes=scopes,
                secret_sha256=secret_hash,
                created_by=caller.user_id,
                created_at=now,
            ),
        )
        async with service.engine.begin() as conn:
            await _actor(conn, caller, Role.ADMIN)
            await db.lock_tenant(conn, caller.tenant_id)
            if await db.count_active_keys(conn, caller.tenant_id) >= settings.max_active_keys_per_tenant:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    f"at most {settings.max_active_keys_per_tenant} integration keys may be active: "
                    "revoke some first",
                )
            row = (
                await conn.execute(
                    db.integration_keys.insert()
                    .values(
                        id=key_id,
                        tenant_id=caller.tenant_id,
                        name=cmd.name,
                        scopes=[s.value for s in scopes],
                        secret_hash=secret_hash,
                        created_by=caller.user_id,
                        created_at=now,
                    )
                    .returning(db.integration_keys)
                )
            ).one()
            await stage(conn, db.outbox, [event])
        seq = await service.relay.publish_now([event])
        return IntegrationKeyIssued(key=_key_view(row), secret=secret, seq=seq)

    @service.command("cmd.auth.revoke_key", RevokeIntegrationKey)
    async def revoke_key(cmd: RevokeIntegrationKey) -> IntegrationKeyAccepted:
        caller = cmd.caller
        now = datetime.now(UTC)
        events: list[EventEnvelope] = []
        async with service.engine.begin() as conn:
            await _actor(conn, caller, Role.ADMIN)
            keys = db.integration_keys
            query = keys.select().where(keys.c.id == cmd.key_id, keys.c.tenant_id == caller.tenant_id)
            row = (await conn.execute(query.with_for_update())).first()
            if row is None:
                raise CommandFailed(ErrorCode.NOT_FOUND, "integration key not found")
            if row.revoked_at is None:
                row = (
                    await conn.execute(
                        update(keys).where(keys.c.id == row.id).values(revoked_at=now).returning(keys)
                    )
                ).one()
                events.append(
                    _event(
                        "integration_key.revoked",
                        caller.tenant_id,
                        row.id,
                        2,
                        caller.user_id,
                        cmd.correlation_id,
                        IntegrationKeyRevoked(key_id=row.id, revoked_at=now),
                    )
                )
                await stage(conn, db.outbox, events)
        seq = await service.relay.publish_now(events) if events else None
        return IntegrationKeyAccepted(key=_key_view(row), seq=seq)

    # ------------------------------------------------------------ keys that verify access tokens

    @service.broker.subscriber("cmd.auth.jwks", queue="auth")
    async def jwks(body: dict[str, object]) -> dict[str, object]:
        return PublicKeys.model_validate(issuer.jwks()).model_dump()
