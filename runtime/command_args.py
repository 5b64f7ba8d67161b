"""Arguments every service's command handlers parse alike: an object's id, an id the caller chose,
a page's cursor."""

from __future__ import annotations

import uuid

from contracts.commands import CommandFailed, ErrorCode


def object_id(raw: str, what: str) -> uuid.UUID:
    """An id from a request; one that is not a UUID names nothing, so it is not found."""
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.NOT_FOUND, f"{what} not found") from exc


def chosen_id(raw: str, field: str) -> uuid.UUID:
    """An id the caller chose for what it creates (so a retry makes nothing twice), or for what it
    refers to: one that is not a UUID is bad input, a 422 naming the field."""
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(ErrorCode.VALIDATION, f"{field} must be a UUID") from exc


def optional_chosen_id(raw: str | None, field: str) -> uuid.UUID | None:
    return None if raw is None else chosen_id(raw, field)


def cursor_id(raw: str | None) -> uuid.UUID | None:
    """A keyset cursor (the last id of the page before), or a 422 naming the query parameter."""
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise CommandFailed(
            ErrorCode.VALIDATION,
            "invalid cursor",
            [{"loc": ["query", "cursor"], "msg": "not a cursor from this API", "type": "value_error"}],
        ) from exc
