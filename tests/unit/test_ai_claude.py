"""The Claude engine, through the real anthropic SDK, against a fake Anthropic API at the HTTP
transport (the SDK's own HTTP library, httpx2, with a MockTransport: no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx2
import pytest
import structlog

from ai_worker.engines import claude as claude_engine
from ai_worker.engines.claude import (
    HYPOTHESES_SCHEMA,
    SUBMIT,
    ClaudeEngine,
    Submission,
    ToolOutput,
    to_hypotheses,
)
from ai_worker.evidence import DeployFact, IncidentFacts, evidence_items, gather, render
from ai_worker.settings import AiWorkerSettings
from contracts.events import EvidenceItem

KEY = "sk-ant-test-0123456789-very-secret"
BASE_URL = "https://claude-proxy.test"
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)

INCIDENT = IncidentFacts(
    id="00000000-0000-0000-0000-000000000001",
    tenant_id="t_1",
    key="INC-10",
    title="Checkout errors on payment-api",
    description="HTTP 500 for 20% of checkouts since 11:55.",
    service_name="payment-api",
    severity="high",
    created_at=NOW,
)
DEPLOY = DeployFact(
    "d-7", "payment-api", "v2.4.1", "production", NOW - timedelta(minutes=9), "abc1234", "alice"
)
EVIDENCE = gather(INCIDENT, [], deploys=[DEPLOY])

GOOD_ANSWER = {
    "hypotheses": [
        {
            "claim": "Connection pool exhaustion",
            "description": "Pool at its maximum.",
            "confidence": 0.2,
            "evidence": ["no direct signal: no pool figures were gathered"],
        },
        {
            "claim": "Bad deploy v2.4.1",
            "description": "Deployed 9 minutes before the errors; roll back.",
            "confidence": 0.6,
            "evidence": ["[E1] errors on checkout", "[E1] 500s since 11:55"],
        },
        {
            "claim": "Payment provider outage",
            "description": "Check the provider.",
            "confidence": 0.1,
            "evidence": ["No direct signal yet"],
        },
    ]
}


def settings(**overrides: Any) -> AiWorkerSettings:
    values: dict[str, Any] = {
        "anthropic_api_key": KEY,
        "anthropic_model": "claude-sonnet-5-5",
        "anthropic_base_url": BASE_URL,
        "anthropic_timeout_seconds": 5.0,
        "anthropic_max_retries": 2,
        "anthropic_total_timeout_seconds": 20.0,
        "anthropic_max_tool_iterations": 4,
        "anthropic_max_tokens_per_incident": 20_000,
    }
    return AiWorkerSettings(**(values | overrides))


def message(
    *content: dict[str, Any], stop_reason: str = "tool_use", tokens: tuple[int, int] = (900, 120)
) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
    }


def tool_use(name: str, payload: dict[str, Any], call_id: str = "toolu_01") -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": payload}


class FakeAnthropic:
    """Answers each POST /v1/messages with the next scripted response; records the requests."""

    def __init__(self, *script: httpx2.Response | dict[str, Any] | Callable[[], Any]) -> None:
        self.script = list(script)
        self.requests: list[httpx2.Request] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if callable(step):
            step = step()
            if asyncio.iscoroutine(step):
                step = await step
        if isinstance(step, httpx2.Response):
            return step
        return httpx2.Response(200, json=step)

    def body(self, index: int) -> dict[str, Any]:
        return json.loads(self.requests[index].content)

    def engine(self, **overrides: Any) -> ClaudeEngine:
        configured = settings(**overrides)
        client = anthropic.AsyncAnthropic(
            api_key=KEY,
            base_url=configured.anthropic_base_url,
            max_retries=configured.anthropic_max_retries,
            timeout=configured.anthropic_timeout_seconds,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self)),
        )
        return ClaudeEngine(configured, client)


class Tools:
    """The evidence tools, answering from fixed data."""

    def __init__(self, metrics: bool = True) -> None:
        self.metrics_available = metrics
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def recent_deploys(self, hours: float) -> ToolOutput:
        self.calls.append(("recent_deploys", (hours,)))
        item = EvidenceItem(
            kind="deploy", summary="payment-api v2.4.0 deployed 30 h before", source="deploy d-6"
        )
        return ToolOutput([{"deploy_id": "d-6", "version": "v2.4.0"}], [item])

    async def similar_incidents(self, query: str | None, limit: int) -> ToolOutput:
        self.calls.append(("similar_incidents", (query, limit)))
        return ToolOutput([{"key": "INC-445", "root_cause": "connection-pool exhaustion"}])

    async def query_metrics(
        self, metric: str | None, promql: str | None, minutes_before: int, minutes_after: int
    ) -> ToolOutput:
        self.calls.append(("query_metrics", (metric, promql, minutes_before, minutes_after)))
        return ToolOutput({"at_start": 0.31})


async def generate(fake: FakeAnthropic, tools: Tools | None = None, **overrides: Any):
    return await fake.engine(**overrides).generate(EVIDENCE, evidence_items(EVIDENCE), tools or Tools())


def test_the_submit_schema_is_the_validated_model() -> None:
    properties = HYPOTHESES_SCHEMA["properties"]["hypotheses"]
    assert (properties["minItems"], properties["maxItems"]) == (3, 3)
    item = properties["items"]
    assert (
        set(item["required"]) == set(item["properties"]) == {"claim", "description", "confidence", "evidence"}
    )
    model = Submission.model_json_schema()
    fields = model["$defs"]["SubmittedHypothesis"]["properties"]
    assert set(fields) == set(item["properties"])
    assert (item["properties"]["confidence"]["minimum"], item["properties"]["confidence"]["maximum"]) == (
        0,
        1,
    )


async def test_the_request_carries_model_tools_incident_and_evidence() -> None:
    fake = FakeAnthropic(message(tool_use(SUBMIT, GOOD_ANSWER)))
    await generate(fake)
    request = fake.requests[0]
    assert str(request.url) == f"{BASE_URL}/v1/messages"
    # Older SDKs send the key as x-api-key, newer ones as a bearer token.
    assert request.headers.get("x-api-key") == KEY or request.headers.get("authorization") == f"Bearer {KEY}"
    assert request.headers["anthropic-version"]
    body = fake.body(0)
    assert body["model"] == "claude-sonnet-5-5"
    assert 256 <= body["max_tokens"] <= 2048
    assert "three most likely root causes" in body["system"]
    assert body["tool_choice"] == {"type": "any"}
    tools = {t["name"]: t for t in body["tools"]}
    assert set(tools) == {"get_recent_deploys", "find_similar_incidents", "query_metrics", SUBMIT}
    assert tools[SUBMIT]["input_schema"] == HYPOTHESES_SCHEMA
    [first] = body["messages"]
    assert first["role"] == "user"
    assert "Incident INC-10 (high) on service payment-api" in first["content"]
    assert "Checkout errors on payment-api" in first["content"]
    assert (
        "Closest deploy before the start: payment-api v2.4.1 deployed to production 9 min" in first["content"]
    )


async def test_without_prometheus_there_is_no_metrics_tool() -> None:
    fake = FakeAnthropic(message(tool_use(SUBMIT, GOOD_ANSWER)))
    await generate(fake, Tools(metrics=False))
    assert "query_metrics" not in {t["name"] for t in fake.body(0)["tools"]}


async def test_a_valid_answer_is_ranked_by_confidence() -> None:
    fake = FakeAnthropic(message(tool_use(SUBMIT, GOOD_ANSWER)))
    result = await generate(fake)
    assert result.engine == "claude" and result.fallback_reason is None
    assert [h.claim for h in result.hypotheses] == [
        "Bad deploy v2.4.1",
        "Connection pool exhaustion",
        "Payment provider outage",
    ]
    assert [h.rank for h in result.hypotheses] == [1, 2, 3]
    assert [h.confidence for h in result.hypotheses] == [0.6, 0.2, 0.1]
    assert all(h.engine == "claude" for h in result.hypotheses)
    assert result.tokens == 1020


async def test_the_tool_loop_runs_the_tools_and_sends_their_results_back() -> None:
    fake = FakeAnthropic(
        message(
            {"type": "text", "text": "Let me look at deploys and metrics."},
            tool_use("get_recent_deploys", {"hours": 48}, "toolu_a"),
            tool_use("query_metrics", {"metric": "error_rate", "minutes_before": 60}, "toolu_b"),
        ),
        message(tool_use("find_similar_incidents", {"query": "pool exhausted", "limit": 3}, "toolu_c")),
        message(tool_use(SUBMIT, GOOD_ANSWER, "toolu_d")),
    )
    tools = Tools()
    result = await generate(fake, tools)
    assert result.engine == "claude"
    assert tools.calls == [
        ("recent_deploys", (48.0,)),
        ("query_metrics", ("error_rate", None, 60, 15)),
        ("similar_incidents", ("pool exhausted", 3)),
    ]
    second = fake.body(1)["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"][0] == {"type": "text", "text": "Let me look at deploys and metrics."}
    assert second[1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_a",
        "name": "get_recent_deploys",
        "input": {"hours": 48},
    }
    results = second[2]["content"]
    assert [r["tool_use_id"] for r in results] == ["toolu_a", "toolu_b"]
    # What a tool adds to the evidence comes with the ids Claude may cite it by (after E1-E4 given).
    assert json.loads(results[0]["content"]) == {
        "result": [{"deploy_id": "d-6", "version": "v2.4.0"}],
        "evidence_ids": ["E5"],
    }
    assert json.loads(results[1]["content"]) == {"at_start": 0.31}
    assert len(fake.body(2)["messages"]) == 5
    # What the tools fetched is kept for the evidence record.
    assert [i.source for i in result.extra_items] == ["deploy d-6"]


async def test_the_last_turn_must_answer() -> None:
    fake = FakeAnthropic(
        message(tool_use("get_recent_deploys", {})),
        message(tool_use(SUBMIT, GOOD_ANSWER)),
    )
    await generate(fake, anthropic_max_tool_iterations=2)
    assert fake.body(0)["tool_choice"] == {"type": "any"}
    assert fake.body(1)["tool_choice"] == {"type": "tool", "name": SUBMIT}


async def test_an_unknown_tool_or_bad_arguments_are_reported_back_to_claude() -> None:
    fake = FakeAnthropic(
        message(tool_use("drop_database", {}, "toolu_x"), tool_use("query_metrics", {}, "toolu_y")),
        message(tool_use(SUBMIT, GOOD_ANSWER)),
    )
    result = await generate(fake)
    assert result.engine == "claude"
    results = fake.body(1)["messages"][2]["content"]
    assert all(r["is_error"] for r in results)
    assert "unknown tool" in results[0]["content"]
    assert "give `metric`" in results[1]["content"]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"hypotheses": GOOD_ANSWER["hypotheses"][:2]}, "invalid answer"),
        ({"hypotheses": [dict(h, confidence=1.5) for h in GOOD_ANSWER["hypotheses"]]}, "invalid answer"),
        ({"hypotheses": [dict(h, evidence=[]) for h in GOOD_ANSWER["hypotheses"]]}, "invalid answer"),
        ({"answer": "it is the database"}, "invalid answer"),
    ],
)
async def test_a_malformed_answer_falls_back_to_rules_and_says_why(
    answer: dict[str, Any], problem: str
) -> None:
    fake = FakeAnthropic(message(tool_use(SUBMIT, answer)))
    result = await generate(fake)
    assert result.engine == "rules"
    assert result.fallback_reason is not None and result.fallback_reason.startswith(f"claude: {problem}")
    assert len(result.hypotheses) == 3 and all(h.engine == "rules" for h in result.hypotheses)


async def test_a_text_answer_without_the_tool_falls_back() -> None:
    fake = FakeAnthropic(message({"type": "text", "text": "It's the database."}, stop_reason="end_turn"))
    result = await generate(fake)
    assert result.engine == "rules"
    assert result.fallback_reason == "claude: answered without calling a tool (stop_reason end_turn)"


async def test_an_answer_cut_off_by_max_tokens_falls_back() -> None:
    fake = FakeAnthropic(message(tool_use(SUBMIT, GOOD_ANSWER), stop_reason="max_tokens"))
    assert (await generate(fake)).fallback_reason == "claude: answer cut off at max_tokens"


async def test_never_answering_falls_back_after_the_last_turn() -> None:
    fake = FakeAnthropic(message(tool_use("get_recent_deploys", {})))
    result = await generate(fake, anthropic_max_tool_iterations=3)
    assert len(fake.requests) == 3
    assert result.fallback_reason == "claude: no answer after 3 turns"


async def test_the_token_budget_caps_the_loop() -> None:
    fake = FakeAnthropic(message(tool_use("get_recent_deploys", {}), tokens=(9_000, 500)))
    result = await generate(fake, anthropic_max_tokens_per_incident=12_000)
    # 9,500 after the first turn is past 75% of the budget: the second must answer, with what is left.
    assert len(fake.requests) == 2
    assert fake.body(1)["tool_choice"] == {"type": "tool", "name": SUBMIT}
    assert fake.body(1)["max_tokens"] == 2_048
    assert result.fallback_reason == "claude: token budget of 12000 spent"


async def test_429_is_retried_with_backoff_then_succeeds() -> None:
    limited = httpx2.Response(
        429,
        headers={"retry-after-ms": "10"},
        json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
    )
    overloaded = httpx2.Response(529, headers={"retry-after-ms": "10"}, json={"type": "error", "error": {}})
    fake = FakeAnthropic(limited, overloaded, message(tool_use(SUBMIT, GOOD_ANSWER)))
    result = await generate(fake)
    assert len(fake.requests) == 3
    assert result.engine == "claude" and result.fallback_reason is None


async def test_429_beyond_the_retries_falls_back() -> None:
    limited = httpx2.Response(429, headers={"retry-after-ms": "10"}, json={"type": "error", "error": {}})
    fake = FakeAnthropic(limited)
    result = await generate(fake, anthropic_max_retries=1)
    assert len(fake.requests) == 2
    assert result.engine == "rules"
    assert result.fallback_reason == "claude: HTTP 429 (RateLimitError)"


async def test_a_request_timeout_falls_back() -> None:
    def timeout() -> httpx2.Response:
        raise httpx2.ReadTimeout("read timed out")

    fake = FakeAnthropic(timeout)
    result = await generate(fake, anthropic_max_retries=0)
    assert result.engine == "rules"
    assert result.fallback_reason == "claude: request timed out after 0 retries"


async def test_the_whole_loop_has_a_deadline() -> None:
    async def stall() -> httpx2.Response:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    fake = FakeAnthropic(stall)
    result = await generate(fake, anthropic_total_timeout_seconds=0.2)
    assert result.engine == "rules"
    assert result.fallback_reason == "claude: no answer within 0.2 s"


async def test_the_key_never_reaches_logs_or_the_fallback_reason() -> None:
    # An API (or a proxy) that echoes the key back in its error.
    refused = httpx2.Response(
        401,
        json={
            "type": "error",
            "error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"},
        },
    )
    fake = FakeAnthropic(refused)
    with structlog.testing.capture_logs() as logs:
        result = await generate(fake)
    assert result.fallback_reason == "claude: HTTP 401 (AuthenticationError)"
    assert logs and all(KEY not in json.dumps(entry, default=str) for entry in logs)
    assert KEY not in repr(settings())
    assert KEY not in settings().model_dump_json()


def test_confidences_above_one_in_total_are_scaled_down() -> None:
    answer = {"hypotheses": [dict(h, confidence=0.9) for h in GOOD_ANSWER["hypotheses"]]}
    hypotheses = to_hypotheses(answer)
    assert [h.confidence for h in hypotheses] == [0.33, 0.33, 0.33]
    assert sum(h.confidence for h in hypotheses) <= 1


def test_the_engine_needs_a_key() -> None:
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        ClaudeEngine(AiWorkerSettings(anthropic_api_key=None))
    assert claude_engine.ENGINE == "claude"


async def test_the_engine_is_chosen_by_settings() -> None:
    from ai_worker.generation import Generator

    service: Any = None  # engine choice needs neither the bus nor the database
    assert Generator.from_settings(service, AiWorkerSettings(anthropic_api_key=None)).claude is None
    assert Generator.from_settings(service, settings()).claude is not None
    assert Generator.from_settings(service, settings(ai_engine="rules")).claude is None
    unkeyed = Generator.from_settings(service, AiWorkerSettings(ai_engine="claude", anthropic_api_key=None))
    result = await unkeyed.run_engine(EVIDENCE)
    assert (result.engine, result.fallback_reason) == ("rules", "claude: ANTHROPIC_API_KEY is not set")
    offline = await Generator.from_settings(service, AiWorkerSettings(anthropic_api_key=None)).run_engine(
        EVIDENCE
    )
    assert (offline.engine, offline.fallback_reason) == ("rules", None)


async def test_an_unexpected_failure_falls_back_too() -> None:
    def broken() -> httpx2.Response:
        return httpx2.Response(200, json={"not": "a message"})

    result = await generate(FakeAnthropic(broken))
    assert result.engine == "rules"
    assert result.fallback_reason is not None and result.fallback_reason.startswith("claude: unexpected ")


async def test_metric_queries_are_bounded_per_generation() -> None:
    def queries(*ids: str) -> dict[str, Any]:
        return message(*(tool_use("query_metrics", {"promql": f"up{{i='{i}'}}"}, f"toolu_{i}") for i in ids))

    fake = FakeAnthropic(
        queries("a", "b"), queries("c", "d"), message(tool_use(SUBMIT, GOOD_ANSWER, "toolu_z"))
    )
    tools = Tools()
    result = await generate(fake, tools, anthropic_max_metric_queries=3)
    assert result.engine == "claude"
    assert [c[0] for c in tools.calls] == ["query_metrics"] * 3  # the fourth never reached Prometheus
    refused = fake.body(2)["messages"][-1]["content"]
    assert refused[0].get("is_error") is None
    assert refused[1]["is_error"] is True and "3 metric queries" in json.loads(refused[1]["content"])["error"]


def test_every_citation_must_name_evidence_claude_was_given() -> None:
    known = evidence_items(EVIDENCE)
    cites = [dict(h) for h in GOOD_ANSWER["hypotheses"]]
    cites[1] = dict(cites[1], evidence=[f"[E{len(known)}] the deploy", "[E1, E2] the report"])
    ranked = to_hypotheses({"hypotheses": cites}, known)
    deploy = next(h for h in ranked if h.claim.startswith("Bad deploy"))
    # Claude's words, then each cited item as the evidence record shows it.
    assert deploy.evidence[:2] == ["the deploy", "the report"]
    assert set(deploy.evidence[2:]) == {render(known[-1]), render(known[0]), render(known[1])}
    for bad, reason in (
        ([f"[E{len(known) + 1}] invented"], f"cites unknown evidence E{len(known) + 1}"),
        (["[E0] nothing"], "cites unknown evidence E0"),
        (["a claim with no citation"], "citing nothing"),
    ):
        wrong = [dict(h) for h in GOOD_ANSWER["hypotheses"]]
        wrong[1] = dict(wrong[1], evidence=bad)
        with pytest.raises(claude_engine.EngineFailed, match=reason):
            to_hypotheses({"hypotheses": wrong}, known)


async def test_an_answer_citing_unknown_evidence_falls_back_to_the_rules_with_the_reason() -> None:
    wrong = [dict(h) for h in GOOD_ANSWER["hypotheses"]]
    wrong[0] = dict(wrong[0], evidence=["[E99] a pool graph nobody gathered"])
    fake = FakeAnthropic(message(tool_use(SUBMIT, {"hypotheses": wrong})))
    result = await generate(fake, Tools())
    assert result.engine == "rules"
    assert result.fallback_reason is not None and "unknown evidence E99" in result.fallback_reason
