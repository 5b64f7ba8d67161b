"""AI worker's pure parts: ranking, evidence gathering and the offline rules engine."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from ai_worker.domain import HYPOTHESES_PER_INCIDENT, Scored, rank
from ai_worker.engines import rules
from ai_worker.evidence import (
    FIGURE,
    STOPWORDS,
    AlertFact,
    DeployFact,
    Evidence,
    IncidentFacts,
    MetricReading,
    PastIncident,
    collect,
    evidence_items,
    format_value,
    gather,
    render,
    sentence_with,
    split_name,
    tfidf_similarity,
    tokens,
)
from contracts.events import Hypothesis

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def facts(
    title: str = "High CPU usage on payment-api",
    description: str = "CPU spiked to 90% after recent deployment at 10:30 AM. p99 latency 250 ms.",
    service: str = "payment-api",
    created_at: datetime = NOW,
) -> IncidentFacts:
    return IncidentFacts(
        id="00000000-0000-0000-0000-000000000001",
        tenant_id="t_1",
        key="INC-10",
        title=title,
        description=description,
        service_name=service,
        severity="high",
        created_at=created_at,
    )


def past(
    key: str,
    title: str,
    description: str = "",
    service: str = "payment-api",
    state: str = "resolved",
    age: timedelta = timedelta(days=30),
) -> PastIncident:
    return PastIncident(
        key=key,
        title=title,
        description=description,
        service_name=service,
        state=state,
        created_at=NOW - age,
    )


# ---------------------------------------------------------------- rank


def test_rank_of_nothing_is_empty() -> None:
    assert rank([]) == []


def test_rank_keeps_the_top_three_by_score() -> None:
    candidates = [Scored("a", 0.1), Scored("b", 3.0), Scored("c", 2.0), Scored("d", 2.5), Scored("e", 0.5)]
    ranked = rank(candidates)
    assert HYPOTHESES_PER_INCIDENT == 3
    assert [s.code for s, _ in ranked] == ["b", "d", "c"]


def test_rank_with_fewer_than_three_candidates_returns_them_all() -> None:
    ranked = rank([Scored("only", 1.0)])
    assert ranked == [(Scored("only", 1.0), 1.0)]
    assert [s.code for s, _ in rank([Scored("x", 1.0), Scored("y", 2.0)])] == ["y", "x"]


def test_rank_breaks_ties_by_code_whatever_the_input_order() -> None:
    tied = [Scored("delta", 1.0), Scored("bravo", 1.0), Scored("charlie", 1.0), Scored("alpha", 1.0)]
    expected = ["alpha", "bravo", "charlie"]
    assert [s.code for s, _ in rank(tied)] == expected
    assert [s.code for s, _ in rank(list(reversed(tied)))] == expected
    # Four equal shares: each is a quarter.
    assert [c for _, c in rank(tied)] == [0.25, 0.25, 0.25]


def test_rank_tie_break_only_applies_among_equal_scores() -> None:
    ranked = rank([Scored("a", 1.0), Scored("z", 2.0), Scored("b", 1.0)])
    assert [s.code for s, _ in ranked] == ["z", "a", "b"]


def test_rank_confidences_are_softmax_shares_rounded_down() -> None:
    ranked = rank([Scored("a", 2.0), Scored("b", 1.0), Scored("c", 0.0)])
    total = math.exp(2) + math.exp(1) + 1
    assert [c for _, c in ranked] == [
        math.floor(math.exp(2) / total * 100) / 100,
        math.floor(math.exp(1) / total * 100) / 100,
        math.floor(1 / total * 100) / 100,
    ]
    # Rounded down, so three shares of a whole never add up to more than it (0.665 -> 0.66).
    assert [c for _, c in ranked] == [0.66, 0.24, 0.09]


def test_rank_rounding_down_is_not_fooled_by_binary_fractions() -> None:
    # 0.29 * 100 is 28.999999999999996 in binary floating point.
    ranked = rank([Scored("a", math.log(0.29)), Scored("b", math.log(0.71))])
    assert [c for _, c in ranked] == [0.71, 0.29]


@pytest.mark.parametrize(
    "scores",
    [
        [1.0, 1.0, 1.0],
        [5.0, 5.0, 5.0, -30.0],
        [100.0, 1.0, 0.0],
        [2.0, 1.999, 1.998],
        [0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.4, -0.5, -0.6],
    ],
)
def test_rank_confidences_sum_to_at_most_one(scores: list[float]) -> None:
    for temperature in (0.5, 1.0, 1.5, 3.0):
        confidences = [c for _, c in rank([Scored(f"c{i}", s) for i, s in enumerate(scores)], temperature)]
        assert sum(confidences) <= 1.0 + 1e-9, (scores, temperature, confidences)
        assert confidences == sorted(confidences, reverse=True)


def test_rank_share_is_over_all_candidates_not_just_the_top_three() -> None:
    # Ten equal candidates: each has a tenth, even though only three are returned.
    ranked = rank([Scored(f"c{i}", 1.0) for i in range(10)])
    assert [c for _, c in ranked] == [0.1, 0.1, 0.1]


def test_rank_temperature_flattens_the_distribution() -> None:
    candidates = [Scored("a", 2.0), Scored("b", 1.0), Scored("c", 0.0)]
    sharp = rank(candidates, temperature=0.5)[0][1]
    flat = rank(candidates, temperature=10.0)[0][1]
    assert sharp > rank(candidates)[0][1] > flat
    assert flat == pytest.approx(1 / 3, abs=0.05)


@pytest.mark.parametrize(
    "scores",
    [
        [100.0, 1.0, 0.0],
        [1000.0, -1000.0, -2000.0, 5.0],
        [0.0, 0.0, 0.0],
        [1.0, 0.99, 0.98, 0.97, 0.96],
        [-5.0, -6.0, -7.0],
        [3.0],
    ],
)
def test_rank_confidences_are_in_zero_one_and_non_increasing(scores: list[float]) -> None:
    ranked = rank([Scored(f"code{i}", s) for i, s in enumerate(scores)])
    confidences = [c for _, c in ranked]
    assert len(ranked) == min(3, len(scores))
    assert all(0 < c <= 1 for c in confidences), confidences
    assert confidences == sorted(confidences, reverse=True)


def test_rank_floors_negligible_confidences_at_one_percent_within_the_whole() -> None:
    ranked = rank([Scored("big", 100.0), Scored("tiny", 1.0), Scored("tinier", 0.0)])
    # The floor is taken from the first, so the three still sum to 1.
    assert [c for _, c in ranked] == [0.98, 0.01, 0.01]


def test_rank_is_deterministic() -> None:
    candidates = [Scored(code, score) for code, score in [("x", 1.2), ("y", 0.7), ("z", 1.2), ("w", 0.1)]]
    assert rank(candidates) == rank(list(reversed(candidates)))


# ---------------------------------------------------------------- tokens, figures, similarity


def test_tokens_lowercases_and_drops_stopwords_and_single_chars() -> None:
    got = tokens("The CPU is at 90% and the DB-pool was exhausted after a deploy of x")
    assert got == ["cpu", "90", "db-pool", "exhausted", "deploy"]
    assert not set(got) & STOPWORDS


def test_tokens_keeps_hyphenated_and_underscored_words_whole() -> None:
    assert tokens("payment-api order_service -dangling") == ["payment-api", "order_service", "dangling"]


def test_tokens_of_only_stopwords_is_empty() -> None:
    assert tokens("the and of a an to in") == []
    assert tokens("") == []


@pytest.mark.parametrize(
    ("text", "figures"),
    [
        ("CPU spiked to 90%", ["90%"]),
        ("p99 latency 250 ms", ["250 ms"]),
        ("latency 250ms then 1.5s", ["250ms", "1.5s"]),
        ("timeouts after 30 seconds", ["30 seconds"]),
        ("memory at 3.5 GB, 1200 rps and 4k users", ["3.5 GB", "1200 rps", "4k"]),
        ("error rate 12.5 % over 5 min", ["12.5 %"]),
        ("5 services and 10 mistakes", []),
        ("version 2 released", []),
    ],
)
def test_figures_are_numbers_with_units(text: str, figures: list[str]) -> None:
    assert FIGURE.findall(text) == figures


def test_sentence_with_quotes_the_sentence_containing_the_word() -> None:
    text = "High CPU usage. Error after deployment at 10:30! Nothing else"
    assert sentence_with(text, "deployment") == "Error after deployment at 10:30!"
    assert sentence_with(text, "absent") == text
    long = "deploy " + "x" * 300
    quoted = sentence_with(long, "deploy", limit=50)
    assert len(quoted) == 50
    assert quoted.endswith("…")


def test_tfidf_scores_the_more_similar_document_higher() -> None:
    query = "CPU saturation on payment-api after deploy"
    close = "payment-api CPU saturation following a deploy"
    far = "disk full on search cluster"
    scores = tfidf_similarity(query, [far, close])
    assert len(scores) == 2
    assert scores[1] > scores[0]
    assert 0 < scores[1] <= 1.0 + 1e-9


def _tfidf_by_definition(query: str, documents: list[str]) -> list[float]:
    """The formula as written before tokenised texts were kept and word-disjoint documents skipped."""
    from collections import Counter

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
    out = []
    for d in docs:
        dv = vector(d)
        dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
        out.append(sum(w * dv.get(t, 0.0) for t, w in qv.items()) / (qn * dn))
    return out


def test_tfidf_gives_the_very_same_floats_as_the_formula_on_a_repeated_history() -> None:
    import random

    rng = random.Random(16)
    words = [f"w{i}" for i in range(300)] + "cpu pool exhausted deploy oom disk latency".split()
    history = [" ".join(rng.choices(words, k=rng.randint(0, 30))) for _ in range(400)]
    # A storm: the same texts again and again (their scores are worked out once a ranking).
    history += rng.choices(history[:5], k=200)
    rng.shuffle(history)
    for _ in range(3):  # the second and third rankings read the kept tokenisations
        for query in ("", "the and", "cpu pool exhausted", " ".join(rng.choices(words, k=12))):
            got = tfidf_similarity(query, history)
            assert got == _tfidf_by_definition(query, history)  # exact, not approximately


def test_tfidf_of_disjoint_documents_is_zero() -> None:
    assert tfidf_similarity("cpu saturation", ["disk full", "network packets dropped"]) == [0.0, 0.0]


def test_tfidf_of_identical_text_is_one() -> None:
    scores = tfidf_similarity("database connection pool exhausted", ["database connection pool exhausted"])
    assert scores[0] == pytest.approx(1.0)


def test_tfidf_with_empty_inputs() -> None:
    assert tfidf_similarity("anything", []) == []
    assert tfidf_similarity("", ["cpu"]) == [0.0]
    assert tfidf_similarity("the of and", ["cpu"]) == [0.0]


def test_tfidf_rare_shared_words_count_more_than_common_ones() -> None:
    # "api" is in every document, "deadlock" in one: sharing the rare word scores higher.
    docs = ["api deadlock", "api errors", "api latency"]
    scores = tfidf_similarity("api deadlock", docs)
    assert scores[0] > scores[1]
    assert scores[1] == pytest.approx(scores[2])


# ---------------------------------------------------------------- gather


def test_gather_extracts_figures_once_in_order() -> None:
    incident = facts(description="CPU at 90% then 90% again, latency 250 ms")
    evidence = gather(incident, [])
    assert evidence.figures == ["90%", "250 ms"]
    assert evidence.incident is incident
    assert evidence.similar == []
    assert evidence.recent_on_service == []


def test_gather_picks_similar_past_incidents_and_skips_unrelated_ones() -> None:
    similar = past("INC-2", "CPU saturation on payment-api after deploy", "CPU load hit 95% after deployment")
    unrelated = past("INC-3", "Disk full on search", "inode exhaustion on volume", service="search")
    evidence = gather(facts(), [unrelated, similar])
    assert [s.incident.key for s in evidence.similar] == ["INC-2"]
    assert evidence.similar[0].score >= 0.2


def test_gather_boosts_incidents_on_the_same_service() -> None:
    same = past("INC-1", "CPU spike", service="payment-api")
    other = past("INC-2", "CPU spike", service="billing")
    evidence = gather(facts(), [other, same])
    scores = {s.incident.key: s.score for s in evidence.similar}
    assert "INC-1" in scores
    assert scores["INC-1"] > scores.get("INC-2", 0.0)


def test_gather_sorts_similar_by_score_and_keeps_at_most_five() -> None:
    history = [
        past(f"INC-{i}", "High CPU usage on payment-api", "CPU spiked after deployment") for i in range(8)
    ]
    history.append(
        past("INC-99", "High CPU usage on payment-api", "CPU spiked to 90% after recent deployment")
    )
    evidence = gather(facts(), history)
    assert len(evidence.similar) == 5
    scores = [s.score for s in evidence.similar]
    assert scores == sorted(scores, reverse=True)
    assert evidence.similar[0].incident.key == "INC-99"
    # Equal scores are ordered by key.
    tied = [s.incident.key for s in evidence.similar[1:]]
    assert tied == sorted(tied)


def test_gather_recent_on_service_is_same_service_within_seven_days_only() -> None:
    history = [
        past("INC-1", "anything", service="payment-api", age=timedelta(days=1)),
        past("INC-2", "anything", service="payment-api", age=timedelta(days=7)),
        past("INC-3", "anything", service="payment-api", age=timedelta(days=7, seconds=1)),
        past("INC-4", "anything", service="payment-api", age=timedelta(days=30)),
        past("INC-5", "anything", service="billing", age=timedelta(days=1)),
    ]
    evidence = gather(facts(), history)
    assert [p.key for p in evidence.recent_on_service] == ["INC-1", "INC-2"]


def test_gather_recent_window_is_configurable() -> None:
    history = [
        past("INC-1", "x", age=timedelta(days=1)),
        past("INC-2", "x", age=timedelta(days=3)),
    ]
    assert [p.key for p in gather(facts(), history, recent_days=2).recent_on_service] == ["INC-1"]


# ---------------------------------------------------------------- rules engine

CPU_DEPLOY = facts()


def assert_well_formed(hypotheses: list[Hypothesis]) -> None:
    assert len(hypotheses) == 3
    assert [h.rank for h in hypotheses] == [1, 2, 3]
    confidences = [h.confidence for h in hypotheses]
    assert all(0 < c <= 1 for c in confidences), confidences
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) <= 1.0 + 1e-9
    codes_claims = {h.claim for h in hypotheses}
    assert len(codes_claims) == 3
    for h in hypotheses:
        assert h.engine == "rules"
        assert h.evidence
        assert all(isinstance(e, str) and e.strip() for e in h.evidence)
        assert h.claim.strip()
        assert h.description.strip()
        assert "{service}" not in h.claim
        assert "{service}" not in h.description


CPU = "CPU saturation in payment-api (hot code path, inefficient work or throttling)"
CHANGE = "A recent change to payment-api (a bad deploy) introduced a regression"


def test_rules_generate_three_well_formed_hypotheses() -> None:
    hypotheses = rules.generate(gather(CPU_DEPLOY, []))
    assert_well_formed(hypotheses)


def test_rules_rank_cpu_and_recent_change_first_for_a_cpu_after_deploy_report() -> None:
    hypotheses = rules.generate(gather(CPU_DEPLOY, []))
    assert [h.claim for h in hypotheses[:2]] == [CPU, CHANGE]
    assert hypotheses[0].confidence > hypotheses[1].confidence > hypotheses[2].confidence


def test_rules_explain_each_confidence_first_then_quote_the_report() -> None:
    hypotheses = rules.generate(gather(CPU_DEPLOY, []))
    by_claim = {h.claim: h for h in hypotheses}
    cpu = by_claim[CPU]
    assert cpu.evidence[0].startswith(f"Confidence {cpu.confidence:.2f} (score ")
    # The report's own words are quoted, strongest first (a catalogue entry, then its words).
    assert "the report says 'CPU', 'high cpu'" in cpu.evidence[0]
    assert "“High CPU usage on payment-api.” [incident INC-10]" in cpu.evidence
    # The figures found in the report are cited too.
    assert any(e.startswith("Figures in the report: 90%, 250 ms") for e in cpu.evidence)
    change = by_claim[CHANGE]
    assert "'deployment'" in change.evidence[0]
    assert any("CPU spiked to 90% after recent deployment at 10:30 AM." in e for e in change.evidence)


def test_rules_cite_a_similar_resolved_past_incident_by_key() -> None:
    similar = past("INC-2", "CPU saturation on payment-api after deploy", "CPU load hit 95% after deployment")
    hypotheses = rules.generate(gather(CPU_DEPLOY, [similar]))
    assert_well_formed(hypotheses)
    cited = [e for h in hypotheses for e in h.evidence if e.startswith("INC-2")]
    assert cited
    assert any("resolved" in e and "CPU saturation on payment-api after deploy" in e for e in cited)
    # Only failure modes whose signals the past incident shares get the citation.
    network = [h for h in hypotheses if "network" in h.claim.lower()]
    for h in network:
        assert not any("INC-2" in e for e in h.evidence)


def test_rules_similar_past_incident_raises_that_cause() -> None:
    incident = facts(title="Checkout slow", description="Customers report slow checkout pages.")
    alone = rules.generate(gather(incident, []))
    with_history = rules.generate(
        gather(
            incident,
            [
                past(
                    "INC-7",
                    "Checkout slow: database deadlock",
                    "checkout slow because of a database deadlock",
                )
            ],
        )
    )
    dependency = "A slow or failing dependency of payment-api (database, downstream API)"
    assert with_history[0].claim == dependency
    assert with_history[0].confidence > next(h.confidence for h in alone if h.claim == dependency)
    assert any("INC-7" in e for e in with_history[0].evidence)


def test_rules_a_recorded_root_cause_outweighs_matching_symptoms() -> None:
    incident = facts(title="Checkout latency alerts again", description="p99 above 2 s, as last week.")
    symptoms_only = past("INC-5", "Checkout latency above 2 s", "p99 latency high on checkout")
    with_cause = PastIncident(
        key="INC-5",
        title="Checkout latency above 2 s",
        description="p99 latency high on checkout",
        service_name="payment-api",
        state="resolved",
        created_at=NOW - timedelta(days=7),
        id="00000000-0000-0000-0000-000000000005",
        resolved_at=NOW - timedelta(days=6),
        resolution="connection pool exhaustion: pool size 10 too small",
    )
    pool = "Connection-pool or thread exhaustion in payment-api"
    before = rules.generate(gather(incident, [symptoms_only]))
    after = rules.generate(gather(incident, [with_cause]))
    assert pool not in [h.claim for h in before[:1]]
    assert after[0].claim == pool
    assert any(
        e.startswith("INC-5, resolved 2026-01-04: connection pool exhaustion")
        and "00000000-0000-0000-0000-000000000005" in e
        for e in after[0].evidence
    )


def test_rules_recent_incidents_on_the_service_support_recent_change() -> None:
    recent = past("INC-8", "Unrelated glitch", age=timedelta(days=2))
    hypotheses = rules.generate(gather(CPU_DEPLOY, [recent]))
    change = next(h for h in hypotheses if h.claim == CHANGE)
    assert any("INC-8" in e and "previous 7 days" in e for e in change.evidence)


def test_rules_without_signal_fall_back_to_priors_with_an_explanation() -> None:
    incident = facts(title="Something odd", description="Nobody knows.")
    hypotheses = rules.generate(Evidence(incident=incident))
    assert_well_formed(hypotheses)
    # Highest prior first: bad deploy (0.6), then config change and slow dependency (0.45, by code).
    assert [h.claim for h in hypotheses] == [
        CHANGE,
        "A configuration change to payment-api (flags, settings, secrets)",
        "A slow or failing dependency of payment-api (database, downstream API)",
    ]
    assert hypotheses[0].evidence == [
        f"Confidence {hypotheses[0].confidence:.2f}: no direct signal; ranked by how often a bad deploy "
        "explains incidents like INC-10 (high on payment-api)"
    ]


def test_rules_memory_report_ranks_memory_first() -> None:
    incident = facts(
        title="OOM kills on worker",
        description="Pods OOMKilled repeatedly; heap grows until the memory limit, GC pauses of 800 ms.",
        service="worker",
    )
    hypotheses = rules.generate(gather(incident, []))
    assert_well_formed(hypotheses)
    assert hypotheses[0].claim == "A memory leak or OOM kills in worker"


def test_rules_are_deterministic() -> None:
    history = [
        past("INC-2", "CPU saturation on payment-api after deploy", "CPU load hit 95% after deployment"),
        past("INC-3", "Disk full", service="search", age=timedelta(days=2)),
        past("INC-4", "Deploy broke payment-api", age=timedelta(days=3)),
    ]
    first = rules.generate(gather(CPU_DEPLOY, history))
    second = rules.generate(gather(CPU_DEPLOY, list(history)))
    assert first == second
    assert [h.model_dump() for h in first] == [h.model_dump() for h in second]


# ---------------------------------------------------------------- evidence from deploys, alerts, metrics

VAGUE = facts(title="Checkout errors", description="Customers report errors when paying.")


def deploy(minutes_before: float, deploy_id: str = "d-1", version: str = "v2.4.1") -> DeployFact:
    return DeployFact(
        deploy_id=deploy_id,
        service_name="payment-api",
        version=version,
        environment="production",
        deployed_at=NOW - timedelta(minutes=minutes_before),
        commit="0123456789abcdef",
        author="alice",
    )


def test_a_deploy_minutes_before_the_start_makes_bad_deploy_first_and_is_cited() -> None:
    without = rules.generate(gather(VAGUE, []))
    with_deploy = rules.generate(gather(VAGUE, [], deploys=[deploy(12)]))
    assert with_deploy[0].claim == CHANGE
    assert with_deploy[0].confidence > next((h.confidence for h in without if h.claim == CHANGE), 0)
    assert "v2.4.1 deployed 12 min before the start" in with_deploy[0].evidence[0]
    assert (
        "Closest deploy before the start: payment-api v2.4.1 deployed to production 12 min before the start "
        "(commit 0123456789ab, by alice) [deploy d-1; 2026-01-10 11:48 UTC]"
    ) in with_deploy[0].evidence


def test_the_deploy_boost_fades_with_distance_and_ignores_later_deploys() -> None:
    def change_confidence(*deploys: DeployFact) -> float:
        hypotheses = rules.generate(gather(VAGUE, [], deploys=list(deploys)))
        return next((h.confidence for h in hypotheses if h.claim == CHANGE), 0.0)

    close, hour, day = (
        change_confidence(deploy(5)),
        change_confidence(deploy(60)),
        change_confidence(deploy(600)),
    )
    assert close > hour > day
    after = DeployFact("d-9", "payment-api", "v2.4.2", "production", NOW + timedelta(minutes=5))
    assert change_confidence(after) == change_confidence()
    assert rules.deploy_proximity(-1, 1440) == 0.0
    assert rules.deploy_proximity(2000, 1440) == 0.0
    assert rules.deploy_proximity(10, 1440) == 1.0


def test_the_closest_deploy_is_the_latest_before_the_start() -> None:
    evidence = gather(VAGUE, [], deploys=[deploy(90, "old"), deploy(20, "new"), deploy(-10, "later")])
    assert evidence.closest_deploy is not None and evidence.closest_deploy.deploy_id == "new"
    assert [d.deploy_id for d in evidence.deploys] == ["new", "old"]
    assert [d.deploy_id for d in evidence.deploys_after] == ["later"]


def alert(name: str, minutes_before: float, **labels: str) -> AlertFact:
    return AlertFact(
        fingerprint=f"fp-{name}",
        alertname=name,
        status="firing",
        labels={"alertname": name, "service": "payment-api", **labels},
        annotations={"summary": f"{name} is firing"},
        starts_at=NOW - timedelta(minutes=minutes_before),
        generator_url="http://prometheus:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
    )


def test_an_alert_name_points_at_its_failure_mode_and_moves_the_start() -> None:
    evidence = gather(VAGUE, [], alerts=[alert("KubeContainerOOMKilled", 25)], deploys=[deploy(600)])
    assert evidence.started_at == NOW - timedelta(minutes=25)
    hypotheses = rules.generate(evidence)
    assert hypotheses[0].claim == "A memory leak or OOM kills in payment-api"
    assert "alert KubeContainerOOMKilled" in hypotheses[0].evidence[0]
    line = next(e for e in hypotheses[0].evidence if e.startswith("Alert KubeContainerOOMKilled firing"))
    assert "service=payment-api" in line and "http://prometheus:9090/graph?g0.expr=up" in line
    # Minutes are counted from the alert, not from the report: 600 - 25.
    change = next(h for h in hypotheses if h.claim == CHANGE)
    assert "deployed 575 min before the start" in change.evidence[0]


def test_metrics_that_moved_support_their_failure_modes() -> None:
    cpu = MetricReading(
        "cpu", "sum(rate(process_cpu_seconds_total[5m]))", "cores", 0.5, 2.0, 2.4, "http://p/g"
    )
    flat_memory = MetricReading("memory", "sum(process_resident_memory_bytes)", "bytes", 1e9, 1e9, 1.05e9)
    hypotheses = rules.generate(gather(VAGUE, [], metrics=[cpu, flat_memory]))
    assert hypotheses[0].claim == CPU
    assert "cpu x4.8 around the start" in hypotheses[0].evidence[0]
    assert (
        "CPU of payment-api: 2.00 cores at the start, peak 2.40 cores, baseline 0.50 cores before it, "
        "x4.8 the baseline [prometheus; 2026-01-10 12:00 UTC; http://p/g]"
    ) in hypotheses[0].evidence
    assert all("memory" not in h.claim.lower() for h in hypotheses[:1])


def test_evidence_items_are_structured_ordered_and_rendered() -> None:
    evidence = gather(
        facts(),
        [past("INC-2", "CPU saturation on payment-api after deploy", "CPU load hit 95%")],
        alerts=[alert("HighCPU", 5)],
        deploys=[deploy(30)],
        metrics=[MetricReading("error_rate", "x", "ratio", 0.001, 0.02, 0.15)],
    )
    items, refs = collect(evidence)
    assert [i.kind for i in items] == [
        "report",
        "report",
        "report",
        "report",
        "alert",
        "deploy",
        "metric",
        "similar_incident",
    ]
    assert refs.report == [0, 1, 2] and refs.figures == 3
    assert refs.alerts == {"fp-HighCPU": 4} and refs.deploys == {"d-1": 5}
    assert refs.metrics == {"error_rate": 6} and refs.similar == {"INC-2": 7}
    assert items[6].summary == (
        "Error rate of payment-api: 2.0% at the start, peak 15.0%, baseline 0.1% before it, "
        "x150.0 the baseline"
    )
    assert items[5].time == NOW - timedelta(minutes=30) and items[5].source == "deploy d-1"
    assert render(items[5]).endswith("[deploy d-1; 2026-01-10 11:30 UTC]")
    assert evidence_items(evidence) == items


def test_split_names_and_value_formats() -> None:
    assert split_name("KubePodCrashLooping") == "Kube Pod Crash Looping"
    assert split_name("HighCPUUsage") == "High CPU Usage"
    assert split_name("disk_full") == "disk full"
    assert format_value(0.0423, "ratio") == "4.2%"
    assert format_value(0.25, "seconds") == "250 ms"
    assert format_value(2.5, "seconds") == "2.50 s"
    assert format_value(3 * 2**30, "bytes") == "3.00 GiB"
    assert format_value(1234.5, "rps") == "1,234.5 req/s"
    assert format_value(None, "cores") == "n/a"
