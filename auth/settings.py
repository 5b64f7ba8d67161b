from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from runtime.settings import JwtSettings, ServiceSettings


class AuthSettings(ServiceSettings, JwtSettings):
    # PEM of the RSA key that signs access tokens: inline, or a file (what `sre-copilot up` writes).
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    # Keys that signed tokens before a rotation: still published (public half only) so those tokens
    # verify until they expire. PEM blocks (public or private keys), inline or as comma-separated files.
    jwt_previous_public_keys: str | None = None
    jwt_previous_public_key_files: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # Keys about to sign (the first phase of a rotation with several replicas): published, never
    # used to sign, so that every gateway has seen a key before any replica signs with it.
    jwt_next_public_keys: str | None = None
    jwt_next_public_key_files: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    refresh_ttl_seconds: int = Field(default=14 * 86_400, ge=60)
    # A login's absolute lifetime: rotating its refresh token (each good for refresh_ttl_seconds more)
    # never carries it past this; then the user logs in again.
    refresh_family_max_age_seconds: int = Field(
        default=30 * 86_400,
        ge=60,
        validation_alias=AliasChoices("refresh_family_max_age_seconds", "refresh_family_max_age"),
    )
    # Bounds on what one organisation can pile up (OWASP API4, unrestricted resource consumption).
    max_active_keys_per_tenant: int = Field(default=100, ge=1)
    max_pending_invites_per_tenant: int = Field(default=100, ge=1)
    invite_ttl_seconds: int = Field(default=7 * 86_400, ge=60)

    # Failed logins, counted over a sliding window, per account (email) and per client address.
    login_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    # Registrations (whatever their outcome), per client address and per email.
    register_window_seconds: int = Field(default=3600, ge=1)
    register_max_per_address: int = Field(default=10, ge=1)
    register_max_per_email: int = Field(default=5, ge=1)

    @field_validator("jwt_previous_public_key_files", "jwt_next_public_key_files", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def private_key_pem(self) -> str:
        if self.jwt_private_key is not None:
            return self.jwt_private_key.get_secret_value()
        if self.jwt_private_key_file is not None:
            return self.jwt_private_key_file.read_text()
        raise RuntimeError("auth needs JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE (an RSA private key, PEM)")

    def previous_key_pems(self) -> list[str]:
        return _pems(self.jwt_previous_public_keys, self.jwt_previous_public_key_files)

    def next_key_pems(self) -> list[str]:
        return _pems(self.jwt_next_public_keys, self.jwt_next_public_key_files)


def _pems(inline: str | None, files: list[Path]) -> list[str]:
    bundles = [inline or "", *(path.read_text() for path in files)]
    return [pem for bundle in bundles for pem in split_pem_bundle(bundle)]


def split_pem_bundle(bundle: str) -> list[str]:
    """Every `-----BEGIN ...-----` ... `-----END ...-----` block of a text, in order."""
    blocks: list[str] = []
    current: list[str] = []
    for line in bundle.splitlines():
        if line.startswith("-----BEGIN "):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith("-----END "):
                blocks.append("\n".join(current) + "\n")
                current = []
    return blocks
