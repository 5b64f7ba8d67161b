"""Claude writes a postmortem's narrative (its summary and what happened); the template writes the
rest. Claude sees the template's draft, whose every line cites its event, and must cite the same
way; each citation it makes is checked against the log, and a single one naming an event the log
does not have (or at another sequence) means the template's draft is used, with the reason.

The client is the one the hypothesis engine uses (`ai_worker.engines.claude.ClaudeEngine`): same
settings, timeouts, retries, and the API key kept out of every reason and log line."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import anthropic
import structlog
from anthropic.types import ToolChoiceParam

from ai_worker import postmortem
from ai_worker.engines.claude import ClaudeEngine
from contracts.commands import LogEntry, PostmortemText
from contracts.events import FollowUpSnapshot, IncidentSnapshot

log = structlog.get_logger(__name__)

ENGINE = "claude"
SUBMIT = "submit_postmortem"
SYSTEM = """You are an SRE writing the blameless postmortem of a resolved production incident. You \
are given a draft whose every line cites the event of the incident's log it comes from, as \
[#<sequence>](#event-<event id>). Write its narrative: a short summary, and what happened, told as a \
story of detection, diagnosis and recovery.

Rules:
- State only what the draft's events say. Cite each fact exactly as the draft cites its event: \
[#<sequence>](#event-<event id>), copying both numbers. Never cite an event the draft does not cite.
- Blameless: describe what people did and knew, not who is at fault.
- Answer only by calling submit_postmortem."""

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "description": "Two to four sentences, with citations."},
        "narrative": {
            "type": "string",
            "description": "What happened, in a few paragraphs of markdown, with citations.",
        },
    },
    "required": ["summary", "narrative"],
    "additionalProperties": False,
}


class PostmortemWriter:
    def __init__(self, engine: ClaudeEngine) -> None:
        self.engine = engine

    async def draft(
        self,
        incident: IncidentSnapshot,
        entries: Sequence[LogEntry],
        people: dict[str, str],
        follow_ups: Sequence[FollowUpSnapshot],
    ) -> PostmortemText:
        """Claude's narrative in the template's draft, or the template's draft with the reason."""
        ordered = sorted(entries, key=lambda e: e.seq)
        facts = postmortem.Facts(incident, ordered, people, follow_ups)
        template = postmortem.sections(facts)
        settings = self.engine.settings
        try:
            async with asyncio.timeout(settings.anthropic_total_timeout_seconds):
                summary, narrative = await self._ask(template)
            unknown = postmortem.unknown_citations(summary + "\n" + narrative, ordered)
            if unknown:
                raise ValueError("cites events that are not in the log: " + ", ".join(unknown[:5]))
            markdown = postmortem.sections(facts, summary_text=summary, narrative=narrative)
            return PostmortemText(
                markdown=markdown, citations=postmortem.citations_in(markdown), engine=ENGINE
            )
        except TimeoutError:
            reason = f"no answer within {settings.anthropic_total_timeout_seconds:g} s"
        except anthropic.APIConnectionError:
            reason = "could not connect to the API"
        except anthropic.APIStatusError as exc:
            reason = f"HTTP {exc.status_code} ({type(exc).__name__})"
        except anthropic.AnthropicError as exc:
            reason = type(exc).__name__
        except ValueError as exc:
            reason = str(exc)
        except Exception as exc:  # whatever it is, the incident still gets a draft
            log.exception("claude_postmortem_failed")
            reason = f"unexpected {type(exc).__name__}"
        reason = self.engine._safe(f"claude: {reason}")
        log.warning("claude_postmortem_fallback", reason=reason)
        return postmortem.draft(incident, ordered, people, follow_ups, fallback_reason=reason)

    async def _ask(self, template: str) -> tuple[str, str]:
        settings = self.engine.settings
        choice: ToolChoiceParam = {"type": "tool", "name": SUBMIT}
        response = await self.engine.client.messages.create(
            model=settings.anthropic_model,
            max_tokens=settings.anthropic_max_output_tokens,
            system=SYSTEM,
            tools=[
                {
                    "name": SUBMIT,
                    "description": "Submit the postmortem's summary and narrative.",
                    "input_schema": SCHEMA,
                }
            ],
            tool_choice=choice,
            messages=[{"role": "user", "content": "The draft:\n\n" + template}],
        )
        answer = next((b for b in response.content if b.type == "tool_use" and b.name == SUBMIT), None)
        if answer is None:
            raise ValueError(f"answered without submit_postmortem (stop_reason {response.stop_reason})")
        if response.stop_reason == "max_tokens":
            raise ValueError("answer cut off at max_tokens")
        raw = answer.input if isinstance(answer.input, dict) else {}
        summary, narrative = raw.get("summary"), raw.get("narrative")
        if not isinstance(summary, str) or not isinstance(narrative, str) or not summary.strip():
            raise ValueError("the answer lacks a summary or a narrative")
        return summary.strip(), narrative.strip()
