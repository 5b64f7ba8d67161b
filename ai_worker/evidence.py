"""Evidence gathering shared by every engine: pure functions over what the worker knows.

`gather` assembles what is known about one incident (its report, attached alerts, recent deploys of
its service, metrics around its start, similar past incidents); `evidence_items` turns that into the
structured `EvidenceItem`s published as `evidence.collected`; `render` gives the one-line strings the
API shows under each hypothesis. Nothing here does I/O: the handlers fetch, these functions decide.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.events import EvidenceItem

TOKEN = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
FIGURE = re.compile(r"\b\d+(?:\.\d+)?\s?(?:%|ms|s|sec|seconds|gb|mb|k|rps|qps)(?![a-z])", re.IGNORECASE)
SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
STOPWORDS = frozenset(
    "a an the and or of to in on at for from with by is are was were be been after before this that "
    "it its as into than then we our us".split()
)
REPORT_SENTENCES = 6
SIMILAR_KEPT = 5
SIMILAR_FLOOR = 0.2
# A same-service past incident is likelier to share a cause; a resolved one with a recorded root
# cause is worth more to a responder than an open one.
SAME_SERVICE_BONUS = 0.15
RESOLVED_WITH_CAUSE_BONUS = 0.1
# Alert labels that say nothing a person would check.
NOISY_LABELS = frozenset({"alertname", "prometheus", "receive_resource", "endpoint"})


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
    id: str | None = None
    resolved_at: datetime | None = None
    # The note it was resolved with: the root cause someone recorded.
    resolution: str | None = None

    @property
    def text(self) -> str:
        return f"{self.title}. {self.description}"


@dataclass(frozen=True)
class Similar:
    incident: PastIncident
    score: float


@dataclass(frozen=True)
class DeployFact:
    deploy_id: str
    service_name: str
    version: str
    environment: str
    deployed_at: datetime
    commit: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class AlertFact:
    fingerprint: str
    alertname: str
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    generator_url: str | None = None

    @property
    def text(self) -> str:
        """Its name in words ("KubePodCrashLooping" -> "Kube Pod Crash Looping"), label values and
        annotations: what the rules match against."""
        parts = [split_name(self.alertname)]
        parts += [v for k, v in sorted(self.labels.items()) if k not in NOISY_LABELS]
        parts += [v for _, v in sorted(self.annotations.items())]
        return " ".join(parts)


@dataclass(frozen=True)
class MetricReading:
    """One PromQL expression evaluated around the incident's start."""

    name: str  # "cpu", "memory", "error_rate", "latency_p99", "request_rate", "alert:<alertname>"
    expr: str
    unit: str  # "cores", "bytes", "ratio", "seconds", "rps" or "" (as the expression returns it)
    baseline: float | None  # median before the start
    at_start: float | None
    peak: float | None  # highest from the start on
    link: str | None = None

    @property
    def change(self) -> float | None:
        """How many times the baseline the peak is (None without a usable baseline)."""
        if self.peak is None or self.baseline is None or self.baseline <= 0:
            return None
        return self.peak / self.baseline


@dataclass
class Evidence:
    """What the worker knows about one incident before any engine runs."""

    incident: IncidentFacts
    figures: list[str] = field(default_factory=list)
    similar: list[Similar] = field(default_factory=list)
    recent_on_service: list[PastIncident] = field(default_factory=list)
    alerts: list[AlertFact] = field(default_factory=list)
    # Deploys of the service before the start, closest first; and those after it.
    deploys: list[DeployFact] = field(default_factory=list)
    deploys_after: list[DeployFact] = field(default_factory=list)
    metrics: list[MetricReading] = field(default_factory=list)
    recent_days: int = 7
    # When the symptoms began: the earliest attached alert, or the report if it came first.
    start: datetime | None = None

    @property
    def started_at(self) -> datetime:
        return self.start or self.incident.created_at

    @property
    def closest_deploy(self) -> DeployFact | None:
        return self.deploys[0] if self.deploys else None

    def minutes_before_start(self, deploy: DeployFact) -> float:
        return (self.started_at - deploy.deployed_at).total_seconds() / 60


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOPWORDS and len(t) > 1]


def split_name(name: str) -> str:
    """CamelCase and snake_case names as words: "HighCPUUsage" -> "High CPU Usage"."""
    return CAMEL.sub(" ", name).replace("_", " ")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.findall(text) if s.strip()]


def sentence_with(text: str, word: str, limit: int = 160) -> str:
    for sentence in SENTENCE.findall(text):
        if word in sentence.lower():
            return clip(str(sentence).strip(), limit)
    return text.strip()[:limit]


def clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Past incidents' texts, tokenised: every generation ranks the tenant's whole history again, and the
# same texts come back each time. Bounded (about 3 KB a text of 35 words: ~12 MB when full);
# a text that fell out is tokenised again. The Counters are shared: read them, never change them.
TOKENISED_KEPT = 4096


@functools.lru_cache(maxsize=TOKENISED_KEPT)
def _token_counts(text: str) -> Counter[str]:
    return Counter(tokens(text))


def tfidf_similarity(query: str, documents: list[str]) -> list[float]:
    """Cosine similarity of `query` with each document, TF-IDF weighted over query + documents."""
    docs = [_token_counts(d) for d in documents]
    q = Counter(tokens(query))
    n = len(docs) + 1
    df: Counter[str] = Counter()
    for d in [q, *docs]:
        df.update(d.keys())

    idf: dict[str, float] = {}

    def weight(t: str) -> float:
        w = idf.get(t)
        if w is None:
            w = idf[t] = math.log((1 + n) / (1 + df[t])) + 1
        return w

    def vector(counts: Counter[str]) -> dict[str, float]:
        return {t: c * weight(t) for t, c in counts.items()}

    qv = vector(q)
    qn = math.sqrt(sum(v * v for v in qv.values())) or 1.0
    # Texts that repeat (an alert storm's incidents share a title) share one Counter: score it once.
    scored: dict[int, float] = {}
    scores = []
    for d in docs:
        score = scored.get(id(d))
        if score is None:
            if q.keys().isdisjoint(d):
                # No word in common: the dot product is a sum of zeros, 0.0 whatever the norm.
                score = 0.0
            else:
                dv = vector(d)
                dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
                score = sum(w * dv.get(t, 0.0) for t, w in qv.items()) / (qn * dn)
            scored[id(d)] = score
        scores.append(score)
    return scores


def rank_similar(query: str, service_name: str, history: Sequence[PastIncident]) -> list[Similar]:
    """Past incidents most like `query`, best first: text similarity, plus a little for the same
    service and for a resolved incident whose root cause was written down."""
    if not history:
        return []
    scores = tfidf_similarity(f"{query} {service_name}", [f"{p.text} {p.service_name}" for p in history])
    ranked = sorted(
        (
            Similar(
                p,
                s
                + (SAME_SERVICE_BONUS if p.service_name == service_name else 0.0)
                + (RESOLVED_WITH_CAUSE_BONUS if p.state == "resolved" and p.resolution else 0.0),
            )
            for p, s in zip(history, scores, strict=True)
        ),
        key=lambda s: (-s.score, s.incident.key),
    )
    return [s for s in ranked if s.score >= SIMILAR_FLOOR][:SIMILAR_KEPT]


def services_named(text: str, names: Sequence[str]) -> list[str]:
    """Those of `names` that the text mentions as a whole word ("catalog-api", not "catalog-api-v2")."""
    lowered = text.lower()
    return [
        n for n in names if len(n) >= 3 and re.search(rf"(?<![\w-]){re.escape(n.lower())}(?![\w-])", lowered)
    ]


def gather(
    incident: IncidentFacts,
    history: list[PastIncident],
    recent_days: int = 7,
    *,
    alerts: Sequence[AlertFact] = (),
    deploys: Sequence[DeployFact] = (),
    metrics: Sequence[MetricReading] = (),
) -> Evidence:
    """Everything an engine may use, ordered so the same inputs always give the same evidence.
    `deploys` are the service's deploys the caller found around the incident, in any order."""
    ordered_alerts = sorted(alerts, key=lambda a: (a.starts_at, a.alertname, a.fingerprint))
    start = min([incident.created_at, *(a.starts_at for a in ordered_alerts)])
    before = sorted(
        (d for d in deploys if d.deployed_at <= start),
        key=lambda d: (-d.deployed_at.timestamp(), d.deploy_id),
    )
    after = sorted((d for d in deploys if d.deployed_at > start), key=lambda d: (d.deployed_at, d.deploy_id))
    since = incident.created_at - timedelta(days=recent_days)
    return Evidence(
        incident=incident,
        figures=list(dict.fromkeys(FIGURE.findall(incident.text))),
        similar=rank_similar(incident.text, incident.service_name, history),
        recent_on_service=[
            p for p in history if p.service_name == incident.service_name and p.created_at >= since
        ],
        alerts=ordered_alerts,
        deploys=before,
        deploys_after=after,
        metrics=list(metrics),
        recent_days=recent_days,
        start=start,
    )


# ---------------------------------------------------------------- structured items


def _minutes(delta_minutes: float) -> str:
    m = abs(delta_minutes)
    if m < 1:
        return "less than a minute"
    if m < 120:
        return f"{m:.0f} min"
    if m < 48 * 60:
        return f"{m / 60:.1f} h"
    return f"{m / 1440:.1f} days"


def format_value(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "bytes":
        for size, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.2f} {name}"
        return f"{value:.0f} B"
    if unit == "cores":
        return f"{value:.2f} cores"
    if unit == "rps":
        return f"{value:,.1f} req/s"
    return f"{value:.4g}"


METRIC_TITLES = {
    "cpu": "CPU",
    "memory": "Memory",
    "error_rate": "Error rate",
    "latency_p99": "p99 latency",
    "request_rate": "Request rate",
}


def metric_summary(reading: MetricReading, service_name: str) -> str:
    title = METRIC_TITLES.get(reading.name)
    if title is None:
        title = f"Alert expression {reading.name.removeprefix('alert:')} (`{clip(reading.expr, 80)}`)"
    else:
        title = f"{title} of {service_name}"
    unit = reading.unit
    if reading.at_start is None and reading.peak is None:
        return f"{title}: no data around the start"
    parts = [
        f"{format_value(reading.at_start, unit)} at the start",
        f"peak {format_value(reading.peak, unit)}",
    ]
    if reading.baseline is not None:
        parts.append(f"baseline {format_value(reading.baseline, unit)} before it")
    change = reading.change
    if change is not None and (change >= 1.5 or change <= 0.67):
        parts.append(f"x{change:.1f} the baseline")
    return f"{title}: " + ", ".join(parts)


def deploy_summary(deploy: DeployFact, evidence: Evidence) -> str:
    minutes = evidence.minutes_before_start(deploy)
    where = "before" if minutes >= 0 else "after"
    what = (
        f"{deploy.service_name} {deploy.version} deployed to {deploy.environment} "
        f"{_minutes(minutes)} {where} the start"
    )
    details = []
    if deploy.commit:
        details.append(f"commit {deploy.commit[:12]}")
    if deploy.author:
        details.append(f"by {deploy.author}")
    if details:
        what += f" ({', '.join(details)})"
    if deploy is evidence.closest_deploy:
        what = f"Closest deploy before the start: {what}"
    elif minutes < 0:
        what += ": a fix or a rollback?"
    return what


def similar_summary(similar: Similar) -> str:
    past = similar.incident
    if past.state == "resolved" and past.resolved_at is not None:
        head = f"{past.key}, resolved {past.resolved_at:%Y-%m-%d}"
    else:
        head = f"{past.key} ({past.service_name}, {past.state}, {past.created_at:%Y-%m-%d})"
    if past.resolution:
        return f"{head}: {clip(past.resolution, 120)} (“{past.title}”, similarity {similar.score:.2f})"
    return f"{head}: “{past.title}” (similarity {similar.score:.2f})"


def alert_summary(alert: AlertFact) -> str:
    text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in NOISY_LABELS)
    summary = f"Alert {alert.alertname} {alert.status} since {alert.starts_at:%Y-%m-%d %H:%M} UTC"
    if text:
        summary += f": {clip(text, 160)}"
    if labels:
        summary += f" ({clip(labels, 160)})"
    return summary


@dataclass
class ItemRefs:
    """Where each piece of evidence sits in the list `collect` returns, so engines can cite it."""

    report: list[int] = field(default_factory=list)
    figures: int | None = None
    alerts: dict[str, int] = field(default_factory=dict)  # by fingerprint
    deploys: dict[str, int] = field(default_factory=dict)  # by deploy id
    metrics: dict[str, int] = field(default_factory=dict)  # by reading name
    similar: dict[str, int] = field(default_factory=dict)  # by incident key
    recent: int | None = None


def collect(evidence: Evidence) -> tuple[list[EvidenceItem], ItemRefs]:
    """The structured evidence, in a fixed order: report, alerts, deploys, metrics, similar and
    recent incidents; and where each is in it."""
    incident = evidence.incident
    source = f"incident {incident.key}"
    items: list[EvidenceItem] = []
    refs = ItemRefs()

    def add(item: EvidenceItem) -> int:
        items.append(item)
        return len(items) - 1

    for sentence in sentences(incident.text)[:REPORT_SENTENCES]:
        refs.report.append(
            add(
                EvidenceItem(
                    kind="report", summary=f"“{clip(sentence)}”", source=source, time=incident.created_at
                )
            )
        )
    if evidence.figures:
        refs.figures = add(
            EvidenceItem(
                kind="report",
                summary=f"Figures in the report: {', '.join(evidence.figures[:6])}",
                source=source,
                time=incident.created_at,
            )
        )
    for alert in evidence.alerts:
        refs.alerts[alert.fingerprint] = add(
            EvidenceItem(
                kind="alert",
                summary=alert_summary(alert),
                source=f"alertmanager {alert.fingerprint}",
                time=alert.starts_at,
                link=alert.generator_url,
            )
        )
    for deploy in [*evidence.deploys[:5], *evidence.deploys_after[:3]]:
        refs.deploys[deploy.deploy_id] = add(
            EvidenceItem(
                kind="deploy",
                summary=deploy_summary(deploy, evidence),
                source=f"deploy {deploy.deploy_id}",
                time=deploy.deployed_at,
            )
        )
    for reading in evidence.metrics:
        refs.metrics[reading.name] = add(
            EvidenceItem(
                kind="metric",
                summary=metric_summary(reading, incident.service_name),
                source="prometheus",
                time=evidence.started_at,
                link=reading.link,
            )
        )
    for similar in evidence.similar:
        refs.similar[similar.incident.key] = add(
            EvidenceItem(
                kind="similar_incident",
                summary=similar_summary(similar),
                source="incident history",
                time=similar.incident.created_at,
                link=f"/api/v1/incidents/{similar.incident.id}" if similar.incident.id else None,
            )
        )
    if evidence.recent_on_service:
        keys = ", ".join(p.key for p in evidence.recent_on_service[:5])
        refs.recent = add(
            EvidenceItem(
                kind="recent_incident",
                summary=(
                    f"{incident.service_name} had {len(evidence.recent_on_service)} other incident(s) in "
                    f"the previous {evidence.recent_days} days ({keys}): something about it is changing"
                ),
                source="incident history",
                time=evidence.recent_on_service[0].created_at,
            )
        )
    return items, refs


def evidence_items(evidence: Evidence) -> list[EvidenceItem]:
    """What `evidence.collected` carries for this evidence."""
    return collect(evidence)[0]


def render(item: EvidenceItem) -> str:
    """The one-line string the API shows: the summary, then where to check it."""
    where = [item.source]
    if item.time is not None and item.kind not in ("report", "similar_incident"):
        where.append(f"{item.time:%Y-%m-%d %H:%M} UTC")
    if item.link:
        where.append(item.link)
    return f"{item.summary} [{'; '.join(where)}]"
