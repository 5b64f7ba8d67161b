"""The offline engine: a catalogue of common failure modes ranked by the evidence for and against each.

No network, no model, no clock: the same evidence always gives the same hypotheses.

Evidence (all weights below; the catalogue of error strings and alert names is data, see
ai_worker/signatures.py):
- the report, read as statements (ai_worker/statements.py): a catalogue entry or one of the mode's
  words that the report asserts supports it, one it negates ("not the database", "memory is flat")
  counts against it, a suspicion it drops counts for nothing; capped, so a wordy report does not win
  by volume;
- attached alerts: catalogue entries on their names and labels (`KubePodCrashLooping` with
  `reason="OOMKilled"`), error text in label values and annotations, and the words of their names;
- the closest deploy before the start of the service, or of a service the report names: strong
  support for a bad deploy and some for a configuration change, halving every DEPLOY_HALF_LIFE
  minutes; none when the report acquits the release;
- metrics read around the start: a failure mode gains when the signal it predicts moved;
- similar past incidents: a recorded root cause that names the mode, in proportion to similarity.
Evidence first, priors last: a mode with net support always ranks above one without (the prior only
orders those, whose evidence line says "no direct signal"), and one ruled out ranks below both.
Confidences are the softmax shares of the scores over the whole catalogue (so the three shown sum
to at most 1), and each hypothesis carries the line that explains its confidence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ai_worker import signatures
from ai_worker.domain import Scored, rank
from ai_worker.evidence import (
    NOISY_LABELS,
    DeployFact,
    Evidence,
    ItemRefs,
    MetricReading,
    clip,
    collect,
    render,
    services_named,
    split_name,
)
from ai_worker.signatures import Catalogue
from ai_worker.statements import Clause, clauses, polarity
from contracts.events import EvidenceItem, Hypothesis

ENGINE = "rules"

# Evidence strengths (a catalogue entry carries its own weight, 3 naming the cause outright):
# words of the report (the catalogue's signals below) count at WORD_WEIGHT each, the report at most
# REPORT_CAP in all, plus TITLE_BONUS when the title names the mode too.
WORD_WEIGHT = 0.5
REPORT_CAP = 6.0
TITLE_BONUS = 0.3
# Alerts: a catalogue entry on the name and labels counts whole; error text in label values and
# annotations at LABEL_TEXT_FACTOR; the words of the name a little.
LABEL_TEXT_FACTOR = 0.8
ALERT_WORD_WEIGHT = 0.4
ALERT_CAP = 4.0
# A metric that moved is measured, not reported: its rule's boost counts this many times.
METRIC_FACTOR = 1.5
# Similar past incidents: per unit of similarity, when their root cause / their text matches. A
# root cause counts for every mode it names nearly as plainly as its main one.
SIMILAR_CAUSE_WEIGHT = 2.5
SIMILAR_TEXT_WEIGHT = 0.3
ROOT_CAUSE_SHARE = 0.6
RECENT_INCIDENTS_BOOST = 0.2
# The closest relevant deploy before the start: full strength within CLOSE_MINUTES, halving every
# DEPLOY_HALF_LIFE minutes after, never below FAR_DEPLOY inside the deploy window.
CLOSE_MINUTES = 10.0
DEPLOY_HALF_LIFE = 45.0
FAR_DEPLOY = 0.05
# Priors only break ties among modes with evidence; a mode with none sits UNBACKED_OFFSET below.
PRIOR_WEIGHT = 0.3
UNBACKED_OFFSET = 4.0
# Above 1 flattens the shares: the weights are hand-set; tuned on the evaluation set's Brier score.
TEMPERATURE = 1.5
MAX_EVIDENCE_LINES = 8


@dataclass(frozen=True)
class MetricRule:
    """A metric that, when it moved this much, supports a failure mode."""

    metric: str
    boost: float
    # Peak over baseline at least this (None: not used).
    min_change: float | None = None
    # Or peak at least this, in the metric's unit (None: not used).
    min_peak: float | None = None

    def fires(self, reading: MetricReading) -> bool:
        change = reading.change
        if self.min_change is not None and change is not None and change >= self.min_change:
            return True
        return self.min_peak is not None and reading.peak is not None and reading.peak >= self.min_peak


@dataclass(frozen=True)
class FailureMode:
    """One entry of the catalogue.

    `signals` are words and phrases (weight each) that point at it in a report, an alert or a past
    incident; `why` says why it produces the symptoms, `check` what a responder should look at.
    """

    code: str
    name: str
    claim: str
    why: str
    check: str
    signals: dict[str, float]
    prior: float
    # How strongly a deploy shortly before the start supports it (0: not at all).
    deploy_affinity: float = 0.0
    metric_rules: tuple[MetricRule, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)
    # Texts already searched for its signals, and what was found (see `signals_in`).
    found: dict[str, tuple[tuple[str, float], ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def description(self) -> str:
        return f"{self.why} What to check: {self.check}"


def _mode(**kwargs: object) -> FailureMode:
    signals = kwargs["signals"]
    assert isinstance(signals, dict)
    patterns = tuple(
        re.compile(
            r"(?<![a-z0-9])" + r"\s+".join(map(re.escape, s.split())) + r"(?:s|es|ed|d|ing)?(?![a-z0-9])"
        )
        for s in signals
    )
    return FailureMode(**kwargs, patterns=patterns)  # type: ignore[arg-type]


CATALOGUE: tuple[FailureMode, ...] = (
    # Signals: "deploy", "release", "rollout", "rollback", "version", new exceptions, crash loops; a
    # deploy of the service minutes before the start; error rate up after it.
    _mode(
        code="bad_deploy",
        name="bad deploy",
        claim="A recent change to {service} (a bad deploy) introduced a regression",
        why=(
            "Most incidents follow a change, and a release is the commonest one: new code paths, "
            "migrations or dependencies behave differently under production traffic."
        ),
        check=(
            "compare the last deploy of {service} with the start of the symptoms, diff it, watch the "
            "error rate by version, and roll back if they line up."
        ),
        signals={
            "deploy": 1.0,
            "deployment": 1.0,
            "release": 1.0,
            "rollout": 1.0,
            "rolled out": 1.0,
            "rollback": 1.0,
            "roll back": 1.0,
            "new version": 1.0,
            "version": 0.6,
            "upgrade": 0.8,
            "canary": 0.8,
            "regression": 0.8,
            "migration": 0.6,
            "crash loop": 0.7,
            "crashloopbackoff": 0.7,
            "exception": 0.5,
            "null pointer": 0.6,
            "nullpointerexception": 0.6,
            "stack trace": 0.4,
            "panic": 0.5,
            "bug": 0.5,
            "500": 0.3,
            "5xx": 0.3,
            "error rate": 0.3,
        },
        prior=0.6,
        deploy_affinity=2.5,
        metric_rules=(MetricRule("error_rate", 0.8, min_change=3.0, min_peak=0.05),),
    ),
    # Signals: "config", "feature flag", "setting", "env var", "configmap", "secret", "misconfigured";
    # a deploy shortly before (configuration often ships with one).
    _mode(
        code="config_change",
        name="configuration change",
        claim="A configuration change to {service} (flags, settings, secrets)",
        why=(
            "A flag, a setting or a secret changes behaviour without new code, often outside the "
            "release process and its checks."
        ),
        check=(
            "the configuration and feature-flag history of {service} (config maps, secrets, flag "
            "service, infrastructure as code) around the start; revert the last change."
        ),
        signals={
            "config": 1.0,
            "configuration": 1.0,
            "misconfigured": 1.2,
            "misconfiguration": 1.2,
            "feature flag": 1.2,
            "flag": 0.6,
            "toggle": 0.6,
            "setting": 0.6,
            "env var": 1.0,
            "environment variable": 1.0,
            "configmap": 1.0,
            "config map": 1.0,
            "secret": 0.5,
            "terraform": 0.8,
            "helm values": 0.8,
            "parameter": 0.4,
            "wrong value": 0.8,
        },
        prior=0.45,
        deploy_affinity=1.0,
    ),
    # Signals: "cpu", "load average", "throttling", "saturated", "hot loop"; CPU alerts; CPU x2.
    _mode(
        code="cpu_saturation",
        name="CPU saturation",
        claim="CPU saturation in {service} (hot code path, inefficient work or throttling)",
        why=(
            "When the service runs out of CPU (a hot loop, a regex or serialisation on a hot path, a "
            "limit that throttles it) every request queues behind the busy cores."
        ),
        check=(
            "CPU usage and throttling of {service} against its limits and its baseline; profile the "
            "busiest endpoints; compare with the last deploy."
        ),
        signals={
            "cpu": 1.2,
            "high cpu": 0.8,
            "load average": 1.0,
            "throttled": 1.0,
            "throttling": 1.0,
            "cfs": 0.6,
            "saturation": 0.7,
            "saturated": 0.7,
            "hot loop": 1.0,
            "busy loop": 1.0,
            "infinite loop": 1.0,
            "backtracking": 1.0,
            "cpu bound": 1.0,
        },
        prior=0.35,
        metric_rules=(MetricRule("cpu", 1.5, min_change=2.0),),
    ),
    # Signals: "memory", "OOM", "OOMKilled", "heap", "leak", "GC pauses", "evicted"; memory alerts;
    # memory x1.3 over the window.
    _mode(
        code="memory_leak",
        name="memory leak / OOM",
        claim="A memory leak or OOM kills in {service}",
        why=(
            "Memory that grows until the limit ends in OOM kills and restarts; before that, garbage "
            "collection pauses stall requests."
        ),
        check=(
            "memory of {service} since its last deploys (a steady climb is a leak), OOM kills and "
            "restart counts, GC pause times, heap dumps."
        ),
        signals={
            "memory": 1.2,
            "oom": 1.5,
            "oomkilled": 1.5,
            "out of memory": 1.5,
            "outofmemoryerror": 1.5,
            "heap": 1.0,
            "leak": 1.2,
            "gc": 0.8,
            "garbage collection": 0.8,
            "swap": 0.6,
            "rss": 0.8,
            "evicted": 0.6,
        },
        prior=0.35,
        metric_rules=(MetricRule("memory", 1.5, min_change=1.3),),
    ),
    # Signals: "connection pool", "pool exhausted", "too many connections", "thread pool", "worker
    # threads", "too many open files"; latency x2 while CPU stays flat.
    _mode(
        code="resource_exhaustion",
        name="connection-pool or thread exhaustion",
        claim="Connection-pool or thread exhaustion in {service}",
        why=(
            "When every pooled connection or worker thread is busy (a slow query holding them, a "
            "leak, a pool sized below the load) new requests wait for one and time out, though CPU "
            "stays low."
        ),
        check=(
            "pool usage and wait time of {service} (database, HTTP client, thread pools), "
            "connections held per instance, file descriptors, and what holds them."
        ),
        signals={
            "pool": 1.3,
            "connection pool": 1.0,
            "exhausted": 0.8,
            "exhaustion": 0.8,
            "too many connections": 1.5,
            "max connections": 1.2,
            "thread pool": 1.3,
            "threads": 0.6,
            "thread starvation": 1.3,
            "worker threads": 1.0,
            "semaphore": 0.8,
            "file descriptors": 1.0,
            "too many open files": 1.5,
            "waiting for connection": 1.2,
            "hikari": 1.2,
            "pgbouncer": 1.0,
            "queue full": 0.8,
        },
        prior=0.4,
        metric_rules=(MetricRule("latency_p99", 0.8, min_change=2.0),),
    ),
    # Signals: "timeout", "upstream", "downstream", "dependency", "502/503/504", "slow queries",
    # "circuit breaker", "provider"; latency x2, error rate up.
    _mode(
        code="slow_dependency",
        name="slow dependency",
        claim="A slow or failing dependency of {service} (database, downstream API)",
        why=(
            "Timeouts and errors from something {service} calls propagate upstream, and retries "
            "amplify the load on it."
        ),
        check=(
            "latency and error rate of each dependency of {service} (databases, caches, internal and "
            "third-party APIs), slow-query logs, circuit breakers and retry counts."
        ),
        signals={
            "timeout": 1.0,
            "timed out": 1.0,
            "slow": 0.5,
            "latency": 0.5,
            "upstream": 0.8,
            "downstream": 0.8,
            "dependency": 1.0,
            "third party": 1.0,
            "vendor": 0.8,
            "provider": 0.8,
            "502": 0.8,
            "503": 0.6,
            "504": 1.0,
            "bad gateway": 0.8,
            "gateway timeout": 1.0,
            "circuit breaker": 1.2,
            "slow query": 1.0,
            "slow queries": 1.0,
            "database": 0.6,
            "replica lag": 1.0,
            "deadlock": 0.8,
            "lock wait": 1.0,
            "retries": 0.5,
        },
        prior=0.45,
        metric_rules=(
            MetricRule("latency_p99", 1.0, min_change=2.0),
            MetricRule("error_rate", 0.4, min_change=3.0, min_peak=0.05),
        ),
    ),
    # Signals: "disk", "no space left", "volume", "inode", "filesystem", "read-only file system";
    # filesystem alerts.
    _mode(
        code="disk_full",
        name="disk full",
        claim="A full disk or volume on {service}'s hosts",
        why=(
            "A full disk or exhausted inodes make writes fail (logs, temp files, database WAL); the "
            "service errors or stalls although nothing else changed."
        ),
        check=(
            "free space and inodes on the volumes {service} writes to, what grew (logs, temp files, "
            "WAL, core dumps), and log rotation."
        ),
        signals={
            "disk": 1.2,
            "disk full": 1.0,
            "no space left": 2.0,
            "no space": 1.0,
            "out of disk": 1.5,
            "volume": 0.6,
            "inode": 1.2,
            "filesystem": 1.0,
            "file system": 1.0,
            "read only file system": 1.2,
            "disk pressure": 1.2,
            "storage": 0.6,
            "iops": 0.6,
            "wal": 0.5,
        },
        prior=0.25,
    ),
    # Signals: "certificate", "TLS/SSL", "x509", "expired", "handshake"; certificate alerts.
    _mode(
        code="certificate_expiry",
        name="certificate expiry",
        claim="An expired or invalid TLS certificate on {service}'s path",
        why=(
            "An expired, revoked or mismatched certificate fails every TLS handshake at once, at a "
            "time set months ago, with no change on the service itself."
        ),
        check=(
            "the expiry dates and chains of the certificates {service} serves and the ones it "
            "trusts, and the renewal job (cert-manager, ACME) logs."
        ),
        signals={
            "certificate": 1.5,
            "cert": 1.2,
            "tls": 1.0,
            "ssl": 1.0,
            "x509": 1.8,
            "expired": 0.8,
            "expiry": 1.0,
            "expiration": 1.0,
            "handshake": 1.0,
            "cert manager": 1.0,
            "acme": 0.8,
        },
        prior=0.2,
    ),
    # Signals: "traffic", "surge", "requests per second", "campaign", "bots", "DDoS", "429"; request
    # rate x2.
    _mode(
        code="traffic_spike",
        name="traffic spike",
        claim="A traffic spike beyond {service}'s capacity",
        why=(
            "More requests than the service was sized for (a campaign, a retry storm, bots) saturate "
            "it even though nothing is broken."
        ),
        check=(
            "request rate of {service} against its usual peak, top clients and endpoints, "
            "autoscaling limits and rate limiting."
        ),
        signals={
            "traffic": 1.2,
            "surge": 1.0,
            "spike in requests": 1.0,
            "requests per second": 1.0,
            "rps": 0.8,
            "qps": 0.8,
            "campaign": 1.2,
            "black friday": 1.5,
            "marketing": 0.8,
            "bot": 1.0,
            "ddos": 1.5,
            "scraper": 1.0,
            "crawler": 1.0,
            "burst": 0.6,
            "load test": 1.0,
            "rate limit": 0.8,
            "429": 0.8,
            "autoscaling": 0.6,
            "autoscaler": 0.6,
            "peak": 0.4,
        },
        prior=0.3,
        metric_rules=(MetricRule("request_rate", 1.8, min_change=2.0),),
    ),
    # Signals: "DNS", "NXDOMAIN", "SERVFAIL", "packet loss", "unreachable", "connection reset",
    # "no route to host", "load balancer".
    _mode(
        code="dns_network",
        name="DNS / network",
        claim="A DNS or network failure between {service} and its peers",
        why=(
            "Failing name resolution, packet loss or a misbehaving load balancer break connections "
            "intermittently, across services that share the path."
        ),
        check=(
            "DNS resolution from {service}'s hosts, packet loss and retransmits, load balancer and "
            "ingress health, recent network policy or firewall changes."
        ),
        signals={
            "dns": 1.5,
            "nxdomain": 1.8,
            "servfail": 1.8,
            "name resolution": 1.5,
            "resolve": 0.8,
            "network": 1.0,
            "packet loss": 1.5,
            "packets": 0.6,
            "unreachable": 1.0,
            "connection reset": 1.0,
            "no route to host": 1.5,
            "connection refused": 0.5,
            "load balancer": 0.8,
            "ingress": 0.6,
            "firewall": 1.0,
            "network policy": 1.2,
            "partition": 0.8,
            "mtu": 1.2,
            "coredns": 1.5,
        },
        prior=0.3,
    ),
)

BY_CODE = {mode.code: mode for mode in CATALOGUE}


# The same texts come back for every mode a generation scores (the report, each similar incident's
# text and root cause) and in the next generations: normalised once each, while they stay in use.
@functools.lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """Lower-case words, with CamelCase names also split ("OOMKilled" -> "oom killed"), so one
    catalogue matches reports, alert names and metric names alike."""
    plain = " ".join(re.findall(r"[a-z0-9]+", text.lower()))
    split = " ".join(re.findall(r"[a-z0-9]+", split_name(text).lower()))
    return f"{plain} | {split}" if split != plain else plain


# Texts kept per failure mode. A generation searches the report, its alerts and each similar
# incident's text for every mode's signals, and the next generations search the same texts again
# (in an alert storm, hundreds of incidents share them): each text is searched once while kept.
FOUND_KEPT = 2048


def signals_in(mode: FailureMode, text: str) -> tuple[tuple[str, float], ...]:
    """The mode's signals found in `text`, in catalogue order."""
    found = mode.found.get(text)
    if found is None:
        if len(mode.found) >= FOUND_KEPT:
            mode.found.clear()
        norm = normalise(text)
        found = mode.found[text] = tuple(
            (signal, weight)
            for (signal, weight), pattern in zip(mode.signals.items(), mode.patterns, strict=True)
            if pattern.search(norm)
        )
    return found


def _weight(hits: Sequence[tuple[str, float]], cap: float) -> float:
    return min(sum(w for _, w in hits), cap)


def deploy_proximity(minutes: float, window_minutes: float) -> float:
    """How strongly a deploy this many minutes before the start points at it: 1 within
    CLOSE_MINUTES, then halving every DEPLOY_HALF_LIFE minutes, never below FAR_DEPLOY inside the
    window (a deploy hours ago is still worth a look, barely); 0 beyond it or after the start."""
    if minutes < 0 or minutes > window_minutes:
        return 0.0
    if minutes <= CLOSE_MINUTES:
        return 1.0
    return max(0.5 ** ((minutes - CLOSE_MINUTES) / DEPLOY_HALF_LIFE), FAR_DEPLOY)


@dataclass
class _Case:
    """The evidence for and against one failure mode, and the score it makes."""

    mode: FailureMode
    support: float = 0.0
    against: float = 0.0
    reasons: list[str] = field(default_factory=list)
    objections: list[str] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)

    def cite(self, index: int | None) -> None:
        if index is not None and index not in self.cited:
            self.cited.append(index)

    def add(self, strength: float, reason: str) -> None:
        if strength > 0:
            self.support += strength
            self.reasons.append(reason)
        elif strength < 0:
            self.against -= strength
            self.objections.append(reason)

    @property
    def net(self) -> float:
        return self.support - self.against

    @property
    def backed(self) -> bool:
        return self.support > 0 and self.net > 0

    @property
    def score(self) -> float:
        """Evidence first, priors last: a mode with net support always outranks one without (the
        prior only breaks ties among the unsupported), and one ruled out ranks below them all."""
        if self.backed:
            return self.net + PRIOR_WEIGHT * self.mode.prior
        return self.mode.prior - UNBACKED_OFFSET - self.against


def _quoted(hits: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"'{s}'" for s, _ in hits[:4])


def _said(text: str) -> str:
    return f"'{clip(' '.join(text.split()), 60)}'"


@dataclass(frozen=True)
class _Mention:
    """A catalogue entry or a word found in the report, with the report's stance towards it."""

    label: str
    strength: float  # weight x polarity
    clause: str


def _mentions(mode: FailureMode, catalogue: Catalogue, report_clauses: Sequence[Clause]) -> list[_Mention]:
    """Every signature and word of the mode in the report, strongest stance per item."""
    best: dict[str, _Mention] = {}

    def keep(key: str, mention: _Mention) -> None:
        current = best.get(key)
        # An asserted mention beats a negated one of the same thing (the report may rule out one
        # instance and assert another); among the same sign, the stronger wins.
        if current is None or (mention.strength > 0, abs(mention.strength)) > (
            current.strength > 0,
            abs(current.strength),
        ):
            best[key] = mention

    for clause in report_clauses:
        for signature in catalogue.patterns_by_cause.get(mode.code, ()):
            if signature.pattern is None:
                continue
            for match in signature.pattern.finditer(clause.text):
                stance = polarity(clause, match.start(), match.end())
                if signature.weight < 0:
                    # Evidence against (e.g. "rolling back did not help") counts when stated, and
                    # a negated one ("it is not that rolling back did not help") says nothing.
                    stance = max(stance, 0.0)
                keep(
                    f"sig:{signature.key}",
                    _Mention(_said(match.group(0)), signature.weight * stance, clause.text),
                )
        norm_clause = normalise(clause.text)
        for (word, weight), pattern in zip(mode.signals.items(), mode.patterns, strict=True):
            found = pattern.search(norm_clause)
            if not found:
                continue
            # Polarity is judged on the clause's own text, where the word sits.
            raw = re.search(re.escape(word.split()[0]), clause.text, re.IGNORECASE)
            stance = polarity(clause, raw.start(), raw.end()) if raw else clause.stance
            keep(f"word:{word}", _Mention(f"'{word}'", WORD_WEIGHT * weight * stance, clause.text))
    return list(best.values())


def _root_cause_strength(mode: FailureMode, catalogue: Catalogue, text: str) -> float:
    """How plainly a recorded root cause names this mode (0..1)."""
    found = sum(
        s.weight
        for s in catalogue.patterns_by_cause.get(mode.code, ())
        if s.weight > 0 and s.pattern is not None and s.pattern.search(text)
    )
    found += WORD_WEIGHT * _weight(signals_in(mode, text), 3.0)
    return min(found / 3.0, 1.0)


def relevant_deploy(evidence: Evidence, window_minutes: float) -> DeployFact | None:
    """The closest deploy before the start, inside the window, of the incident's service or of a
    service the report names."""
    incident = evidence.incident
    for deploy in evidence.deploys:
        if evidence.minutes_before_start(deploy) > window_minutes:
            break
        if deploy.service_name == incident.service_name or services_named(
            incident.text, [deploy.service_name]
        ):
            return deploy
    return None


def score_modes(
    evidence: Evidence,
    items: Sequence[EvidenceItem],
    refs: ItemRefs,
    deploy_window_minutes: float = 24 * 60,
    catalogue: Catalogue | None = None,
) -> list[_Case]:
    catalogue = catalogue or signatures.shipped()
    incident = evidence.incident
    report_clauses = clauses(incident.text)
    title_norm = normalise(incident.title)
    deploy = relevant_deploy(evidence, deploy_window_minutes)
    # What each similar incident's recorded root cause says of every mode: the same whichever mode is
    # being scored, so worked out once, not once per mode.
    cause_strengths = [
        {m.code: _root_cause_strength(m, catalogue, s.incident.resolution) for m in CATALOGUE}
        if s.incident.resolution
        else {}
        for s in evidence.similar
    ]
    cases = []
    for mode in CATALOGUE:
        case = _Case(mode)

        # The report: what it asserts for the mode, and what it rules out.
        mentions = _mentions(mode, catalogue, report_clauses)
        support = [m for m in mentions if m.strength > 0]
        if support:
            strength = min(sum(m.strength for m in support), REPORT_CAP)
            if any(p.search(title_norm) for p in mode.patterns):
                strength += TITLE_BONUS
            said = list(dict.fromkeys(m.label for m in sorted(support, key=lambda m: -m.strength)))
            unique = [w for i, w in enumerate(said) if w.lower() not in {x.lower() for x in said[:i]}]
            case.add(strength, f"the report says {', '.join(unique[:4])}")
            for index in refs.report:
                if len(case.cited) >= 2:
                    break
                if any(
                    clip(m.clause) in items[index].summary or m.clause in items[index].summary
                    for m in support
                ):
                    case.cite(index)
            case.cite(refs.figures)
        against = [m for m in mentions if m.strength < 0]
        if against:
            case.add(
                max(sum(m.strength for m in against), -REPORT_CAP),
                f"the report rules it out ({'; '.join(_said(m.clause) for m in against[:2])})",
            )

        # Alerts: catalogue entries on their names and labels, error text in label values and
        # annotations, and (weakly) the words of their names.
        alert_strength = 0.0
        named: list[str] = []
        for alert in evidence.alerts:
            this = 0.0
            for signature in catalogue.alerts:
                if signature.cause == mode.code and signature.matches_alert(alert.alertname, alert.labels):
                    this = max(this, signature.weight)
            values = " ".join(
                v for k, v in sorted({**alert.labels, **alert.annotations}.items()) if k not in NOISY_LABELS
            )
            for signature in catalogue.patterns_by_cause.get(mode.code, ()):
                if signature.pattern is not None and signature.pattern.search(values):
                    this = max(this, signature.weight * LABEL_TEXT_FACTOR)
            words = signals_in(mode, alert.text)
            this += ALERT_WORD_WEIGHT * _weight(words, 2.0)
            if this > 0:
                alert_strength += this
                named.append(alert.alertname)
                case.cite(refs.alerts.get(alert.fingerprint))
        if alert_strength:
            labels = ", ".join(dict.fromkeys(named))
            case.add(min(alert_strength, ALERT_CAP), f"alert {labels}")

        # The closest relevant deploy, fading with time; not when the report rules the release out.
        if deploy is not None and mode.deploy_affinity:
            minutes = evidence.minutes_before_start(deploy)
            proximity = deploy_proximity(minutes, deploy_window_minutes)
            ruled_out = mode.code == "bad_deploy" and bool(against)
            if proximity and not ruled_out:
                whose = "" if deploy.service_name == incident.service_name else f"{deploy.service_name} "
                case.add(
                    mode.deploy_affinity * proximity,
                    f"{whose}{deploy.version} deployed {minutes:.0f} min before the start",
                )
                case.cite(refs.deploys.get(deploy.deploy_id))

        for reading in evidence.metrics:
            for rule in mode.metric_rules:
                if rule.metric == reading.name and rule.fires(reading):
                    change = reading.change
                    moved = f"x{change:.1f}" if change is not None else "high"
                    case.add(METRIC_FACTOR * rule.boost, f"{reading.name} {moved} around the start")
                    case.cite(refs.metrics.get(reading.name))
            if reading.name.startswith("alert:") and (reading.change or 0) >= 1.5:
                # An alert's own expression names what it measures (e.g. container_memory_...).
                if signals_in(mode, reading.expr.replace("_", " ")):
                    case.add(0.5, f"{reading.name} rose x{reading.change:.1f}")
                    case.cite(refs.metrics.get(reading.name))

        # Similar past incidents: a recorded root cause that names this mode, in proportion to how
        # similar the incident is; their symptoms alone, a little.
        for similar, strengths in zip(evidence.similar, cause_strengths, strict=True):
            past = similar.incident
            if past.resolution:
                top = max(strengths.values())
                mine = strengths[mode.code]
                if mine > 0 and mine >= ROOT_CAUSE_SHARE * top:
                    case.add(SIMILAR_CAUSE_WEIGHT * similar.score * mine, f"{past.key}'s root cause matches")
                    case.cite(refs.similar.get(past.key))
                    continue
            if signals_in(mode, past.text):
                case.add(SIMILAR_TEXT_WEIGHT * similar.score, f"similar {past.key}")
                case.cite(refs.similar.get(past.key))

        if evidence.recent_on_service and mode.deploy_affinity and case.backed:
            case.add(
                RECENT_INCIDENTS_BOOST * min(mode.deploy_affinity, 1.0),
                f"{len(evidence.recent_on_service)} recent incident(s) on the service",
            )
            case.cite(refs.recent)
        cases.append(case)
    return cases


def explain(case: _Case, confidence: float, evidence: Evidence) -> str:
    incident = evidence.incident
    if not case.backed:
        line = (
            f"Confidence {confidence:.2f}: no direct signal; ranked by how often a {case.mode.name} explains "
            f"incidents like {incident.key} ({incident.severity} on {incident.service_name})"
        )
        if case.objections:
            line += "; against it: " + "; ".join(case.objections)
        return line
    line = f"Confidence {confidence:.2f} (score {case.score:.2f}): " + "; ".join(case.reasons)
    if case.objections:
        line += "; against it: " + "; ".join(case.objections)
    return line


def generate(
    evidence: Evidence, deploy_window_minutes: float = 24 * 60, catalogue: Catalogue | None = None
) -> list[Hypothesis]:
    """Three ranked hypotheses whose evidence lines are rendered from `collect(evidence)`: the same
    items `evidence.collected` publishes. `catalogue`: the tenant's (default: the shipped one)."""
    items, refs = collect(evidence)
    cases = {c.mode.code: c for c in score_modes(evidence, items, refs, deploy_window_minutes, catalogue)}
    ranked = rank([Scored(code, case.score) for code, case in cases.items()], temperature=TEMPERATURE)
    service = evidence.incident.service_name
    hypotheses = []
    for position, (scored, confidence) in enumerate(ranked, start=1):
        case = cases[scored.code]
        lines = [explain(case, confidence, evidence)]
        lines += [render(items[i]) for i in case.cited[: MAX_EVIDENCE_LINES - 1]]
        hypotheses.append(
            Hypothesis(
                rank=position,
                claim=case.mode.claim.format(service=service),
                description=case.mode.description.format(service=service),
                confidence=confidence,
                evidence=lines,
                engine=ENGINE,
            )
        )
    return hypotheses


def category_of(hypothesis: Hypothesis, service: str) -> str | None:
    """The catalogue entry a hypothesis stands for: its claim as this engine words it, or else (a
    claim in free text, as Claude writes it) the entry whose signals weigh most in its claim and
    description. None when nothing in the catalogue matches."""
    for mode in CATALOGUE:
        if hypothesis.claim == mode.claim.format(service=service):
            return mode.code
    best, best_weight = None, 0.0
    for mode in CATALOGUE:
        weight = 2 * _weight(signals_in(mode, hypothesis.claim), 10.0) + _weight(
            signals_in(mode, hypothesis.description), 10.0
        )
        if weight > best_weight:
            best, best_weight = mode.code, weight
    return best
