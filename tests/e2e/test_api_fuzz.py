"""Schemathesis against the gateway's own OpenAPI document, with every check it has (`--checks
all`: server errors, status codes, headers and bodies as documented, schema-valid requests accepted
and schema-violating ones refused, authentication not ignored, deleted resources gone, created ones
readable, one organisation's objects invisible to another) over every phase, the stateful one
included (operations chained through the links schemathesis infers). It must report nothing.

It runs as three identities (a Web Fuzzing Commons auth file): an owner, the owner of a second
organisation (the peer that object-level authorization probes with), and an integration key of a
third organisation holding every scope (for the routes that take keys; a third organisation, so the
owner's calls cannot revoke it). `schemathesis_hooks.py` teaches it the two rules the document can
only state in words. Run through schemathesis's CLI, its most stable interface."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sre_copilot.supervisor import Platform
from tests.conftest import fresh_address, register_tenant

pytestmark = pytest.mark.e2e

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
ROOT = Path(__file__).resolve().parents[2]
# Test cases per operation and phase: enough to find what it found before, never fewer checks.
# Fewer than the 25 it had while the API was half its size, to keep the suite in its budget (the
# API has grown to about 150 operations; every phase and check still runs on each, and the coverage
# phase's boundary values do not depend on this number).
MAX_EXAMPLES = 8
# Calls per stateful scenario: enough for chains such as invite -> deactivate -> reactivate.
STATEFUL_STEPS = 40
# Warnings the run may give: operations whose success needs data no generated request can have.
EXPECTED_WARNINGS: dict[str, set[str]] = {
    # Changing your password needs the current one, which the run does not know (403, then 401 for
    # the other identities).
    "missing_auth": {"POST /api/v1/auth/password"},
    "missing_test_data": {
        # The session caps an organisation's active keys at 5 (MAX_ACTIVE_KEYS_PER_TENANT), reached
        # early: later revocations only find other organisations' key ids (404, as they should).
        "POST /api/v1/integration-keys/{key_id}/revoke",
        # Only an active user can be deactivated and then reactivated; one takes an accepted
        # invitation (its one-time token and a password), which no link carries. Invited users
        # answer 409, other organisations' 404.
        "POST /api/v1/users/{user_id}/deactivate",
        "POST /api/v1/users/{user_id}/reactivate",
        # An edit succeeds only with the current version of a draft that exists (drafted first);
        # generated versions mostly miss it (409) or name an incident without one (404).
        "PUT /api/v1/incidents/{incident_id}/postmortem",
        # A failed delivery exists only once a webhook failed to deliver an event, after retries.
        "POST /api/v1/integrations/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
        # A page exists once an escalation fired, and its link's token is signed by oncall: only a
        # notification carries one (tests/e2e/test_oncall_paging.py follows it).
        "GET /api/v1/pages/{page_id}/ack",
        "POST /api/v1/pages/{page_id}/ack",
        # Needs both a calendar secret (issue_calendar_feed's answer) and a schedule id (another
        # operation's): no single link carries the two.
        "GET /api/v1/calendars/{token}/schedules/{schedule_id}.ics",
        # A user's Slack link: generated user ids are nobody's (404); `me` is the caller, tested in
        # tests/e2e/test_slack_actions.py.
        "PUT /api/v1/integrations/slack/links/{user_id}",
        "GET /api/v1/integrations/slack/links/{user_id}",
        "DELETE /api/v1/integrations/slack/links/{user_id}",
    },
}
# Schemathesis's defaults for what may answer a valid request and what refuses an invalid one.
POSITIVE_ANSWERS = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
NEGATIVE_ANSWERS = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]


def run_schemathesis(
    base_url: str,
    identities: dict[str, str],
    workdir: Path,
    max_examples: int,
    path_parameters: dict[str, dict[str, str]] | None = None,
) -> tuple[int, str]:
    """Run schemathesis over `base_url` as `identities` (name -> Authorization value, the first two
    being the peers), with `path_parameters` (operation id -> {name: value}) fixed; its exit status
    and output."""
    auth = workdir / "auth.json"
    auth.write_text(
        json.dumps(
            {
                "auth": [
                    {"name": name, "fixedHeaders": [{"name": "Authorization", "value": value}]}
                    for name, value in identities.items()
                ]
            }
        )
    )
    config = workdir / "schemathesis.toml"
    peers = json.dumps(list(identities)[:2])
    config.write_text(
        f'hooks = "{HOOKS}"\n\n[auth.wfc]\npath = "{auth}"\npeers = {peers}\n\n'
        # Each run on its own: schemathesis would otherwise keep state in ./.schemathesis (which
        # identity each operation settled on, among others) and carry it into the next run.
        "[cache]\nenabled = false\n\n"
        # A body over MAX_REQUEST_BYTES is a 413 whatever it holds (a limit in bytes, which no schema
        # keyword states): it counts as refused, as schemathesis's own lists count a 415 or a 429.
        "[checks.positive_data_acceptance]\n"
        f"expected-statuses = {json.dumps([*POSITIVE_ANSWERS, '413'])}\n\n"
        "[checks.negative_data_rejection]\n"
        f"expected-statuses = {json.dumps([*NEGATIVE_ANSWERS, '413'])}\n\n"
        f"[phases.stateful]\nmax-steps = {STATEFUL_STEPS}\n"
    )
    for operation, parameters in (path_parameters or {}).items():
        fixed = ", ".join(f'"path.{name}" = "{value}"' for name, value in parameters.items())
        config.write_text(
            config.read_text()
            + f'\n[[operations]]\ninclude-operation-id = "{operation}"\nparameters = {{ {fixed} }}\n'
        )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(max_examples),
            "--generation-deterministic",
            "--generation-allow-x00",
            "true",
            # The session trusts 127.0.0.1 as a proxy: this run's rate limits count for an address of its own.
            "--header",
            f"X-Forwarded-For: {fresh_address()}",
            "--report",
            "json,vcr",
            "--report-dir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        # The checkout first; whatever else the run was given stays reachable (the hooks import it).
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        },
    )
    return result.returncode, result.stdout + result.stderr


# Every operation, every phase: minutes on a busy 2-core machine (the subprocess has its own bound).
@pytest.mark.timeout(900)
async def test_every_operation_with_every_check(platform: Platform, tmp_path: Path) -> None:
    async with httpx.AsyncClient(
        base_url=platform.gateway_url, timeout=15, headers={"X-Forwarded-For": fresh_address()}
    ) as http:
        owner = await register_tenant(http, "Fuzzing")
        peer = await register_tenant(http, "Fuzzing peer")
        machines = await register_tenant(http, "Fuzzing machines")
        created = await http.post(
            "/api/v1/integration-keys",
            json={"name": "fuzzing", "scopes": ["alerts:write", "deploys:write"]},
            headers=machines.auth,
        )
        assert created.status_code == 201, created.text
        # A JSON source of the key's organisation that reads any body, for `POST .../json/{id}`: no
        # response carries another organisation's source id to the key, so it is given (below).
        source = await http.post(
            "/api/v1/integrations/json-sources",
            json={"name": "fuzzing", "mapping": {"title": "to_string(@)"}},
            headers=machines.auth,
        )
        assert source.status_code == 201, source.text
        served = (await http.get("/openapi.json")).json()
    assert served == json.loads((ROOT / "docs" / "openapi.json").read_text()), "docs/openapi.json is stale"
    identities = {
        "owner": f"Bearer {owner.token}",
        "peer": f"Bearer {peer.token}",
        "integration-key": f"Bearer {created.json()['key']}",
    }
    status, output = run_schemathesis(
        platform.gateway_url,
        identities,
        tmp_path,
        MAX_EXAMPLES,
        {"receive_json": {"source_id": source.json()["id"]}},
    )
    (tmp_path / "schemathesis.txt").write_text(output)
    assert status == 0, output[-8000:]
    (report_file,) = tmp_path.glob("json-*.json")
    report = json.loads(report_file.read_text())
    assert report["complete"] and report["failures"] == [] and report["errors"] == [], output[-8000:]
    # Warnings say where the run could not reach far; only these are expected, each for a reason of
    # the test data, not of the API. Any other is a gap to look at.
    unexpected = {
        kind: sorted(set(operations) - EXPECTED_WARNINGS.get(kind, set()))
        for kind, operations in report["warnings"].items()
    }
    assert not any(unexpected.values()), (unexpected, output[-8000:])
