"""Values as the API's documents state them, no looser: what a sender writes is what it meant.

- `Rfc3339` (`format: date-time`): RFC 3339 only. Pydantic's own parsing also reads bare numbers (as
  Unix times), dates alone, times without seconds or without an offset. It takes aware `datetime`
  objects as they are (code building models) and strings only in RFC 3339's form.
- `JsonInt` (`type: integer`): a JSON number with no fraction (`5` or `5.0`, as JSON Schema counts
  them), never a string or a boolean, which pydantic would also take. Bounded, it is
  `Annotated[int, Field(ge=1), BeforeValidator(json_integer)]`.
- Text that is stripped is checked as it was sent (its length, and `NOT_BLANK` where it must not be
  empty), then stripped: pydantic's `strip_whitespace` would check the stripped text, so a string
  over `maxLength` with spaces around it would pass, and one of spaces only would fail `minLength` the
  document does not state.
- `NulFree`: a model none of whose strings (map keys included) holds U+0000, which PostgreSQL cannot
  store in text or JSONB. The OpenAPI document states it as `pattern: ^[^\\x00]*$` on every string of
  a request body (`gateway/openapi.py`); parameters take `NO_NUL` as their pattern."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, BeforeValidator, model_validator

# RFC 3339 section 5.6: full-date "T" full-time, the time with seconds and an offset (or Z).
RFC3339_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
NOT_RFC3339 = "not an RFC 3339 date-time with an offset, e.g. 2026-12-01T10:30:00Z"


def parse_rfc3339(value: str) -> datetime:
    """The moment an RFC 3339 date-time names, in UTC; ValueError for anything else (and for dates
    the calendar lacks: February 30th, hour 24, a leap second)."""
    if not RFC3339_DATE_TIME.fullmatch(value):
        raise ValueError(NOT_RFC3339)
    # Python reads at most 6 digits of a second's fraction; RFC 3339 sets no limit.
    normalised = re.sub(r"(\.\d{6})\d+", r"\1", value.upper())
    try:
        moment = datetime.fromisoformat(normalised)
    except ValueError as exc:
        raise ValueError(f"{NOT_RFC3339} ({exc})") from exc
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # Within a day of year 1 or of year 9999 an offset can take it past what Python (and
        # PostgreSQL's driver) can hold in UTC: the bound of the range stands for it.
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def _strict(value: Any) -> Any:
    if isinstance(value, str):
        return parse_rfc3339(value)
    if isinstance(value, datetime):
        return value
    raise ValueError(NOT_RFC3339)


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_strict)]


def json_integer(value: Any) -> Any:
    """`BeforeValidator(json_integer)`, after any `Field(ge=..., le=...)` in the same `Annotated`
    (there, pydantic still writes the bounds into the schema as `minimum`/`maximum`)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(json_integer)]

# The pattern of a string that holds no NUL character.
NO_NUL = r"^[^\x00]*$"
# Exactly what Python's str.strip() removes (str.isspace()), spelled out because regex dialects
# disagree about `\s` (ECMA-262's leaves out U+001C-U+001F, Python's leaves out U+FEFF).
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Text with something besides whitespace in it (and no NUL): what `strip_whitespace` plus
# `min_length=1` accept, stated as a pattern on the text as sent.
NOT_BLANK = rf"^[{WHITESPACE}]*[^\x00{WHITESPACE}][^\x00]*$"


def strip(value: str) -> str:
    """`AfterValidator(strip)`, after the constraints on the text as sent (`max_length`,
    `pattern=NOT_BLANK`): the document states those, and the stored text is the stripped one."""
    return value.strip()


def nul_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Where in `value` (a model, or what it holds) a string contains U+0000."""
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from nul_paths(getattr(value, name), (*path, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                yield (*path, key)
            yield from nul_paths(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from nul_paths(item, (*path, index))


class NulFree(BaseModel):
    """A request's model: none of its fields' strings may hold U+0000 (fields it ignores are not
    looked at)."""

    @model_validator(mode="after")
    def _no_nul(self) -> Self:
        found = next(nul_paths(self), None)
        if found is not None:
            where = ".".join(str(part) for part in found) or "a value"
            raise ValueError(f"{where}: text may not contain the NUL character (U+0000)")
        return self
