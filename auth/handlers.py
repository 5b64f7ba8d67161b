"""auth's commands on the bus: sessions (register, login, refresh, logout, password, invitations),
the organisation's users, integration keys, and the JWKS. Each handler parses nothing itself (the
command model did), asks domain.py what the change is, writes through db.py and stages the events
with the change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from auth import db
from auth.domain import (
    REFRESH_REFUSALS,
    Activation,
    Limit,
    ManagementRefused,
    PresentedToken,
    Refresh,
    activation,
    address_bucket,
    can_grant,
    check_member_change,
    event,
    new_integration_key,
    new_invite_token,
    new_key_id,
    new_refresh_token,
    new_tenant_id,
    new_user_id,
    normalise_email,
    refresh_expiry,
    refresh_verdict,
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
from contracts.subjects import AUTH_JWKS
from runtime.outbox import stage
from runtime.service import Service

log = structlog.get_logger(__name__)

INVALID_LOGIN = "invalid email or password"


@dataclass
class Auth:
    """What the handlers share: the service (its engine and relay), the token issuer, the settings
    and the limits read from them."""

    service: Service
    issuer: TokenIssuer
    settings: AuthSettings
    _limiter: RateLimiter | None = field(default=None, init=False)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.refresh_ttl_seconds)

    @property
    def family_max_age(self) -> timedelta:
        return timedelta(seconds=self.settings.refresh_family_max_age_seconds)

    def limit(self, max_attempts: int, window_seconds: float) -> Limit:
        return Limit(max_attempts, timedelta(seconds=window_seconds))

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:  # the engine exists only once the service has started
            s = self.settings
            longest = max(s.login_window_seconds, s.register_window_seconds)
            self._limiter = RateLimiter(self.service.engine, timedelta(seconds=longest))
        return self._limiter

    async def publish(self, events: list[EventEnvelope]) -> int | None:
        """The events just committed, published at once (the relay catches up if this fails)."""
        return await self.service.relay.publish_now(events) if events else None


# ---------------------------------------------------------------- what several handlers share


def member_view(row: Any) -> MemberView:
    return MemberView(
        id=row.id,
        tenant_id=row.tenant_id,
        email=row.email,
        full_name=row.full_name,
        role=Role(row.role),
        status=UserStatus(row.status),
        created_at=row.created_at,
    )


def key_view(row: Any) -> IntegrationKeyView:
    return IntegrationKeyView(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        scopes=[KeyScope(s) for s in row.scopes],
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def refused(exc: ManagementRefused) -> CommandFailed:
    return CommandFailed(ErrorCode.FORBIDDEN if exc.forbidden else ErrorCode.CONFLICT, exc.reason)


async def acting_role(conn: AsyncConnection, caller: Caller, needed: Role) -> Role:
    """The caller's role as auth knows it now (the token's may be older), if it is at least `needed`."""
    row = await db.user_by_id(conn, caller.user_id)
    if row is None or row.tenant_id != caller.tenant_id or row.status != UserStatus.ACTIVE:
        raise CommandFailed(ErrorCode.UNAUTHORIZED, "the caller is not an active user")
    role = Role(row.role)
    if not role.at_least(needed):
        raise CommandFailed(ErrorCode.FORBIDDEN, f"role {role.value} may not do this")
    return role


async def managed_user(conn: AsyncConnection, caller: Caller, user_id: str) -> tuple[Role, Any]:
    """The actor's current role and the target (locked); another tenant's user is not found."""
    actor = await acting_role(conn, caller, Role.ADMIN)
    target = await db.user_by_id(conn, user_id, for_update=True)
    if target is None or target.tenant_id != caller.tenant_id:
        raise CommandFailed(ErrorCode.NOT_FOUND, "user not found")
    return actor, target


async def open_session(auth: Auth, conn: AsyncConnection, user_id: str, tenant_id: str, now: datetime) -> str:
    """A new refresh-token family for a fresh login; returns the token (kept only as a hash)."""
    token = new_refresh_token()
    await db.insert_refresh_token(
        conn,
        token_hash=secret_sha256(token),
        family_id=uuid.uuid4(),
        user_id=user_id,
        tenant_id=tenant_id,
        now=now,
        family_created_at=now,
        expires_at=refresh_expiry(now, auth.refresh_ttl, now, auth.family_max_age),
    )
    return token


def grant(
    auth: Auth, user: Any, refresh_token: str, seq: int | None = None, refresh_expires_in: int | None = None
) -> TokenGrant:
    role = Role(user.role)
    if refresh_expires_in is None:
        refresh_expires_in = int(min(auth.refresh_ttl, auth.family_max_age).total_seconds())
    return TokenGrant(
        access_token=auth.issuer.issue(user.id, user.tenant_id, role, user.session_epoch),
        expires_in=auth.issuer.ttl_seconds,
        refresh_token=refresh_token,
        refresh_expires_in=refresh_expires_in,
        user=UserView(
            id=user.id, email=user.email, full_name=user.full_name, role=role, tenant_id=user.tenant_id
        ),
        tenant=TenantView(id=user.tenant_id, name=user.tenant_name, slug=user.tenant_slug),
        seq=seq,
    )


# ---------------------------------------------------------------- sessions


async def register(auth: Auth, cmd: RegisterTenant) -> TokenGrant:
    s = auth.settings
    email = normalise_email(cmd.email)
    check_new_password(cmd.password, email)
    await auth.limiter.acquire(
        [
            (
                "register_address",
                address_bucket(cmd.client_address),
                auth.limit(s.register_max_per_address, s.register_window_seconds),
            ),
            ("register_email", email, auth.limit(s.register_max_per_email, s.register_window_seconds)),
        ]
    )
    password_hash = await hash_password(cmd.password)
    tenant_id, user_id = new_tenant_id(), new_user_id()
    slug = slugify(cmd.tenant_name)
    now = datetime.now(UTC)
    events = [
        event(
            "tenant.created",
            tenant_id,
            tenant_id,
            1,
            user_id,
            cmd.correlation_id,
            TenantCreated(name=cmd.tenant_name, slug=slug),
        ),
        event(
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
        async with auth.service.engine.begin() as conn:
            await db.insert_tenant(conn, tenant_id, cmd.tenant_name, slug)
            await db.insert_user(
                conn,
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
            refresh_token = await open_session(auth, conn, user_id, tenant_id, now)
            await stage(conn, db.outbox, events)
            user = await db.user_by_id(conn, user_id)
    except IntegrityError as exc:
        raise CommandFailed(ErrorCode.CONFLICT, "an account with this email already exists") from exc
    return grant(auth, user, refresh_token, await auth.publish(events))


async def login(auth: Auth, cmd: Login) -> TokenGrant:
    s = auth.settings
    email = normalise_email(cmd.email)
    # Counted per email whether or not the account exists, so a lock-out reveals nothing either.
    attempts = await auth.limiter.acquire(
        [
            ("login_account", email, auth.limit(s.login_max_failures_per_account, s.login_window_seconds)),
            (
                "login_address",
                address_bucket(cmd.client_address),
                auth.limit(s.login_max_failures_per_address, s.login_window_seconds),
            ),
        ]
    )
    async with auth.service.engine.connect() as conn:
        user = await db.user_by_email(conn, email)
    valid = await verify_password(user.password_hash if user else None, cmd.password)
    if user is None or not valid or user.status != UserStatus.ACTIVE:
        raise CommandFailed(ErrorCode.UNAUTHORIZED, INVALID_LOGIN)
    # A success does not count against the address, and starts the account's count afresh.
    await auth.limiter.forget(attempts)
    await auth.limiter.clear("login_account", email)
    now = datetime.now(UTC)
    async with auth.service.engine.begin() as conn:
        if needs_rehash(user.password_hash):
            await db.set_password_hash(conn, user.id, await hash_password(cmd.password))
        refresh_token = await open_session(auth, conn, user.id, user.tenant_id, now)
    return grant(auth, user, refresh_token)


async def refresh(auth: Auth, cmd: RefreshSession) -> TokenGrant:
    now = datetime.now(UTC)
    async with auth.service.engine.begin() as conn:
        row = await db.refresh_token_by_hash(conn, secret_sha256(cmd.refresh_token))
        user = await db.user_by_id(conn, row.user_id) if row is not None else None
        presented = (
            PresentedToken(
                revoked=row.revoked_at is not None,
                used=row.used_at is not None,
                expires_at=row.expires_at,
                family_created_at=row.family_created_at,
                user_active=user.status == UserStatus.ACTIVE,
            )
            if row is not None and user is not None
            else None
        )
        verdict = refresh_verdict(presented, now, auth.family_max_age)
        if row is not None and verdict.revokes_family:
            await db.revoke_family(conn, row.family_id, now)
            if verdict is Refresh.REUSED:  # rotated already: a second holder exists
                log.warning("refresh_token_reused", user_id=row.user_id, family_id=str(row.family_id))
        if verdict is Refresh.ROTATE:
            assert row is not None
            await db.mark_refresh_token_used(conn, row.id, now)
            token = new_refresh_token()
            expires_at = refresh_expiry(now, auth.refresh_ttl, row.family_created_at, auth.family_max_age)
            await db.insert_refresh_token(
                conn,
                token_hash=secret_sha256(token),
                family_id=row.family_id,
                user_id=row.user_id,
                tenant_id=row.tenant_id,
                now=now,
                family_created_at=row.family_created_at,
                expires_at=expires_at,
            )
    # Raised after the commit, so that a reuse's revocation sticks.
    if verdict is not Refresh.ROTATE:
        raise CommandFailed(ErrorCode.UNAUTHORIZED, REFRESH_REFUSALS[verdict])
    return grant(auth, user, token, refresh_expires_in=max(0, int((expires_at - now).total_seconds())))


async def logout(auth: Auth, cmd: Logout) -> Done:
    """Ends the login the refresh token belongs to. Unknown tokens get the same answer."""
    async with auth.service.engine.begin() as conn:
        row = await db.refresh_token_by_hash(conn, secret_sha256(cmd.refresh_token))
        if row is not None:
            await db.revoke_family(conn, row.family_id, datetime.now(UTC))
    return Done()


async def change_password(auth: Auth, cmd: ChangePassword) -> TokenGrant:
    caller, s = cmd.caller, auth.settings
    async with auth.service.engine.connect() as conn:
        user = await db.user_by_id(conn, caller.user_id)
    if user is None or user.tenant_id != caller.tenant_id or user.status != UserStatus.ACTIVE:
        raise CommandFailed(ErrorCode.UNAUTHORIZED, "the caller is not an active user")
    check_new_password(cmd.new_password, user.email, "new_password")
    # Whoever holds a stolen access token must not get unlimited guesses at the password either.
    per_account = auth.limit(s.login_max_failures_per_account, s.login_window_seconds)
    attempts = await auth.limiter.acquire([("login_account", user.email, per_account)])
    if not await verify_password(user.password_hash, cmd.current_password):
        raise CommandFailed(ErrorCode.FORBIDDEN, "the current password is wrong")
    await auth.limiter.forget(attempts)
    new_hash = await hash_password(cmd.new_password)
    now = datetime.now(UTC)
    async with auth.service.engine.begin() as conn:
        updated = await db.bump_user(conn, user.id, now, end_sessions=True, password_hash=new_hash)
        # Every other login ends: refresh tokens now, access tokens as soon as the gateway has
        # the new epoch (before this command answers).
        await db.revoke_user_sessions(conn, user.id, now)
        refresh_token = await open_session(auth, conn, user.id, user.tenant_id, now)
        events = [
            event(
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
    return grant(auth, fresh, refresh_token, await auth.publish(events))


# ---------------------------------------------------------------- invitations and users


async def invite(auth: Auth, cmd: InviteUser) -> InviteIssued:
    caller, s = cmd.caller, auth.settings
    email = normalise_email(cmd.email)
    token = new_invite_token()
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=s.invite_ttl_seconds)
    user_id = new_user_id()
    invited = event(
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
        async with auth.service.engine.begin() as conn:
            actor = await acting_role(conn, caller, Role.ADMIN)
            await db.lock_tenant(conn, caller.tenant_id)
            if await db.count_pending_invites(conn, caller.tenant_id) >= s.max_pending_invites_per_tenant:
                raise CommandFailed(
                    ErrorCode.CONFLICT,
                    f"at most {s.max_pending_invites_per_tenant} invitations may be pending: "
                    "withdraw some (deactivate them) first",
                )
            if not can_grant(actor, cmd.role):
                raise CommandFailed(ErrorCode.FORBIDDEN, f"role {actor.value} may not grant {cmd.role.value}")
            await db.insert_user(
                conn,
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
            await stage(conn, db.outbox, [invited])
            row = await db.user_by_id(conn, user_id)
    except IntegrityError as exc:
        raise CommandFailed(ErrorCode.CONFLICT, "a user with this email already exists") from exc
    seq = await auth.publish([invited])
    return InviteIssued(user=member_view(row), invite_token=token, invite_expires_at=expires_at, seq=seq)


async def accept_invite(auth: Auth, cmd: AcceptInvite) -> TokenGrant:
    invalid = CommandFailed(ErrorCode.UNAUTHORIZED, "invalid or expired invitation")
    token_hash = secret_sha256(cmd.invite_token)
    now = datetime.now(UTC)
    async with auth.service.engine.connect() as conn:
        pending = await db.user_by_invite(conn, token_hash)
    if pending is None or pending.invite_expires_at is None or pending.invite_expires_at <= now:
        raise invalid
    check_new_password(cmd.password, pending.email)
    password_hash = await hash_password(cmd.password)
    async with auth.service.engine.begin() as conn:
        row = await db.user_by_invite(conn, token_hash)  # again, locked: used only once
        if row is None or row.status != UserStatus.INVITED:
            raise invalid
        full_name = cmd.full_name or row.full_name
        updated = await db.bump_user(
            conn,
            row.id,
            now,
            password_hash=password_hash,
            status=UserStatus.ACTIVE.value,
            full_name=full_name,
            invite_token_hash=None,
            invite_expires_at=None,
        )
        refresh_token = await open_session(auth, conn, row.id, row.tenant_id, now)
        events = [
            event(
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
    return grant(auth, user, refresh_token, await auth.publish(events))


async def change_role(auth: Auth, cmd: ChangeUserRole) -> MemberAccepted:
    caller = cmd.caller
    now = datetime.now(UTC)
    events: list[EventEnvelope] = []
    async with auth.service.engine.begin() as conn:
        actor, target = await managed_user(conn, caller, cmd.user_id)
        try:
            check_member_change(caller.user_id, actor, target.id, Role(target.role), cmd.role)
        except ManagementRefused as exc:
            raise refused(exc) from exc
        if target.role != cmd.role.value:
            updated = await db.bump_user(conn, target.id, now, role=cmd.role.value)
            events.append(
                event(
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
    return MemberAccepted(user=member_view(row), seq=await auth.publish(events))


async def get_member(auth: Auth, cmd: GetMember) -> MemberView:
    """Between services: a user as they stand now, for one acting as someone it knows by id."""
    async with auth.service.engine.connect() as conn:
        row = await db.user_by_id(conn, cmd.user_id)
    if row is None or row.tenant_id != cmd.tenant_id:
        raise CommandFailed(ErrorCode.NOT_FOUND, "user not found")
    return member_view(row)


async def set_active(auth: Auth, cmd: SetUserActive) -> MemberAccepted:
    caller = cmd.caller
    now = datetime.now(UTC)
    events: list[EventEnvelope] = []
    async with auth.service.engine.begin() as conn:
        actor, target = await managed_user(conn, caller, cmd.user_id)
        try:
            check_member_change(caller.user_id, actor, target.id, Role(target.role), None)
            change = activation(UserStatus(target.status), cmd.active, target.password_hash is not None)
        except ManagementRefused as exc:
            raise refused(exc) from exc
        if change is Activation.DEACTIVATE:
            updated = await db.bump_user(
                conn,
                target.id,
                now,
                end_sessions=True,
                status=UserStatus.DEACTIVATED.value,
                invite_token_hash=None,
                invite_expires_at=None,
            )
            await db.revoke_user_sessions(conn, target.id, now)
            events.append(
                event(
                    "user.deactivated",
                    target.tenant_id,
                    target.id,
                    updated.version,
                    caller.user_id,
                    cmd.correlation_id,
                    UserDeactivated(user_id=target.id, session_epoch=updated.session_epoch),
                )
            )
        elif change is Activation.REACTIVATE:
            updated = await db.bump_user(conn, target.id, now, status=UserStatus.ACTIVE.value)
            events.append(
                event(
                    "user.reactivated",
                    target.tenant_id,
                    target.id,
                    updated.version,
                    caller.user_id,
                    cmd.correlation_id,
                    UserReactivated(user_id=target.id),
                )
            )
        await stage(conn, db.outbox, events)
        row = await db.user_by_id(conn, target.id)
    return MemberAccepted(user=member_view(row), seq=await auth.publish(events))


# ---------------------------------------------------------------- integration keys


async def create_key(auth: Auth, cmd: CreateIntegrationKey) -> IntegrationKeyIssued:
    caller, s = cmd.caller, auth.settings
    key_id = new_key_id()
    secret, secret_hash = new_integration_key(key_id)
    scopes = sorted(set(cmd.scopes))
    now = datetime.now(UTC)
    created = event(
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
    async with auth.service.engine.begin() as conn:
        await acting_role(conn, caller, Role.ADMIN)
        await db.lock_tenant(conn, caller.tenant_id)
        if await db.count_active_keys(conn, caller.tenant_id) >= s.max_active_keys_per_tenant:
            raise CommandFailed(
                ErrorCode.CONFLICT,
                f"at most {s.max_active_keys_per_tenant} integration keys may be active: revoke some first",
            )
        row = await db.insert_integration_key(
            conn,
            id=key_id,
            tenant_id=caller.tenant_id,
            name=cmd.name,
            scopes=[scope.value for scope in scopes],
            secret_hash=secret_hash,
            created_by=caller.user_id,
            created_at=now,
        )
        await stage(conn, db.outbox, [created])
    return IntegrationKeyIssued(key=key_view(row), secret=secret, seq=await auth.publish([created]))


async def revoke_key(auth: Auth, cmd: RevokeIntegrationKey) -> IntegrationKeyAccepted:
    caller = cmd.caller
    now = datetime.now(UTC)
    events: list[EventEnvelope] = []
    async with auth.service.engine.begin() as conn:
        await acting_role(conn, caller, Role.ADMIN)
        row = await db.integration_key_for_update(conn, caller.tenant_id, cmd.key_id)
        if row is None:
            raise CommandFailed(ErrorCode.NOT_FOUND, "integration key not found")
        if row.revoked_at is None:
            row = await db.revoke_integration_key(conn, row.id, now)
            events.append(
                event(
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
    return IntegrationKeyAccepted(key=key_view(row), seq=await auth.publish(events))


# ---------------------------------------------------------------- wiring


def register_handlers(service: Service, issuer: TokenIssuer, settings: AuthSettings) -> None:
    auth = Auth(service, issuer, settings)
    service.handles(RegisterTenant)(partial(register, auth))
    service.handles(Login)(partial(login, auth))
    service.handles(RefreshSession)(partial(refresh, auth))
    service.handles(Logout)(partial(logout, auth))
    service.handles(ChangePassword)(partial(change_password, auth))
    service.handles(InviteUser)(partial(invite, auth))
    service.handles(AcceptInvite)(partial(accept_invite, auth))
    service.handles(ChangeUserRole)(partial(change_role, auth))
    service.handles(GetMember)(partial(get_member, auth))
    service.handles(SetUserActive)(partial(set_active, auth))
    service.handles(CreateIntegrationKey)(partial(create_key, auth))
    service.handles(RevokeIntegrationKey)(partial(revoke_key, auth))

    # The keys that verify access tokens.
    @service.broker.subscriber(AUTH_JWKS, queue="auth")
    async def jwks(body: dict[str, object]) -> dict[str, object]:
        return PublicKeys.model_validate(issuer.jwks()).model_dump()
