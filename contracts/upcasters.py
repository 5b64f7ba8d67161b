"""Older event versions are brought up to date here, and only here, so old history replays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.envelope import EventEnvelope

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (type, from_version) -> function turning that version's data into version + 1's.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcast(envelope: EventEnvelope) -> EventEnvelope:
    data, version = envelope.data, envelope.version
    while (step := UPCASTERS.get((envelope.type, version))) is not None:
        data, version = step(data), version + 1
    if version == envelope.version:
        return envelope
    return envelope.model_copy(update={"data": data, "version": version})
