"""The API models of sessions, users and integration keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
)

from contracts.commands import (
    Email,
    OpaqueToken,
    Password,
    PresentedPassword,
    TenantView,
    UserView,
)
from contracts.events import (
    KeyScope,
    Role,
    UserStatus,
)
from gateway.http.fields import NameText, Strict

TWO_CHARACTERS_AT_MOST = r"^([\s\S])\1*$|^([\s\S])\2*([\s\S])(\2|\3)*$"
# Passwords are `format: password` (clients mask them). A new one must also pass rules a schema cannot
# state; they are described here, and a 422 whose details carry `type: weak_password` names the one
# broken.
NewPassword = Annotated[
    Password,
    Field(
        description="8 to 128 characters, at least 3 different ones; not a commonly used password "
        "(compared case-insensitively) and not the email address or its part before the @. Otherwise "
        "a 422 whose `details` name the rule (`type: weak_password`)",
        # The rule of three distinct characters is one a pattern can state (its negation: one or two).
        json_schema_extra={"format": "password", "not": {"pattern": TWO_CHARACTERS_AT_MOST}},
    ),
]
GivenPassword = Annotated[PresentedPassword, Field(json_schema_extra={"format": "password"})]


class RegisterCreate(Strict):
    email: Email
    password: NewPassword
    full_name: NameText
    tenant_name: NameText


class LoginCreate(Strict):
    email: Email
    password: GivenPassword


class SessionRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    # Single use: POST it to /api/v1/auth/refresh for a new access token and a new refresh token.
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    user: UserView
    tenant: TenantView


class RefreshCreate(Strict):
    refresh_token: OpaqueToken


class LogoutCreate(Strict):
    refresh_token: OpaqueToken


class PasswordChange(Strict):
    current_password: GivenPassword
    new_password: NewPassword


class InviteCreate(Strict):
    email: Email
    full_name: NameText
    role: Role = Role.RESPONDER


class InviteAccept(Strict):
    token: OpaqueToken
    password: NewPassword
    full_name: NameText | None = None


class RoleUpdate(Strict):
    role: Role


class UserRead(BaseModel):
    id: str
    email: str
    full_name: str
    role: Role
    status: UserStatus
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserRead]
    next_cursor: str | None


class InviteRead(BaseModel):
    """`invite_token` is shown this once: hand it to the person invited (auth keeps only its hash)."""

    user: UserRead
    invite_token: str
    invite_expires_at: datetime


class MeRead(BaseModel):
    user: UserRead
    role: Role
    tenant: TenantView


class IntegrationKeyCreate(Strict):
    name: NameText
    scopes: Annotated[list[KeyScope], Field(min_length=1, max_length=len(KeyScope))]


class IntegrationKeyRead(BaseModel):
    id: str
    name: str
    scopes: list[KeyScope]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None


class IntegrationKeyPage(BaseModel):
    items: list[IntegrationKeyRead]
    next_cursor: str | None


class IntegrationKeySecretRead(IntegrationKeyRead):
    """`key` is the whole secret, shown this once: auth keeps only its hash."""

    key: str


class KeyIdentityRead(BaseModel):
    key_id: str
    name: str
    tenant_id: str
    scopes: list[KeyScope]
