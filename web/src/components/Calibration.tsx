import type { EngineAccuracyRead, ReliabilityRead } from "../api/types";

function pct(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)} %`;
}

function bucketLabel(b: ReliabilityRead): string {
  return `${Math.round(b.low * 100)}–${Math.round(b.high * 100)} %`;
}

/** How often a hypothesis shown at a given confidence was the confirmed cause: one row per
 * confidence bucket that has hypotheses, with a bar for the hit rate next to the mean confidence
 * (a calibrated engine's bars end at their marks). */
export function CalibrationTable({ engine }: { engine: EngineAccuracyRead }) {
  const buckets = (engine.calibration ?? []).filter((b) => b.hypotheses > 0);
  if (buckets.length === 0) {
    return <p className="muted">No judged hypotheses yet: resolve incidents and confirm their cause.</p>;
  }
  return (
    <table className="table calibration" aria-label={`Calibration of the ${engine.engine} engine`}>
      <thead>
        <tr>
          <th scope="col">Confidence shown</th>
          <th scope="col">Hypotheses</th>
          <th scope="col">Mean confidence</th>
          <th scope="col">Right</th>
          <th scope="col" aria-hidden="true" />
        </tr>
      </thead>
      <tbody>
        {buckets.map((b) => (
          <tr key={b.low}>
            <th scope="row">{bucketLabel(b)}</th>
            <td>{b.hypotheses}</td>
            <td>{pct(b.mean_confidence)}</td>
            <td data-testid={`hit-${Math.round(b.low * 100)}`}>{pct(b.hit_rate)}</td>
            <td aria-hidden="true" className="calibration-bar-cell">
              <div className="calibration-bar">
                <div className="calibration-fill" style={{ width: `${(b.hit_rate ?? 0) * 100}%` }} />
                <div className="calibration-mark" style={{ left: `${(b.mean_confidence ?? 0) * 100}%` }} />
              </div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Per engine: top-1, top-3, Brier score, and its calibration table. */
export function HypothesisAccuracy({ engines, days }: { engines: EngineAccuracyRead[]; days: number }) {
  const judged = engines.filter((e) => e.incidents > 0);
  if (judged.length === 0) {
    return (
      <p className="muted">
        No incident resolved in the last {days} days with a confirmed hypothesis: confirm the right one on an incident
        to start measuring.
      </p>
    );
  }
  return (
    <>
      {judged.map((e) => (
        <div key={e.engine} className="accuracy-engine">
          <h3>
            {e.engine} engine <span className="muted">· {e.incidents} incidents judged</span>
          </h3>
          <p className="metric-sub">
            top-1 <strong>{pct(e.top1)}</strong> · top-3 <strong>{pct(e.top3)}</strong> · Brier{" "}
            <strong>{e.brier === null ? "–" : e.brier.toFixed(3)}</strong> (lower is better)
          </p>
          <CalibrationTable engine={e} />
        </div>
      ))}
    </>
  );
}
