import { Link } from "react-router";
import { useHypothesisMetrics, useIncidents, useMetrics } from "../api/hooks";
import { SEVERITIES, STATES, type DurationStats, type IncidentMetricsRead } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { HypothesisAccuracy } from "../components/Calibration";
import { BarList, fillDays, IncidentsChart } from "../components/Chart";
import { Ticker } from "../components/Ticker";
import { Empty, ErrorBox, Loading, PageHeader, SeverityBadge, StateBadge } from "../components/ui";
import { duration, relativeTime } from "../lib/format";
import { atLeast, SEVERITY_LABEL, STATE_LABEL } from "../lib/incidents";

const WINDOW_DAYS = 30;
const ACCURACY_DAYS = 90;
const CHART_DAYS = 14;
const OPEN_STATES = ["detected", "acknowledged", "investigating"];

function openFigures(m: IncidentMetricsRead) {
  if (m.open) return { ...m.open, windowed: false };
  // An older gateway: what is open among the incidents of the window.
  const by_state = Object.fromEntries(OPEN_STATES.map((s) => [s, m.by_state[s] ?? 0]));
  return {
    total: Object.values(by_state).reduce((a, b) => a + b, 0),
    by_state,
    by_severity: m.by_severity,
    windowed: true,
  };
}

function Timing({ title, stats }: { title: string; stats: DurationStats }) {
  return (
    <div className="card metric">
      <div className="metric-title">{title}</div>
      <div className="metric-value">{duration(stats.p50_seconds)}</div>
      <div className="metric-sub">
        median · mean {duration(stats.mean_seconds)} · p90 {duration(stats.p90_seconds)}
        <br />
        over {stats.count} incident{stats.count === 1 ? "" : "s"}
      </div>
    </div>
  );
}

export function DashboardPage() {
  const { session, role } = useAuth();
  const metrics = useMetrics(WINDOW_DAYS);
  const open = useIncidents({ state: OPEN_STATES, limit: 6 });
  const accuracy = useHypothesisMetrics(ACCURACY_DAYS);

  return (
    <>
      <PageHeader title="Dashboard" kicker={session?.tenant.name}>
        {atLeast(role, "responder") ? (
          <Link to="/incidents/new" className="btn btn-primary">
            New incident <kbd>N</kbd>
          </Link>
        ) : null}
      </PageHeader>

      {metrics.isPending ? (
        <Loading what="Loading figures" />
      ) : metrics.isError ? (
        <ErrorBox error={metrics.error} retry={() => void metrics.refetch()} />
      ) : (
        (() => {
          const m = metrics.data;
          const o = openFigures(m);
          const perDay = m.created_per_day ? fillDays(m.created_per_day, CHART_DAYS) : null;
          return (
            <>
              <section className="grid metrics-grid" aria-label="Key figures">
                <div className="card metric metric-open">
                  <div className="metric-title">Open incidents</div>
                  <div className="metric-value" data-testid="open-total">
                    {o.total}
                  </div>
                  <div className="metric-sub">
                    {m.total} opened in the last {WINDOW_DAYS} days
                  </div>
                </div>
                <Timing title="Time to acknowledge" stats={m.time_to_acknowledge} />
                <Timing title="Time to resolve" stats={m.time_to_resolve} />
              </section>
              <section className="grid two-col">
                <div className="card">
                  <h2>Open by severity{o.windowed ? ` (last ${WINDOW_DAYS} days)` : ""}</h2>
                  <BarList
                    label="severity"
                    items={SEVERITIES.map((s) => ({ key: s, label: SEVERITY_LABEL[s], count: o.by_severity[s] ?? 0 }))}
                    classFor={(k) => `sev-${k}`}
                  />
                </div>
                <div className="card">
                  <h2>Open by state</h2>
                  <BarList
                    label="state"
                    items={STATES.filter((s) => s !== "resolved").map((s) => ({
                      key: s,
                      label: STATE_LABEL[s],
                      count: o.by_state[s] ?? 0,
                    }))}
                    classFor={(k) => `state-${k}`}
                  />
                </div>
              </section>
              {perDay ? (
                <section className="card">
                  <h2>Incidents opened, last {CHART_DAYS} days</h2>
                  <IncidentsChart data={perDay} label="Incidents opened per day" />
                </section>
              ) : null}
            </>
          );
        })()
      )}

      <section className="card" aria-label="Hypothesis accuracy">
        <h2>Hypotheses: accuracy and calibration, last {ACCURACY_DAYS} days</h2>
        {accuracy.isPending ? (
          <Loading what="Loading accuracy" />
        ) : accuracy.isError ? (
          <ErrorBox error={accuracy.error} retry={() => void accuracy.refetch()} />
        ) : (
          <HypothesisAccuracy engines={accuracy.data.engines} days={ACCURACY_DAYS} />
        )}
      </section>

      <section className="grid two-col">
        <div className="card">
          <div className="card-head">
            <h2>Needs attention</h2>
            <Link to="/incidents?state=detected,acknowledged,investigating">All open</Link>
          </div>
          {open.isPending ? (
            <Loading what="Loading incidents" />
          ) : open.isError ? (
            <ErrorBox error={open.error} retry={() => void open.refetch()} />
          ) : open.data.items.length === 0 ? (
            <Empty title="All clear">No open incidents.</Empty>
          ) : (
            <ul className="mini-list">
              {open.data.items.map((incident) => (
                <li key={incident.id}>
                  <Link to={`/incidents/${incident.id}`}>
                    <span className="mono">{incident.key}</span> {incident.title}
                  </Link>
                  <span className="mini-meta">
                    <SeverityBadge severity={incident.severity} />
                    <StateBadge state={incident.state} />
                    <span className="muted">{relativeTime(incident.created_at)}</span>
                  </span>
                </li>
              ))}
            </ul>
          )}
        </div>
        <div className="card">
          <h2>Live activity</h2>
          <Ticker />
        </div>
      </section>
    </>
  );
}
