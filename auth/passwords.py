"""Password hashing (argon2id: no 72-byte truncation, unlike bcrypt) and the common-password list."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from importlib import resources
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from auth.domain import parse_password_list, password_problem
from contracts.commands import CommandFailed, ErrorCode

hasher = PasswordHasher()
# Verified when there is no usable hash (unknown email, invitation not accepted), so a login takes as
# long whether or not the account exists.
_DUMMY_HASH = hasher.hash("not-a-real-password")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    return parse_password_list(resources.files("auth").joinpath("common_passwords.txt").read_text())


def check_new_password(password: str, email: str, field: str = "password") -> None:
    """A 422 naming the field when the password is refused."""
    problem = password_problem(password, common_passwords(), email)
    if problem is not None:
        details: list[dict[str, Any]] = [{"loc": ["body", field], "msg": problem, "type": "weak_password"}]
        raise CommandFailed(ErrorCode.VALIDATION, problem, details)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    matches = await asyncio.to_thread(_verify, password_hash or _DUMMY_HASH, password)
    return matches and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return hasher.check_needs_rehash(password_hash)
