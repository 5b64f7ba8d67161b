"""The Claude engine: the incident and its gathered evidence go to Claude (the `anthropic` SDK), which
may call the evidence tools itself in a bounded loop and must answer through `submit_hypotheses`,
whose input schema is the hypothesis list.

Bounds: each HTTP request has a timeout and is retried by the SDK on 429/5xx/timeouts with
exponential back-off (honouring retry-after); the whole loop has a deadline, a number of turns and a
token budget. Whatever goes wrong (an error, a timeout, a spent budget, an answer that does not
validate) the rules engine answers instead and `fallback_reason` says why. The API key goes to the
SDK and nowhere else: not into logs, events or the fallback reason.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anthropic
import structlog
from anthropic.types import ToolChoiceParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ai_worker.engines import rules
from ai_worker.evidence import Evidence, render
from ai_worker.settings import AiWorkerSettings
from ai_worker.signatures import Catalogue
from contracts.events import EvidenceItem, Hypothesis

log = structlog.get_logger(__name__)

ENGINE = "claude"
SUBMIT = "submit_hypotheses"
METRIC_NAMES = ("cpu", "memory", "error_rate", "latency_p99", "request_rate")
# Below this many output tokens left, another turn cannot produce a useful answer.
MIN_TURN_TOKENS = 256
# Past this share of the budget, the next turn must answer.
ANSWER_AT_BUDGET_SHARE = 0.75

SYSTEM = """You are an SRE investigating a production incident. Propose the three most likely root \
causes, most likely first, each backed by evidence a person can check.

Rules:
- Use the evidence given, and call get_recent_deploys, find_similar_incidents or query_metrics when \
more evidence would change your ranking. Do not call a tool for something you already have.
- Cite evidence concretely in each hypothesis's `evidence` list: deploy versions and times, alert \
names, metric numbers, incident keys and dates. Do not invent evidence.
- Every evidence entry starts with the ids of the evidence it rests on, in brackets: \
"[E2] v2.4.1 deployed 9 min before the errors", "[E1, E4] ...". The gathered evidence is numbered E1, \
E2, ...; what a tool returns carries its ids in `evidence_ids`. Cite only ids you were given; an entry \
citing none must say "no direct signal". An answer citing an unknown id is discarded.
- query_metrics answers a few queries per incident, then refuses: ask for what would change your \
ranking. Cite a metric you used by its PromQL expression and the value it returned.
- `confidence` is your probability that the hypothesis is the root cause (0 to 1); the three sum to at \
most 1.
- Answer only by calling submit_hypotheses, with exactly three hypotheses."""

HYPOTHESES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hypotheses": {
            "type": "array",
            "minItems": 3,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "claim": {"type": "string", "description": "The root cause, in one sentence."},
                    "description": {
                        "type": "string",
                        "description": "Why it explains the symptoms, and what to check or do.",
                    },
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "evidence": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string"},
                        "description": "Checkable facts that support it.",
                    },
                },
                "required": ["claim", "description", "confidence", "evidence"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["hypotheses"],
    "additionalProperties": False,
}


class SubmittedHypothesis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claim: str = Field(min_length=1, max_length=500)
    description: str = Field(min_length=1, max_length=4_000)
    confidence: float = Field(ge=0, le=1)
    evidence: list[str] = Field(min_length=1, max_length=20)


class Submission(BaseModel):
    """What `submit_hypotheses` must receive; mirrors HYPOTHESES_SCHEMA."""

    model_config = ConfigDict(extra="forbid")

    hypotheses: list[SubmittedHypothesis] = Field(min_length=3, max_length=3)


@dataclass
class ToolOutput:
    """What a tool answers Claude (JSON-able), and the evidence items it adds to the record."""

    content: Any
    items: list[EvidenceItem] = field(default_factory=list)


class EvidenceTools(Protocol):
    """The evidence tools, bound to one incident by the caller."""

    @property
    def metrics_available(self) -> bool: ...

    async def recent_deploys(self, hours: float) -> ToolOutput: ...

    async def similar_incidents(self, query: str | None, limit: int) -> ToolOutput: ...

    async def query_metrics(
        self, metric: str | None, promql: str | None, minutes_before: int, minutes_after: int
    ) -> ToolOutput: ...


@dataclass
class EngineResult:
    hypotheses: list[Hypothesis]
    engine: str
    fallback_reason: str | None = None
    # Evidence that tools fetched during the loop, recorded with the rest.
    extra_items: list[EvidenceItem] = field(default_factory=list)
    tokens: int = 0


class EngineFailed(Exception):
    """The reason, in words safe to log and publish."""


def tool_definitions(metrics_available: bool) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = [
        {
            "name": "get_recent_deploys",
            "description": "Deploys of the incident's service before its start (and any since).",
            "input_schema": {
                "type": "object",
                "properties": {
                    "hours": {
                        "type": "number",
                        "minimum": 1,
                        "maximum": 168,
                        "description": "How far back before the start (default 24).",
                    }
                },
                "additionalProperties": False,
            },
        },
        {
            "name": "find_similar_incidents",
            "description": (
                "Past incidents of this organisation most similar to a query (default: this "
                "incident's report), with their recorded root cause when resolved."
            ),
            "input_schema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "maxLength": 500},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10},
                },
                "additionalProperties": False,
            },
        },
    ]
    if metrics_available:
        tools.append(
            {
                "name": "query_metrics",
                "description": (
                    "Read a metric of the service around the incident's start from Prometheus: one of "
                    "the standard signals by name, or any PromQL expression. Answers the baseline "
                    "before the start, the value at the start and the peak after it."
                ),
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "metric": {"type": "string", "enum": list(METRIC_NAMES)},
                        "promql": {"type": "string", "maxLength": 1_000},
                        "minutes_before": {"type": "integer", "minimum": 5, "maximum": 360},
                        "minutes_after": {"type": "integer", "minimum": 0, "maximum": 120},
                    },
                    "additionalProperties": False,
                },
            }
        )
    tools.append(
        {
            "name": SUBMIT,
            "description": "Submit the final answer: exactly three ranked root-cause hypotheses.",
            "input_schema": HYPOTHESES_SCHEMA,
        }
    )
    return tools


def prompt(evidence: Evidence, items: Sequence[EvidenceItem]) -> str:
    incident = evidence.incident
    lines = [
        f"Incident {incident.key} ({incident.severity}) on service {incident.service_name}, reported "
        f"{incident.created_at:%Y-%m-%d %H:%M} UTC; symptoms started "
        f"{evidence.started_at:%Y-%m-%d %H:%M} UTC.",
        f"Title: {incident.title}",
        f"Description: {incident.description or '(none)'}",
        "",
        "Evidence gathered so far:",
    ]
    lines += [f"E{i}. [{item.kind}] {render(item)}" for i, item in enumerate(items, start=1)] or ["(none)"]
    return "\n".join(lines)


CITATION = re.compile(r"^\s*\[\s*(E\d+(?:\s*,\s*E\d+)*)\s*\]\s*(.*)$", re.DOTALL)
NO_SIGNAL = "no direct signal"


def cited_evidence(lines: Sequence[str], known: Sequence[EvidenceItem], rank: int) -> list[str]:
    """Claude's evidence lines, each checked against the evidence it was given (by id), then the
    rendered items it cited: every piece of evidence a hypothesis shows exists."""
    texts: list[str] = []
    cited: list[EvidenceItem] = []
    for line in (line.strip() for line in lines):
        if not line:
            continue
        match = CITATION.match(line)
        if match is None:
            if NO_SIGNAL not in line.lower():
                raise EngineFailed(f"hypothesis {rank} has evidence citing nothing: {line[:80]!r}")
            texts.append(line)
            continue
        for ref in match.group(1).split(","):
            number = int(ref.strip()[1:])
            if not 1 <= number <= len(known):
                raise EngineFailed(f"hypothesis {rank} cites unknown evidence {ref.strip()}")
            if known[number - 1] not in cited:
                cited.append(known[number - 1])
        texts.append(match.group(2).strip() or render(known[int(match.group(1).split(",")[0][1:]) - 1]))
    rendered = [render(item) for item in cited]
    return texts + [line for line in rendered if line not in texts] or [NO_SIGNAL]


def to_hypotheses(raw: object, known: Sequence[EvidenceItem] | None = None) -> list[Hypothesis]:
    """Validate Claude's answer; ranked by its confidence, scaled down if the three exceed 1. With
    `known` (the evidence Claude was given, in the order of its ids), every citation is checked."""
    try:
        submission = Submission.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)[:3]
        )
        raise EngineFailed(f"invalid answer ({problems})") from None
    ordered = sorted(submission.hypotheses, key=lambda h: -h.confidence)
    total = sum(h.confidence for h in ordered)
    scale = 1 / total if total > 1 else 1.0
    return [
        Hypothesis(
            rank=position,
            claim=h.claim.strip(),
            description=h.description.strip(),
            confidence=math.floor(h.confidence * scale * 100) / 100,
            evidence=(
                cited_evidence(h.evidence, known, position)
                if known is not None
                else [e.strip() for e in h.evidence if e.strip()] or ["(no evidence given)"]
            ),
            engine=ENGINE,
        )
        for position, h in enumerate(ordered, start=1)
    ]


def _block_param(block: Any) -> dict[str, Any]:
    """An assistant content block as the API takes it back in the next request."""
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if block.type == "text":
        return {"type": "text", "text": block.text}
    return dict(block.model_dump(exclude_none=True))


def _number(value: object, default: float, low: float, high: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return min(max(number, low), high) if math.isfinite(number) else default


class ClaudeEngine:
    def __init__(self, settings: AiWorkerSettings, client: anthropic.AsyncAnthropic | None = None) -> None:
        self.settings = settings
        if client is None:
            if settings.anthropic_api_key is None:
                raise ValueError("the Claude engine needs ANTHROPIC_API_KEY")
            client = anthropic.AsyncAnthropic(
                api_key=settings.anthropic_api_key.get_secret_value(),
                base_url=settings.anthropic_base_url,
                timeout=settings.anthropic_timeout_seconds,
                max_retries=settings.anthropic_max_retries,
            )
        self.client = client

    def _safe(self, text: str) -> str:
        key = self.settings.anthropic_api_key
        secret = key.get_secret_value() if key is not None else ""
        return text.replace(secret, "***") if secret else text

    async def generate(
        self,
        evidence: Evidence,
        items: Sequence[EvidenceItem],
        tools: EvidenceTools,
        catalogue: Catalogue | None = None,
    ) -> EngineResult:
        """Claude's hypotheses, or the rules' with the reason Claude's could not be used."""
        extra: list[EvidenceItem] = []
        used = [0]
        try:
            async with asyncio.timeout(self.settings.anthropic_total_timeout_seconds):
                hypotheses = await self._loop(evidence, items, tools, extra, used)
            log.info("claude_answered", tokens=used[0], tool_items=len(extra))
            return EngineResult(hypotheses, ENGINE, extra_items=extra, tokens=used[0])
        except TimeoutError:
            reason = f"no answer within {self.settings.anthropic_total_timeout_seconds:g} s"
        except anthropic.APITimeoutError:
            reason = f"request timed out after {self.settings.anthropic_max_retries} retries"
        except anthropic.APIConnectionError:
            reason = "could not connect to the API"
        except anthropic.APIStatusError as exc:
            reason = f"HTTP {exc.status_code} ({type(exc).__name__})"
        except anthropic.AnthropicError as exc:
            reason = type(exc).__name__
        except EngineFailed as exc:
            reason = str(exc)
        except Exception as exc:  # whatever it is, the incident still gets hypotheses
            log.exception("claude_engine_failed")
            reason = f"unexpected {type(exc).__name__}"
        reason = self._safe(f"claude: {reason}")
        log.warning("claude_fallback_to_rules", reason=reason, tokens=used[0])
        return EngineResult(
            rules.generate(evidence, catalogue=catalogue),
            rules.ENGINE,
            reason,
            extra_items=extra,
            tokens=used[0],
        )

    async def _loop(
        self,
        evidence: Evidence,
        items: Sequence[EvidenceItem],
        tools: EvidenceTools,
        extra: list[EvidenceItem],
        used: list[int],
    ) -> list[Hypothesis]:
        settings = self.settings
        budget = settings.anthropic_max_tokens_per_incident
        definitions = tool_definitions(tools.metrics_available)
        metric_queries = 0
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt(evidence, items)}]
        known = list(items)  # what Claude may cite, E1 first
        for turn in range(settings.anthropic_max_tool_iterations):
            final = (
                turn == settings.anthropic_max_tool_iterations - 1
                or used[0] >= budget * ANSWER_AT_BUDGET_SHARE
            )
            max_tokens = min(settings.anthropic_max_output_tokens, budget - used[0])
            if max_tokens < MIN_TURN_TOKENS:
                raise EngineFailed(f"token budget of {budget} spent")
            choice: ToolChoiceParam = {"type": "tool", "name": SUBMIT} if final else {"type": "any"}
            response = await self.client.messages.create(
                model=settings.anthropic_model,
                max_tokens=max_tokens,
                system=SYSTEM,
                tools=definitions,  # type: ignore[arg-type]
                tool_choice=choice,
                messages=messages,  # type: ignore[arg-type]
            )
            used[0] += int(response.usage.input_tokens) + int(response.usage.output_tokens)
            calls = [b for b in response.content if b.type == "tool_use"]
            answer = next((b for b in calls if b.name == SUBMIT), None)
            if answer is not None:
                if response.stop_reason == "max_tokens":
                    raise EngineFailed("answer cut off at max_tokens")
                return to_hypotheses(answer.input, known)
            if not calls:
                raise EngineFailed(f"answered without calling a tool (stop_reason {response.stop_reason})")
            if used[0] >= budget:
                raise EngineFailed(f"token budget of {budget} spent")
            messages.append({"role": "assistant", "content": [_block_param(b) for b in response.content]})
            results = []
            for call in calls:
                if call.name == "query_metrics" and tools.metrics_available:
                    metric_queries += 1
                if call.name == "query_metrics" and metric_queries > settings.anthropic_max_metric_queries:
                    # Bounded: each query costs Prometheus and this generation's time budget.
                    limit = settings.anthropic_max_metric_queries
                    output, is_error = (
                        ToolOutput({"error": f"the {limit} metric queries of this incident are spent"}),
                        True,
                    )
                else:
                    output, is_error = await self._run_tool(tools, call.name, call.input)
                extra.extend(i for i in output.items if i not in extra and i not in items)
                content = output.content
                if output.items:
                    ids = []
                    for item in output.items:
                        if item not in known:
                            known.append(item)
                        ids.append(f"E{known.index(item) + 1}")
                    content = {"result": content, "evidence_ids": ids}
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": json.dumps(content, default=str),
                        **({"is_error": True} if is_error else {}),
                    }
                )
            messages.append({"role": "user", "content": results})
        raise EngineFailed(f"no answer after {settings.anthropic_max_tool_iterations} turns")

    async def _run_tool(self, tools: EvidenceTools, name: str, raw: object) -> tuple[ToolOutput, bool]:
        args = raw if isinstance(raw, dict) else {}
        try:
            if name == "get_recent_deploys":
                return await tools.recent_deploys(_number(args.get("hours"), 24, 1, 168)), False
            if name == "find_similar_incidents":
                query = args.get("query")
                limit = int(_number(args.get("limit"), 5, 1, 10))
                return await tools.similar_incidents(query if isinstance(query, str) else None, limit), False
            if name == "query_metrics" and tools.metrics_available:
                metric, promql = args.get("metric"), args.get("promql")
                if not (isinstance(metric, str) and metric in METRIC_NAMES) and not (
                    isinstance(promql, str) and promql.strip()
                ):
                    return ToolOutput(
                        {"error": f"give `metric` (one of {', '.join(METRIC_NAMES)}) or `promql`"}
                    ), True
                return await tools.query_metrics(
                    metric if isinstance(metric, str) and metric in METRIC_NAMES else None,
                    promql if isinstance(promql, str) and promql.strip() else None,
                    int(_number(args.get("minutes_before"), 30, 5, 360)),
                    int(_number(args.get("minutes_after"), 15, 0, 120)),
                ), False
        except Exception as exc:
            # A failing tool is Claude's problem to reason about, not a reason to give up.
            log.warning("claude_tool_failed", tool=name, error=type(exc).__name__)
            return ToolOutput({"error": f"{name} failed: {type(exc).__name__}"}), True
        return ToolOutput({"error": f"unknown tool {name!r}"}), True
