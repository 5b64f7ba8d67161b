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
    Evidence,
    IncidentFacts,
    PastIncident,
    gather,
    sentence_with,
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


def test_rank_confidences_are_softmax_shares_rounded() -> None:
    ranked = rank([Scored("a", 2.0), Scored("b", 1.0), Scored("c", 0.0)])
    total = math.exp(2) + math.exp(1) + 1
    assert [c for _, c in ranked] == [
        round(math.exp(2) / total, 2),
        round(math.exp(1) / total, 2),
        round(1 / total, 2),
    ]
    assert [c for _, c in ranked] == [0.67, 0.24, 0.09]


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


def test_rank_floors_negligible_confidences_at_one_percent() -> None:
    ranked = rank([Scored("big", 100.0), Scored("tiny", 1.0), Scored("tinier", 0.0)])
    assert ranked[0][1] == 1.0
    assert [c for _, c in ranked[1:]] == [0.01, 0.01]


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


def test_rules_generate_three_well_formed_hypotheses() -> None:
    hypotheses = rules.generate(gather(CPU_DEPLOY, []))
    assert_well_formed(hypotheses)


def test_rules_rank_cpu_and_recent_change_first_for_a_cpu_after_deploy_report() -> None:
    hypotheses = rules.generate(gather(CPU_DEPLOY, []))
    top_two = {h.claim for h in hypotheses[:2]}
    assert top_two == {
        "CPU saturation in payment-api (hot code path or inefficient query)",
        "A recent change to payment-api introduced a regression",
    }
    # Strictly ordered for this report.
    assert hypotheses[0].confidence > hypotheses[1].confidence > hypotheses[2].confidence


def test_rules_quote_the_report_in_the_evidence() -> None:
    hypotheses = rules.generate(gather(CPU_DEPLOY, []))
    by_claim = {h.claim: h for h in hypotheses}
    change = by_claim["A recent change to payment-api introduced a regression"]
    assert any(
        "deployment" in e and "CPU spiked to 90% after recent deployment at 10:30 AM." in e
        for e in change.evidence
    )
    cpu = by_claim["CPU saturation in payment-api (hot code path or inefficient query)"]
    assert any("'cpu'" in e and "High CPU usage on payment-api" in e for e in cpu.evidence)
    # The figures found in the report are cited too.
    assert any("90%" in e and "250 ms" in e and e.startswith("Figures") for e in cpu.evidence)


def test_rules_cite_a_similar_resolved_past_incident_by_key() -> None:
    similar = past("INC-2", "CPU saturation on payment-api after deploy", "CPU load hit 95% after deployment")
    hypotheses = rules.generate(gather(CPU_DEPLOY, [similar]))
    assert_well_formed(hypotheses)
    cited = [e for h in hypotheses for e in h.evidence if "INC-2" in e]
    assert cited
    assert any("resolved" in e and "CPU saturation on payment-api after deploy" in e for e in cited)
    # Only causes whose keywords the past incident shares get the citation.
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
    database = "Database contention behind payment-api (slow queries, locks or pool exhaustion)"
    assert alone[0].claim != database
    assert with_history[0].claim == database
    assert with_history[0].confidence > next(h.confidence for h in alone if h.claim == database)
    assert any("INC-7" in e for e in with_history[0].evidence)


def test_rules_recent_incidents_on_the_service_support_recent_change() -> None:
    recent = past("INC-8", "Unrelated glitch", age=timedelta(days=2))
    hypotheses = rules.generate(gather(CPU_DEPLOY, [recent]))
    change = next(h for h in hypotheses if h.claim.startswith("A recent change"))
    assert any("INC-8" in e and "previous 7 days" in e for e in change.evidence)


def test_rules_without_signal_fall_back_to_priors_with_an_explanation() -> None:
    incident = facts(title="Something odd", description="Nobody knows.")
    hypotheses = rules.generate(Evidence(incident=incident))
    assert_well_formed(hypotheses)
    # Highest prior first: recent_change (0.6), dependency (0.45), then database/error_regression (0.4).
    assert hypotheses[0].claim == "A recent change to payment-api introduced a regression"
    assert hypotheses[1].claim == "A failing downstream dependency of payment-api"
    assert (
        hypotheses[2].claim
        == "Database contention behind payment-api (slow queries, locks or pool exhaustion)"
    )
    for h in hypotheses:
        assert h.evidence == [
            "No direct signal in the report; ranked by how often this explains incidents like "
            "INC-10 (high on payment-api)"
        ]


def test_rules_memory_report_ranks_memory_first() -> None:
    incident = facts(
        title="OOM kills on worker",
        description="Pods OOMKilled repeatedly; heap grows until the memory limit, GC pauses of 800 ms.",
        service="worker",
    )
    hypotheses = rules.generate(gather(incident, []))
    assert_well_formed(hypotheses)
    assert hypotheses[0].claim == "Memory pressure or a leak in worker"


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
