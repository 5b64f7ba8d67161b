"""The one versioned envelope every domain event travels in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from uuid6 import uuid7

SYSTEM_ACTOR = "system"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventEnvelope(BaseModel):
    """What is stored in the stream. `data` is the typed payload, validated through the registry."""

    model_config = ConfigDict(frozen=True)

    id: UUID = Field(default_factory=uuid7)
    type: str
    version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    tenant_id: str
    aggregate_id: str
    aggregate_version: int = 1
    actor: str = SYSTEM_ACTOR
    correlation_id: str
    causation_id: str | None = None
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> EventEnvelope:
        return cls.model_validate_json(raw)
