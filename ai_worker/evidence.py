"""Evidence gathering shared by every engine: pure functions over what the worker knows."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TOKEN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
FIGURE = re.compile(r"\b\d+(?:\.\d+)?\s?(?:%|ms|s|sec|seconds|gb|mb|k|rps|qps)(?![a-z])", re.IGNORECASE)
SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
STOPWORDS = frozenset(
    "a an the and or of to in on at for from with by is are was were be been after before this that "
    "it its as into than then we our us".split()
)


@dataclass(frozen=True)
class IncidentFacts:
    id: str
    tenant_id: str
    key: str
    title: str
    description: str
    service_name: str
    severity: str
    created_at: datetime

    @property
    def text(self) -> str:
        return f"{self.title}. {self.description}"


@dataclass(frozen=True)
class PastIncident:
    key: str
    title: str
    description: str
    service_name: str
    state: str
    created_at: datetime

    @property
    def text(self) -> str:
        return f"{self.title}. {self.description}"


@dataclass(frozen=True)
class Similar:
    incident: PastIncident
    score: float


@dataclass
class Evidence:
    """What the worker knows about one incident before any engine runs."""

    incident: IncidentFacts
    figures: list[str] = field(default_factory=list)
    similar: list[Similar] = field(default_factory=list)
    recent_on_service: list[PastIncident] = field(default_factory=list)


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOPWORDS and len(t) > 1]


def sentence_with(text: str, word: str, limit: int = 160) -> str:
    for sentence in SENTENCE.findall(text):
        if word in sentence.lower():
            s = str(sentence).strip()
            return s if len(s) <= limit else s[: limit - 1] + "…"
    return text.strip()[:limit]


def tfidf_similarity(query: str, documents: list[str]) -> list[float]:
    """Cosine similarity of `query` with each document, TF-IDF weighted over query + documents."""
    docs = [Counter(tokens(d)) for d in documents]
    q = Counter(tokens(query))
    n = len(docs) + 1
    df: Counter[str] = Counter()
    for d in [q, *docs]:
        df.update(d.keys())

    def vector(counts: Counter[str]) -> dict[str, float]:
        return {t: c * (math.log((1 + n) / (1 + df[t])) + 1) for t, c in counts.items()}

    qv = vector(q)
    qn = math.sqrt(sum(v * v for v in qv.values())) or 1.0
    scores = []
    for d in docs:
        dv = vector(d)
        dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
        scores.append(sum(w * dv.get(t, 0.0) for t, w in qv.items()) / (qn * dn))
    return scores


def gather(incident: IncidentFacts, history: list[PastIncident], recent_days: int = 7) -> Evidence:
    evidence = Evidence(incident=incident, figures=list(dict.fromkeys(FIGURE.findall(incident.text))))
    if history:
        scores = tfidf_similarity(
            f"{incident.text} {incident.service_name}", [f"{p.text} {p.service_name}" for p in history]
        )
        ranked = sorted(
            (
                Similar(p, s + (0.15 if p.service_name == incident.service_name else 0.0))
                for p, s in zip(history, scores, strict=True)
            ),
            key=lambda s: (-s.score, s.incident.key),
        )
        evidence.similar = [s for s in ranked if s.score >= 0.2][:5]
    since = incident.created_at - timedelta(days=recent_days)
    evidence.recent_on_service = [
        p for p in history if p.service_name == incident.service_name and p.created_at >= since
    ]
    return evidence
