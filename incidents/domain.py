"""The incident lifecycle as pure rules."""

from __future__ import annotations

from contracts.events import IncidentState

DETECTED, ACKNOWLEDGED, INVESTIGATING, RESOLVED = IncidentState

# A move may skip forward; `resolved -> investigating` reopens. Nothing else.
ALLOWED_MOVES: dict[IncidentState, tuple[IncidentState, ...]] = {
    DETECTED: (ACKNOWLEDGED, INVESTIGATING, RESOLVED),
    ACKNOWLEDGED: (INVESTIGATING, RESOLVED),
    INVESTIGATING: (RESOLVED,),
    RESOLVED: (INVESTIGATING,),
}


class TransitionRefused(ValueError):
    def __init__(self, current: IncidentState, requested: IncidentState) -> None:
        self.current, self.requested = current, requested
        self.allowed = list(ALLOWED_MOVES[current])
        allowed = ", ".join(s.value for s in self.allowed) or "none"
        super().__init__(f"cannot move from {current.value} to {requested.value}; allowed: {allowed}")


def check_transition(current: IncidentState, requested: IncidentState) -> None:
    if requested not in ALLOWED_MOVES[current]:
        raise TransitionRefused(current, requested)


def incident_key(number: int) -> str:
    return f"INC-{number}"


EDITABLE_FIELDS = ("title", "description", "service_name", "severity", "assignee_id")


def changed_fields(
    current: dict[str, str | None], requested: dict[str, str | None]
) -> dict[str, tuple[str | None, str | None]]:
    """The requested fields whose value differs from the current one: field -> (old, new)."""
    return {
        field: (current.get(field), value)
        for field, value in requested.items()
        if field in EDITABLE_FIELDS and current.get(field) != value
    }
