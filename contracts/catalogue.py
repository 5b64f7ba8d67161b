"""The event catalogue: every event type and version in `contracts.events.EVENT_TYPES`, with its fields,
rendered as Markdown from the models themselves (their JSON Schema), so it cannot drift from them.

`python -m contracts.catalogue` prints it; `docs/events.md` is that output, committed, and
`tests/unit/test_generated_contracts.py` fails when it is stale."""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

from pydantic import BaseModel

from contracts.envelope import EventEnvelope
from contracts.events import CURRENT_VERSION, EVENT_TYPES
from contracts.upcasters import UPCASTERS

HEADER = """# Event catalogue

Generated from `contracts/events.py` by `python -m contracts.catalogue` (`scripts/generate.sh`); do
not edit by hand. Every event travels in the envelope below on the `EVENTS` stream (subject
`events.<tenant>.<type>`), and the live feed (`/api/v1/stream`) and generic webhooks carry the same
envelope. Older versions are upcast to the current one on reading (`contracts/upcasters.py`), so a
consumer only ever sees the current version of each type.
"""


def _doc(model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) or ""
    inherited = {inspect.getdoc(base) for base in model.__mro__[1:]}
    return "" if doc in inherited else " ".join(doc.split())


def _type(schema: dict[str, Any]) -> str:
    """A JSON Schema (pydantic's) as a short type expression."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}))}]"
    if kind == "object":
        values = schema.get("additionalProperties")
        return f"map[string, {_type(values)}]" if isinstance(values, dict) else "object"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    if kind == "null":
        return "null"
    return str(kind or "any")


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "default" in schema:
        parts.append(f"default `{json.dumps(schema['default'])}`")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _fields(model: type[BaseModel], schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | notes |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        notes = "; ".join(n for n in (prop.get("description", ""), _constraints(prop)) if n)
        kind = _cell(_type(prop))
        rows.append(f"| `{name}` | {kind} | {'yes' if name in required else 'no'} | {_cell(notes)} |")
    return rows


def _section(title: str, model: type[BaseModel], schema: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", ""]
    if doc := _doc(model):
        lines += [doc, ""]
    if schema.get("enum"):
        return [*lines, "One of: " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".", ""]
    return [*lines, *_fields(model, schema), ""]


def render() -> str:
    lines = [HEADER, "## Envelope", ""]
    lines += _fields(EventEnvelope, EventEnvelope.model_json_schema())
    lines += ["", "## Events", ""]
    lines += ["| type | current version | older versions upcast |", "|---|---|---|"]
    for event_type, current in sorted(CURRENT_VERSION.items()):
        older = sorted(v for t, v in UPCASTERS if t == event_type)
        upcast = ", ".join(f"v{v}" for v in older) or "none"
        lines.append(
            f"| [`{event_type}`](#{event_type.replace('.', '')}-v{current}) | {current} | {upcast} |"
        )
    lines.append("")
    shared: dict[str, dict[str, Any]] = {}
    for (event_type, version), model in sorted(EVENT_TYPES.items()):
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        shared.update(schema.pop("$defs", {}))
        lines += _section(f"{event_type} v{version}", model, schema)
    lines += ["## Shared shapes", ""]
    models = {m.__name__: m for m in _nested_models()}
    for name in sorted(shared):
        lines += _section(name, models.get(name, BaseModel), shared[name])
    return "\n".join(lines).rstrip() + "\n"


def _nested_models() -> list[type[Any]]:
    import contracts.events as events

    return [v for v in vars(events).values() if isinstance(v, type)]


if __name__ == "__main__":
    sys.stdout.write(render())
