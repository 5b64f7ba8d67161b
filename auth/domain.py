"""Pure rules of identity: names, emails, tenant ids and what each role may do."""

from __future__ import annotations

import re
import unicodedata

from uuid6 import uuid7


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
