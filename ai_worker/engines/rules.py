"""The offline engine: deterministic rules over the gathered evidence. No network, no model."""

from __future__ import annotations

from dataclasses import dataclass

from ai_worker.domain import Scored, rank
from ai_worker.evidence import Evidence, sentence_with, tokens
from contracts.events import Hypothesis

ENGINE = "rules"


@dataclass(frozen=True)
class Cause:
    code: str
    claim: str
    description: str
    keywords: tuple[str, ...]
    prior: float


# Common root causes of production incidents, with the words that point at them.
CATALOGUE: tuple[Cause, ...] = (
    Cause(
        "recent_change",
        "A recent change to {service} introduced a regression",
        "A deploy, configuration change or migration shortly before the symptoms is the most frequent "
        "trigger of incidents. Compare the last change to {service} with the start of the symptoms and "
        "roll it back if they line up.",
        (
            "deploy",
            "deployment",
            "deployed",
            "release",
            "released",
            "rollout",
            "version",
            "upgrade",
            "migration",
            "config",
            "configuration",
            "change",
            "changed",
            "feature",
            "flag",
        ),
        0.6,
    ),
    Cause(
        "cpu_saturation",
        "CPU saturation in {service} (hot code path or inefficient query)",
        "The service is running out of CPU: a hot loop, an inefficient query or serialisation on a "
        "critical path. Profile {service} and check per-endpoint CPU time against the baseline.",
        ("cpu", "load", "throttled", "throttling", "saturation", "saturated", "hot", "busy"),
        0.3,
    ),
    Cause(
        "memory_pressure",
        "Memory pressure or a leak in {service}",
        "Rising memory, garbage-collection pauses or OOM kills point at a leak or an undersized limit. "
        "Check {service}'s memory over the last deploys and its restart count.",
        ("memory", "oom", "oomkilled", "heap", "leak", "gc", "garbage", "swap", "rss"),
        0.3,
    ),
    Cause(
        "database",
        "Database contention behind {service} (slow queries, locks or pool exhaustion)",
        "Slow or locked queries and an exhausted connection pool make every request wait. Check slow-query "
        "logs, lock waits and pool usage for the databases {service} depends on.",
        (
            "database",
            "db",
            "query",
            "queries",
            "sql",
            "postgres",
            "postgresql",
            "mysql",
            "deadlock",
            "lock",
            "locks",
            "pool",
            "connection",
            "connections",
            "replica",
            "replication",
        ),
        0.4,
    ),
    Cause(
        "dependency",
        "A failing downstream dependency of {service}",
        "Timeouts and 5xx answers from a dependency propagate upstream. Check the error rates and latency "
        "of the services {service} calls, and whether retries amplify the load.",
        (
            "timeout",
            "timeouts",
            "upstream",
            "downstream",
            "dependency",
            "dependencies",
            "502",
            "503",
            "504",
            "gateway",
            "api",
            "third-party",
            "vendor",
            "unavailable",
            "refused",
        ),
        0.45,
    ),
    Cause(
        "traffic_surge",
        "A traffic surge beyond {service}'s capacity",
        "More requests than the service was sized for: a campaign, a retry storm or abusive clients. "
        "Compare request rate with the usual peak and check autoscaling.",
        ("traffic", "surge", "requests", "rps", "qps", "peak", "ddos", "burst", "clients", "users"),
        0.35,
    ),
    Cause(
        "error_regression",
        "An application error path in {service} (exceptions or crashes)",
        "Exceptions, panics or crash loops in the service itself. Group the errors in {service}'s logs by "
        "type and find the first occurrence.",
        (
            "error",
            "errors",
            "exception",
            "exceptions",
            "500",
            "crash",
            "crashed",
            "panic",
            "bug",
            "fail",
            "failed",
            "failing",
            "failures",
            "nullpointer",
            "stacktrace",
        ),
        0.4,
    ),
    Cause(
        "storage",
        "Disk or storage exhaustion on {service}'s hosts",
        "A full disk, exhausted inodes or a slow volume stall writes and logs. Check free space and I/O "
        "latency on the volumes {service} writes to.",
        ("disk", "storage", "volume", "inode", "inodes", "full", "iops", "io", "filesystem"),
        0.25,
    ),
    Cause(
        "network",
        "A network, DNS or TLS problem between {service} and its peers",
        "Packet loss, DNS failures or expired certificates break connections intermittently. Check DNS "
        "resolution, certificate expiry and packet loss on {service}'s paths.",
        (
            "network",
            "dns",
            "packet",
            "packets",
            "latency",
            "tls",
            "ssl",
            "certificate",
            "cert",
            "connectivity",
            "unreachable",
            "resolve",
        ),
        0.3,
    ),
)

KEYWORD_WEIGHT = 0.9
# A word in the title names the symptom the reporter saw first.
TITLE_WEIGHT = 0.4
SIMILAR_WEIGHT = 0.8


def _hits(cause: Cause, words: set[str]) -> list[str]:
    return [k for k in cause.keywords if k in words]


def generate(evidence: Evidence) -> list[Hypothesis]:
    incident = evidence.incident
    words = set(tokens(incident.text))
    title_words = set(tokens(incident.title))
    scored: list[Scored] = []
    support: dict[str, list[str]] = {}
    for cause in CATALOGUE:
        hits = _hits(cause, words)
        score = (
            cause.prior + KEYWORD_WEIGHT * min(len(hits), 3) + TITLE_WEIGHT * len(_hits(cause, title_words))
        )
        lines: list[str] = []
        if hits:
            quoted = sentence_with(incident.text, hits[0])
            lines.append(f"The report mentions {', '.join(repr(h) for h in hits[:4])}: \u201c{quoted}\u201d")
            if evidence.figures:
                lines.append(f"Figures in the report: {', '.join(evidence.figures[:5])}")
        for similar in evidence.similar:
            past = similar.incident
            if _hits(cause, set(tokens(past.text))):
                score += SIMILAR_WEIGHT * similar.score
                lines.append(
                    f"{past.key} ({past.service_name}, {past.state}, {past.created_at:%Y-%m-%d}) had similar "
                    f"symptoms: \u201c{past.title}\u201d (similarity {similar.score:.2f})"
                )
        if cause.code == "recent_change" and evidence.recent_on_service:
            keys = ", ".join(p.key for p in evidence.recent_on_service[:5])
            score += 0.2
            lines.append(
                f"{incident.service_name} had {len(evidence.recent_on_service)} other incident(s) in the "
                f"previous 7 days ({keys}): something about it is changing"
            )
        if not lines:
            lines.append(
                f"No direct signal in the report; ranked by how often this explains incidents like "
                f"{incident.key} ({incident.severity} on {incident.service_name})"
            )
        scored.append(Scored(cause.code, score))
        support[cause.code] = lines
    by_code = {c.code: c for c in CATALOGUE}
    return [
        Hypothesis(
            rank=position,
            claim=by_code[s.code].claim.format(service=incident.service_name),
            description=by_code[s.code].description.format(service=incident.service_name),
            confidence=confidence,
            evidence=support[s.code],
            engine=ENGINE,
        )
        for position, (s, confidence) in enumerate(rank(scored), start=1)
    ]
