"""Pure rules of identity: names, emails, tenant ids, passwords, what each role may do to whom,
rate-limit windows, what a presented refresh token earns, a user's activation changes, the shapes of
the secrets auth hands out, and the events of its aggregates (tenant, user, integration key)."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import secrets
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from uuid6 import uuid7

from contracts.credentials import KEY_PREFIX, secret_sha256
from contracts.envelope import EventEnvelope
from contracts.events import EventData, Role, UserStatus

MIN_PASSWORD_LENGTH = 8


def new_tenant_id() -> str:
    """Tenant ids go into subjects, so they contain no dots (nor anything but [a-z0-9_])."""
    return f"t_{uuid7().hex}"


def new_user_id() -> str:
    return f"u_{uuid7().hex}"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower())[:60].strip("-")
    return slug or "org"


# ---------------------------------------------------------------- passwords


def password_problem(password: str, common: Collection[str], email: str = "") -> str | None:
    """Why a new password is refused, or None. argon2 hashes the whole password (no 72-byte cut)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    folded = password.strip().lower()
    if folded in common:
        return "this password is too common: it appears in lists attackers try first"
    email = normalise_email(email)
    if email and (folded == email or folded == email.split("@", 1)[0]):
        return "a password must not be the email address"
    if len(set(password)) < 3:
        return "a password needs more than one or two distinct characters"
    return None


def parse_password_list(text: str) -> frozenset[str]:
    """One password a line; blank lines and `#` comments skipped; compared case-insensitively."""
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


# ---------------------------------------------------------------- roles


def can_manage(actor: Role, target: Role) -> bool:
    """Owners manage everyone; admins manage responders and viewers; nobody else manages anyone."""
    if actor is Role.OWNER:
        return True
    return actor is Role.ADMIN and target in (Role.RESPONDER, Role.VIEWER)


def can_grant(actor: Role, role: Role) -> bool:
    """Which roles an actor may give (by invitation or a role change): only roles they manage."""
    return can_manage(actor, role)


class ManagementRefused(Exception):
    def __init__(self, reason: str, forbidden: bool) -> None:
        super().__init__(reason)
        self.reason, self.forbidden = reason, forbidden


def check_member_change(
    actor_id: str, actor: Role, target_id: str, target: Role, new_role: Role | None
) -> None:
    """May `actor` change `target` (its role to `new_role`, or its active flag when None)? Raises
    ManagementRefused: forbidden=True is a 403, False a 409 (allowed in general, not in this case)."""
    if not actor.at_least(Role.ADMIN):
        raise ManagementRefused(f"role {actor.value} may not manage users", forbidden=True)
    if actor_id == target_id:
        # Also what keeps every organisation with at least one active owner: an owner can only be
        # demoted or deactivated by another owner.
        raise ManagementRefused("you cannot change your own role or deactivate yourself", forbidden=False)
    if not can_manage(actor, target):
        raise ManagementRefused(f"role {actor.value} may not manage a user with role {target.value}", True)
    if new_role is not None and not can_grant(actor, new_role):
        raise ManagementRefused(f"role {actor.value} may not grant role {new_role.value}", forbidden=True)


class Activation(Enum):
    """What setting a user's active flag does."""

    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    NOTHING = "nothing"


def activation(status: UserStatus, active: bool, accepted_invitation: bool) -> Activation:
    """Deactivating any user but a deactivated one ends their access; only a deactivated user who
    once had a password can come back (an invitation is withdrawn by deactivating it). Raises
    ManagementRefused (a 409) for what cannot be."""
    if not active:
        return Activation.NOTHING if status is UserStatus.DEACTIVATED else Activation.DEACTIVATE
    if status is UserStatus.DEACTIVATED:
        if not accepted_invitation:
            raise ManagementRefused(
                "this user never accepted their invitation, so cannot be reactivated", forbidden=False
            )
        return Activation.REACTIVATE
    if status is UserStatus.INVITED:
        raise ManagementRefused("this user has not accepted their invitation yet", forbidden=False)
    return Activation.NOTHING


# ---------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class Limit:
    max_attempts: int
    window: timedelta


def retry_after(recent: Iterable[datetime], now: datetime, limit: Limit) -> int | None:
    """Seconds until one more attempt is allowed, or None if it is allowed now. `recent` are the
    counted attempts' times; only those inside the sliding window count, so a lock lifts by itself."""
    inside = sorted(t for t in recent if t > now - limit.window)
    if len(inside) < limit.max_attempts:
        return None
    # Once this one leaves the window, fewer than max_attempts remain.
    blocking = inside[len(inside) - limit.max_attempts]
    return max(1, math.ceil((blocking + limit.window - now).total_seconds()))


def address_bucket(address: str) -> str:
    """The unit a per-address limit counts: an IPv4 address, or an IPv6 /64 (anyone holding one IPv6
    address usually holds its whole /64, so counting single addresses would count nothing)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def advisory_lock_id(scope: str, key: str) -> int:
    """A signed 64-bit id for pg_advisory_xact_lock, the same in every replica."""
    digest = hashlib.sha256(f"{scope}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# ---------------------------------------------------------------- refresh-token families


def family_expires_at(family_created_at: datetime, max_age: timedelta) -> datetime:
    """A login's refresh tokens stop working this long after the login, however often they rotate."""
    return family_created_at + max_age


def family_expired(family_created_at: datetime, now: datetime, max_age: timedelta) -> bool:
    return now >= family_expires_at(family_created_at, max_age)


def refresh_expiry(
    now: datetime, ttl: timedelta, family_created_at: datetime, max_age: timedelta
) -> datetime:
    """A new refresh token lives `ttl` (idle timeout), but never past its family's absolute end."""
    return min(now + ttl, family_expires_at(family_created_at, max_age))


class Refresh(Enum):
    """What presenting a refresh token earns."""

    ROTATE = "rotate"  # a new token of the same family; this one is used up
    INVALID = "invalid"  # unknown, revoked or expired: refused, nothing changes
    REUSED = "reused"  # used already, so a copy exists: the family is revoked
    INACTIVE = "inactive"  # the user was deactivated: the family is revoked
    TOO_OLD = "too_old"  # the login is older than the family's absolute lifetime: revoked

    @property
    def revokes_family(self) -> bool:
        return self in (Refresh.REUSED, Refresh.INACTIVE, Refresh.TOO_OLD)


@dataclass(frozen=True)
class PresentedToken:
    """What auth knows of a presented refresh token (and of its user)."""

    revoked: bool
    used: bool
    expires_at: datetime
    family_created_at: datetime
    user_active: bool


def refresh_verdict(token: PresentedToken | None, now: datetime, family_max_age: timedelta) -> Refresh:
    if token is None or token.revoked or token.expires_at <= now:
        return Refresh.INVALID
    if token.used:
        return Refresh.REUSED
    if not token.user_active:
        return Refresh.INACTIVE
    if family_expired(token.family_created_at, now, family_max_age):
        # However often it rotated, a login ends this long after it began.
        return Refresh.TOO_OLD
    return Refresh.ROTATE


REFRESH_REFUSALS = {
    Refresh.INVALID: "invalid or expired refresh token",
    Refresh.INACTIVE: "invalid or expired refresh token",
    Refresh.REUSED: "refresh token reused: the session was revoked",
    Refresh.TOO_OLD: "this login is too old: log in again",
}


# ---------------------------------------------------------------- the aggregates' events


def event(
    event_type: str,
    tenant_id: str,
    aggregate_id: str,
    version: int,
    actor: str,
    correlation_id: str,
    data: EventData,
) -> EventEnvelope:
    """One of auth's events: `version` is the aggregate's after the change (a tenant, a user and
    an integration key are each their own aggregate)."""
    return EventEnvelope(
        type=event_type,
        tenant_id=tenant_id,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        actor=actor,
        correlation_id=correlation_id,
        data=data.model_dump(mode="json"),
    )


# ---------------------------------------------------------------- secrets handed out

REFRESH_PREFIX = "rt_"
INVITE_PREFIX = "inv_"


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_invite_token() -> str:
    return INVITE_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return f"k_{uuid7().hex}"


def new_integration_key(key_id: str) -> tuple[str, str]:
    """The whole key to show once (`sck_<key id>_<secret>`) and the secret's hash to keep."""
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}{key_id}_{secret}", secret_sha256(secret)
