import { useState } from "react";
import type { EvidenceItemRead, HypothesesRead, HypothesisRead } from "../api/types";
import { dateTime, percent, relativeTime } from "../lib/format";
import { safeLink } from "../lib/incidents";
import { Spinner } from "./ui";

export type Verdict = "confirmed" | "rejected";

/** The structured evidence item a hypothesis's evidence line quotes ("summary [source]"), if any. */
export function matchEvidence(line: string, items: EvidenceItemRead[]): EvidenceItemRead | undefined {
  return items.find(
    (item) => item.summary && line.includes(item.summary) && (!item.source || line.includes(item.source)),
  );
}

function EvidenceLine({ line, items }: { line: string; items: EvidenceItemRead[] }) {
  const match = matchEvidence(line, items);
  const href = safeLink(match?.link);
  return (
    <li>
      {href ? (
        <a href={href} target="_blank" rel="noopener noreferrer">
          {line}
          <span className="sr-only"> (opens in a new tab)</span> ↗
        </a>
      ) : (
        line
      )}
    </li>
  );
}

function ConfidenceBar({ value }: { value: number }) {
  const pct = Math.max(0, Math.min(1, value));
  const level = pct >= 0.5 ? "high" : pct >= 0.2 ? "mid" : "low";
  return (
    <div className="confidence">
      <div
        className="confidence-track"
        role="meter"
        aria-label="Confidence"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(pct * 100)}
        aria-valuetext={percent(pct)}
      >
        <div className={`confidence-fill conf-${level}`} style={{ width: `${pct * 100}%` }} />
      </div>
      <span className="confidence-value">{percent(pct)}</span>
    </div>
  );
}

function HypothesisCard({
  hypothesis,
  evidence,
  feedback,
  onFeedback,
}: {
  hypothesis: HypothesisRead;
  evidence: EvidenceItemRead[];
  feedback?: Verdict;
  onFeedback?: (rank: number, verdict: Verdict) => Promise<void>;
}) {
  const [busy, setBusy] = useState<Verdict | null>(null);
  const give = async (verdict: Verdict) => {
    if (!onFeedback) return;
    setBusy(verdict);
    try {
      await onFeedback(hypothesis.rank, verdict);
    } finally {
      setBusy(null);
    }
  };
  return (
    <li className="hypothesis" data-testid="hypothesis">
      <div className="hypothesis-head">
        <span className="rank" aria-label={`Rank ${hypothesis.rank}`}>
          {hypothesis.rank}
        </span>
        <h3>{hypothesis.claim}</h3>
      </div>
      <ConfidenceBar value={hypothesis.confidence} />
      <p className="hypothesis-desc">{hypothesis.description}</p>
      {hypothesis.evidence.length ? (
        <details open={hypothesis.rank === 1}>
          <summary>Evidence ({hypothesis.evidence.length})</summary>
          <ul className="evidence-lines">
            {hypothesis.evidence.map((line, i) => (
              <EvidenceLine key={i} line={line} items={evidence} />
            ))}
          </ul>
        </details>
      ) : null}
      {onFeedback ? (
        <div className="feedback" role="group" aria-label={`Feedback on hypothesis ${hypothesis.rank}`}>
          <button
            type="button"
            className={`btn btn-small ${feedback === "confirmed" ? "btn-on" : ""}`}
            aria-pressed={feedback === "confirmed"}
            disabled={busy !== null}
            onClick={() => void give("confirmed")}
          >
            ✓ This is it
            {hypothesis.feedback?.confirmed ? <span className="count"> · {hypothesis.feedback.confirmed}</span> : null}
          </button>
          <button
            type="button"
            className={`btn btn-small ${feedback === "rejected" ? "btn-on" : ""}`}
            aria-pressed={feedback === "rejected"}
            disabled={busy !== null}
            onClick={() => void give("rejected")}
          >
            ✕ Not it
            {hypothesis.feedback?.rejected ? <span className="count"> · {hypothesis.feedback.rejected}</span> : null}
          </button>
        </div>
      ) : hypothesis.feedback && (hypothesis.feedback.confirmed || hypothesis.feedback.rejected) ? (
        <div className="muted small">
          Confirmed {hypothesis.feedback.confirmed} · rejected {hypothesis.feedback.rejected}
        </div>
      ) : null}
    </li>
  );
}

export function EvidenceList({ items }: { items: EvidenceItemRead[] }) {
  if (!items.length) return null;
  return (
    <details className="evidence-all">
      <summary>All evidence gathered ({items.length})</summary>
      <ul>
        {items.map((item, i) => {
          const href = safeLink(item.link);
          return (
            <li key={i}>
              <span className="badge kind">{item.kind.replace(/_/g, " ")}</span>
              <span className="evidence-summary">
                {href ? (
                  <a href={href} target="_blank" rel="noopener noreferrer">
                    {item.summary} ↗
                  </a>
                ) : (
                  item.summary
                )}
              </span>
              <span className="muted small">
                {item.source}
                {item.time ? ` · ${dateTime(item.time)}` : ""}
              </span>
            </li>
          );
        })}
      </ul>
    </details>
  );
}

export function Hypotheses({
  data,
  feedback,
  onFeedback,
  onRegenerate,
}: {
  data: HypothesesRead;
  feedback?: Record<number, Verdict>;
  onFeedback?: (rank: number, verdict: Verdict) => Promise<void>;
  onRegenerate?: () => Promise<void>;
}) {
  const [regenerating, setRegenerating] = useState(false);
  const regenerate = async () => {
    if (!onRegenerate) return;
    setRegenerating(true);
    try {
      await onRegenerate();
    } finally {
      setRegenerating(false);
    }
  };
  const regenerateButton = onRegenerate ? (
    <button type="button" className="btn btn-small" onClick={() => void regenerate()} disabled={regenerating}>
      {regenerating ? "Requesting…" : "↻ Regenerate"}
    </button>
  ) : null;

  if (data.status === "pending") {
    return (
      <div className="pending" aria-busy="true" data-testid="hypotheses-pending">
        <Spinner label="Generating hypotheses" />
        <span>The AI worker is weighing the evidence… hypotheses appear here by themselves.</span>
      </div>
    );
  }
  const items = [...data.items].sort((a, b) => a.rank - b.rank);
  const evidence = data.evidence ?? [];
  return (
    <div data-testid="hypotheses">
      <div className="hypotheses-meta">
        <span className="muted small">
          Generation {data.generation ?? 1} · {data.engine} engine
          {data.trigger ? ` · after ${data.trigger.replace(/_/g, " ")}` : ""}
          {data.generated_at ? ` · ${relativeTime(data.generated_at)}` : ""}
        </span>
        {regenerateButton}
      </div>
      {data.fallback_reason ? (
        <div className="alert alert-info small">Fallback to the rules engine: {data.fallback_reason}</div>
      ) : null}
      <ol className="hypotheses" aria-label="Ranked hypotheses">
        {items.map((h) => (
          <HypothesisCard
            key={`${data.generation}-${h.rank}`}
            hypothesis={h}
            evidence={evidence}
            feedback={feedback?.[h.rank]}
            onFeedback={onFeedback}
          />
        ))}
      </ol>
      <EvidenceList items={evidence} />
    </div>
  );
}
