"""Older event versions are brought up to date here, and only here, so old history replays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.envelope import EventEnvelope

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _incident_created_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 listed the new incident's fields; v2 carries them as the snapshot every incident event has.
    A creation is the incident's first version, so the snapshot is whole."""
    incident = {name: value for name, value in data.items() if name != "incident_id"}
    incident.update(id=data["incident_id"], version=1, updated_at=data["created_at"])
    return {"incident_id": data["incident_id"], "incident": incident}


def _without_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    """A v1 change carried only what changed: it is upcast with no snapshot (`incident` None), and
    views apply it as a change over the version before it, as they did when it was written."""
    return dict(data)


# (type, from_version) -> function turning that version's data into version + 1's.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("incident.created", 1): _incident_created_v1,
    ("incident.state_changed", 1): _without_snapshot,
    ("incident.updated", 1): _without_snapshot,
}


def upcast(envelope: EventEnvelope) -> EventEnvelope:
    data, version = envelope.data, envelope.version
    while (step := UPCASTERS.get((envelope.type, version))) is not None:
        data, version = step(data), version + 1
    if version == envelope.version:
        return envelope
    return envelope.model_copy(update={"data": data, "version": version})
