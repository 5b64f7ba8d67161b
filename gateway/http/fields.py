"""The building blocks of every feature's API models: `Strict` request bodies, text fields checked as
sent, patterns the OpenAPI document states."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from contracts.commands import (
    MAX_INT32,
)
from contracts.events import (
    SERVICE_NAME,
)
from contracts.wire import NOT_BLANK, NulFree, Rfc3339, json_integer, strip

# A query parameter's moment, in UTC: RFC 3339 only (see contracts.wire).
DateTimeQuery = Rfc3339
# The ids the integrations service hands out as cursors (UUIDs, lower case, as they are given).
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def one_or_more(values: type[StrEnum]) -> str:
    """The pattern of a filter taking one or more of an enum's values, comma-separated."""
    one = "(" + "|".join(re.escape(v.value) for v in values) + ")"
    return f"^{one}(,{one})*$"


def _not_null(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# An optional field of an update that may be left out but not sent as null (null means nothing for
# it): the document says so, and the service refuses a null (422).
NOT_NULL: Any = Field(default=None, json_schema_extra=_not_null)


# Text fields of requests, checked as sent and then stripped (see contracts.wire): the same limits as
# the commands' `Title`, `Name`, `RootCause` (which strip first), stated so that the document holds.
TitleText = Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK), AfterValidator(strip)]
NameText = Annotated[str, StringConstraints(max_length=120, pattern=NOT_BLANK), AfterValidator(strip)]
RootCauseText = Annotated[str, StringConstraints(max_length=2_000, pattern=NOT_BLANK), AfterValidator(strip)]
# A service name has no spaces to strip: its pattern says so, on the name as sent.
ServiceNameText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=SERVICE_NAME)]

# A version or generation number (a 32-bit column), as a JSON integer.
Generation = Annotated[int, Field(ge=1, le=MAX_INT32), BeforeValidator(json_integer)]


class Strict(NulFree):
    # Unknown fields are refused: a tenant or an id never comes from the body. No string may hold a
    # NUL character (NulFree). Integers and booleans are `json_integer`/`StrictBool`: the document says
    # `integer`/`boolean`, and pydantic would also take "5", 0 or "true" for them.
    model_config = ConfigDict(extra="forbid")
