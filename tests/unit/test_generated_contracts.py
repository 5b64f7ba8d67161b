"""The files generated from the code's contracts are committed, and must be what the generators make
of the code as it is now (`scripts/generate.sh` writes them): the OpenAPI document, the event
catalogue and the console's API types. And the document keeps the promises it makes of itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from contracts import catalogue
from contracts.events import EVENT_TYPES, SERVICE_NAME
from contracts.wire import NO_NUL, NOT_BLANK
from gateway import openapi
from gateway.errors import ApiErrorCode, ErrorCode

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "openapi.json"
CATALOGUE = ROOT / "docs" / "events.md"
TYPES = ROOT / "web" / "src" / "api" / "openapi.ts"
OPENAPI_TYPESCRIPT = ROOT / "web" / "node_modules" / ".bin" / "openapi-typescript"
STALE = "is stale: run scripts/generate.sh and commit what it writes"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_the_committed_openapi_document_is_the_gateways(document: dict[str, Any]) -> None:
    assert DOCUMENT.read_text() == openapi.render(document), f"docs/openapi.json {STALE}"


def test_the_committed_event_catalogue_is_the_contracts() -> None:
    assert CATALOGUE.read_text() == catalogue.render(), f"docs/events.md {STALE}"


def test_the_catalogue_names_every_event_type_and_version() -> None:
    text = catalogue.render()
    for event_type, version in EVENT_TYPES:
        assert f"### {event_type} v{version}\n" in text
    # The incident events carry the incident's snapshot since version 2.
    assert "### incident.state_changed v2" in text and "[IncidentSnapshot](#incidentsnapshot)" in text


def test_the_consoles_api_types_are_generated_from_the_document() -> None:
    if not OPENAPI_TYPESCRIPT.exists():
        if os.environ.get("CI"):
            pytest.fail("web/node_modules is missing: scripts/setup.sh installs it (npm ci)")
        pytest.skip("openapi-typescript is not installed (cd web && npm ci)")
    node = shutil.which("node")
    assert node, "node is needed to run openapi-typescript"
    # The same command as scripts/generate.sh, writing to stdout.
    generated = subprocess.run(
        [str(OPENAPI_TYPESCRIPT), str(DOCUMENT), "--enum-values"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT / "web",
        timeout=120,
    ).stdout
    assert TYPES.read_text() == generated, f"web/src/api/openapi.ts {STALE}"


PAGERDUTY = "/api/v1/integrations/pagerduty/"


def test_every_operation_declares_the_shared_errors_it_can_answer(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        statuses = set(op["responses"])
        assert "500" in statuses, (method, path)
        if op.get("security"):
            assert {"401", "503"} <= statuses, (method, path)
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "404" in statuses, (method, path)
        if "requestBody" in op or op.get("parameters"):
            assert "422" in statuses, (method, path)
        for status, response in op["responses"].items():
            if path.startswith(PAGERDUTY) and status in ("400", "401", "403"):
                # An Events v2 sender reads PagerDuty's error shape, not this API's.
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/PagerDutyErrorRead"}, (path, status)
            elif int(status) >= 400 and path != "/health/services":
                assert response["$ref"].startswith("#/components/responses/"), (method, path, status)


def test_shared_error_responses_carry_their_headers_and_the_error_model(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    assert responses["Unauthorized"]["headers"]["WWW-Authenticate"]["required"] is True
    for name in ("RateLimited", "Unavailable"):
        assert responses[name]["headers"]["Retry-After"]["required"] is True
    for response in responses.values():
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    codes = document["components"]["schemas"]["ApiErrorCode"]["enum"]
    assert set(codes) == {c.value for c in ApiErrorCode} >= {c.value for c in ErrorCode}
    # FastAPI's own 422 model is not this API's.
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_operation_ids_are_the_handlers_names(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z_]*", i) for i in ids), ids


def test_every_delete_deletes_and_keys_are_revoked(document: dict[str, Any]) -> None:
    """A DELETE answers 204 and its resource is gone (404) afterwards; a revocation is a POST."""
    deletes = [(path, op) for method, path, op in operations(document) if method == "delete"]
    assert deletes, "the webhooks' DELETE at least"
    for path, op in deletes:
        assert "204" in op["responses"] and "get" in document["paths"][path], path
    assert "/api/v1/integration-keys/{key_id}/revoke" in document["paths"]
    assert "delete" not in document["paths"]["/api/v1/integration-keys/{key_id}"]


def _strings(schema: Any) -> list[dict[str, Any]]:
    if not isinstance(schema, dict):
        return []
    found = [schema] if schema.get("type") == "string" else []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found += _strings(sub)
    if isinstance(schema.get("items"), dict):
        found += _strings(schema["items"])
    return found


def test_every_string_parameter_states_what_it_takes(document: dict[str, Any]) -> None:
    """The gateway refuses a NUL character in any parameter; each string parameter says so with a
    pattern (which then also excludes it), or is an enum or a format that cannot hold one."""
    for method, path, op in operations(document):
        for parameter in op.get("parameters", []):
            for schema in _strings(parameter["schema"]):
                assert {"pattern", "enum", "format"} & schema.keys(), (method, path, parameter["name"])


def test_request_body_strings_refuse_nul(document: dict[str, Any]) -> None:
    create = document["components"]["schemas"]["IncidentCreate"]["properties"]
    assert create["description"]["pattern"] == NO_NUL
    # Their own patterns exclude it already: not blank, or no spaces.
    assert create["title"]["pattern"] == NOT_BLANK
    assert create["service_name"]["pattern"] == SERVICE_NAME
    alerts = document["paths"]["/api/v1/integrations/alertmanager"]["post"]["requestBody"]
    labels = alerts["content"]["application/json"]["schema"]["properties"]["commonLabels"]
    assert (
        labels["propertyNames"]["pattern"] == NO_NUL and labels["additionalProperties"]["pattern"] == NO_NUL
    )


def test_date_time_parameters_are_rfc3339(document: dict[str, Any]) -> None:
    names = {"created_from", "created_to", "resolved_from", "resolved_to"}
    seen = set()
    for _, _, op in operations(document):
        for parameter in op.get("parameters", []):
            if parameter["name"] in names:
                seen.add(parameter["name"])
                (schema,) = [s for s in parameter["schema"]["anyOf"] if s.get("type") == "string"]
                assert schema["format"] == "date-time"
    assert seen == names


def test_the_document_is_valid_json_as_committed() -> None:
    assert json.loads(DOCUMENT.read_text())["openapi"].startswith("3.1")
