"""Signed webhooks, shared by every service that sends them (integrations' generic webhooks, oncall's
webhook contact methods): the same header and the same verification on the receiving side (the
README's `verify_webhook.py`)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "SRE-Copilot-Signature"
EVENT_HEADER = "SRE-Copilot-Event"
DELIVERY_HEADER = "SRE-Copilot-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over `<timestamp>.<body>`: the timestamp is signed too, so an old delivery
    cannot be replayed with a fresh one."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
