"""What a report asserts, as opposed to which words it uses: clauses, negations and contrasts.

"Memory is flat, and it is not the database this time" names two causes only to rule them out. Each
report is cut into clauses (sentences, then at `;`, `, and`, `but`, `so`...); a mention inside a clause
gets a polarity:
- 1.0: asserted;
- -1.0: ruled out by a negation just before it ("not the database", "no deploy today", "nothing was
  deployed") or a verdict just after it ("memory is flat", "DNS resolves fine", "is healthy");
- 0.0: a suspicion the report then drops ("we suspected the release, but ...", "at first ...");
- 0.5: the half of a contrast that comes before its "but".
Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A full stop ends a sentence only before a space or the end: "ssl.SSLError", "v1.2" and
# "payments.internal" stay inside theirs.
SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?!\s|$))+[.!?]?")
# Where one statement ends and the next begins inside a sentence.
CLAUSE_BREAK = re.compile(
    r";|,\s*(?=(?:and|so|while|though|although|whereas|yet|which)\b)|\s*,?\s*\bbut\b\s*|\s+so\s+(?=it\b)",
    re.IGNORECASE,
)
BUT = re.compile(r"\bbut\b", re.IGNORECASE)
# A negation this close before a mention rules it out.
NEGATION_BEFORE = re.compile(
    r"\b(?:not|no|never|nothing|without|isn't|wasn't|aren't|weren't|doesn't|didn't|hasn't|haven't|"
    r"rather than|ruled out|rule out)\b(?:\W+\w+){0,3}\W*$",
    re.IGNORECASE,
)
# A verdict this close after a mention rules it out ("memory is flat", "DNS resolves fine"): a verb
# that makes the mention its subject, then the verdict; or a verdict that needs no verb.
VERDICT_AFTER = re.compile(
    r"^[^;]{0,30}?\b(?:(?:is|are|was|were|looks?|looked|seems?|seemed|stays?|stayed|remains?|"
    r"remained|resolves?|resolved|itself is)\s+(?:[\w%()-]+\s+){0,2}?(?:fine|flat|stable|normal|healthy|"
    r"green|unchanged|idle|reachable|ok|okay|only at)|ruled out|not (?:the )?(?:cause|problem|issue|culprit)|"
    r"did ?n[o']t (?:help|change)|has ?n[o']t changed)\b",
    re.IGNORECASE,
)
# The first half of a contrast that states a suspicion the report then drops.
SUSPICION = re.compile(
    r"\b(?:suspected|at first|looked like|thought|blamed|assumed|seemed like|started (?:right )?"
    r"(?:around|after|with))\b",
    re.IGNORECASE,
)
# Words that link a verdict back to an earlier mention, and so must not carry it further.
SUBJECT_BREAK = re.compile(r"\b(?:or|while|but|because|until)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    text: str
    # 1.0 asserted, 0.5 the first half of a contrast, 0.0 a suspicion then dropped.
    stance: float


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.findall(text) if s.strip()]


def clauses(text: str) -> list[Clause]:
    """The report's clauses, in order, each with its stance."""
    found: list[Clause] = []
    for sentence in sentences(text):
        but = BUT.search(sentence)
        before_but = sentence[: but.start()] if but else ""
        suspicion = bool(but and SUSPICION.search(before_but))
        position = 0
        for piece in CLAUSE_BREAK.split(sentence):
            start = sentence.find(piece, position)
            position = start + len(piece)
            piece = piece.strip(" ,")
            if not piece:
                continue
            stance = 1.0
            if but is not None and start < but.start():
                stance = 0.0 if suspicion else 0.5
            found.append(Clause(piece, stance))
    return found


def polarity(clause: Clause, start: int, end: int) -> float:
    """How the clause stands to the mention at clause.text[start:end]: see the module docstring."""
    before, after = clause.text[:start], clause.text[end:]
    if NEGATION_BEFORE.search(before[-60:]):
        return -1.0
    verdict = VERDICT_AFTER.search(after)
    if verdict and not SUBJECT_BREAK.search(after[: verdict.start()]):
        return -1.0
    return clause.stance
