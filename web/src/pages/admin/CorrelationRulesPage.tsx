// Correlation rules (/api/v1/integrations/correlation-rules): alerts of different groups or sources
// sharing the rule's labels within its window join one open incident. Admins list, create, edit and
// turn rules on or off, and preview a rule against the last day's alerts before saving it.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { CorrelationPreviewRead, CorrelationRuleCreate, CorrelationRuleRead, Page } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { QueryTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, PageHeader } from "../../components/ui";
import { dateTime } from "../../lib/format";
import { atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";
import { AdminOnly } from "./PeoplePage";

const BASE = "/api/v1/integrations/correlation-rules";
const SOURCES = ["alertmanager", "pagerduty", "json"] as const;
type Source = (typeof SOURCES)[number];
const SOURCE_NAMES: Record<Source, string> = {
  alertmanager: "Alertmanager / Grafana",
  pagerduty: "Events v2",
  json: "JSON sources",
};
const LABEL = /^[A-Za-z_][A-Za-z0-9_.:/-]*$/;

/** Label names as typed (comma- or space-separated), each once; the first one that is not a name. */
export function parseLabels(text: string): { labels: string[]; bad: string | null } {
  const labels: string[] = [];
  for (const name of text.split(/[\s,]+/).filter(Boolean)) {
    if (!LABEL.test(name)) return { labels, bad: name };
    if (!labels.includes(name)) labels.push(name);
  }
  return { labels, bad: null };
}

function RuleForm({
  editing,
  onSaved,
  onCancel,
}: {
  editing: CorrelationRuleRead | null;
  onSaved: () => void;
  onCancel: () => void;
}) {
  const { api } = useAuth();
  const [name, setName] = useState(editing?.name ?? "");
  const [labels, setLabels] = useState((editing?.labels ?? []).join(", "));
  const [windowMinutes, setWindowMinutes] = useState(String(editing?.window_minutes ?? 10));
  const [sources, setSources] = useState<Source[]>((editing?.sources ?? []) as Source[]);
  const [enabled, setEnabled] = useState(editing?.enabled ?? false);
  const [preview, setPreview] = useState<CorrelationPreviewRead | null>(null);
  const { busy, error, fieldErrors: errors, setFieldErrors, run } = useSubmit();

  const rule = (): CorrelationRuleCreate | null => {
    const found: Record<string, string> = {};
    const parsed = parseLabels(labels);
    const minutes = Number(windowMinutes);
    if (!name.trim()) found.name = "Name the rule.";
    if (parsed.bad) found.labels = `Not a label name: ${parsed.bad}`;
    else if (!parsed.labels.length) found.labels = "Name at least one label, e.g. service, cluster.";
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) found.window_minutes = "Whole minutes, 1 to 1440.";
    setFieldErrors(found);
    if (Object.keys(found).length) return null;
    return { name: name.trim(), labels: parsed.labels, window_minutes: minutes, sources, enabled };
  };

  const tryIt = async () => {
    const body = rule();
    if (!body) return;
    await run(async () => setPreview(await api.post<CorrelationPreviewRead>(`${BASE}/preview`, body)));
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const body = rule();
    if (!body) return;
    await run(async () => {
      if (editing) await api.patch(`${BASE}/${editing.id}`, body);
      else await api.post(BASE, body);
      onSaved();
    });
  };

  return (
    <form className="card form" onSubmit={submit} noValidate aria-label={editing ? "Edit rule" : "New rule"}>
      <h2>{editing ? `Edit “${editing.name}”` : "New correlation rule"}</h2>
      <Field label="Name" error={errors.name}>
        {(p) => <input {...p} value={name} maxLength={120} onChange={(e) => setName(e.target.value)} />}
      </Field>
      <div className="form-row">
        <Field label="Labels" error={errors.labels} hint="Alerts sharing every one of these, e.g. service, cluster">
          {(p) => <input {...p} value={labels} onChange={(e) => setLabels(e.target.value)} />}
        </Field>
        <Field label="Window (minutes)" error={errors.window_minutes} hint="Started within this long of each other">
          {(p) => (
            <input
              {...p}
              inputMode="numeric"
              value={windowMinutes}
              onChange={(e) => setWindowMinutes(e.target.value)}
            />
          )}
        </Field>
      </div>
      <fieldset className="chips">
        <legend>Sources (none ticked: all)</legend>
        {SOURCES.map((source) => (
          <label key={source} className={`chip ${sources.includes(source) ? "on" : ""}`}>
            <input
              type="checkbox"
              checked={sources.includes(source)}
              onChange={() =>
                setSources(sources.includes(source) ? sources.filter((s) => s !== source) : [...sources, source])
              }
            />
            {SOURCE_NAMES[source]}
          </label>
        ))}
        {errors.sources ? <div className="error-text">{errors.sources}</div> : null}
      </fieldset>
      <label className="inline-field">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> On
      </label>
      {error ? <ErrorBox error={error} /> : null}
      {preview ? <PreviewResult preview={preview} /> : null}
      <div className="form-actions">
        <button type="button" className="btn" onClick={() => void tryIt()} disabled={busy}>
          Preview on the last day
        </button>
        {editing ? (
          <button type="button" className="btn" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {editing ? "Save rule" : "Create rule"}
        </button>
      </div>
    </form>
  );
}

function PreviewResult({ preview }: { preview: CorrelationPreviewRead }) {
  return (
    <section className="preview" aria-label="Preview" data-testid="correlation-preview">
      <p>
        {preview.alerts_considered} firing alerts since {dateTime(preview.since)}
        {preview.truncated ? " (the newest only)" : ""}: {preview.incidents_before} incidents, {preview.incidents_after}{" "}
        with this rule.
      </p>
      {preview.clusters.length === 0 ? (
        <p className="muted">Nothing would have been grouped.</p>
      ) : (
        <ul>
          {preview.clusters.map((cluster) => (
            <li key={`${Object.values(cluster.labels).join("/")}-${cluster.alerts[0]?.delivery_id}`}>
              <strong className="mono">
                {Object.entries(cluster.labels)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(", ")}
              </strong>
              : {cluster.alerts.length} alerts of {cluster.groups} groups ({cluster.incident_ids.length} incidents) —{" "}
              {[...new Set(cluster.alerts.map((a) => a.alertname))].join(", ")}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function RulesAdmin() {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<CorrelationRuleRead | null>(null);
  const acting = useSubmit();
  const rules = useQuery({
    queryKey: ["correlation-rules", "list"],
    queryFn: ({ signal }) => api.get<Page<CorrelationRuleRead>>(BASE, { limit: 200 }, signal),
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["correlation-rules", "list"] });
  const items = rules.data?.items ?? [];
  const act = (work: () => Promise<unknown>) => void acting.run(() => work().then(refresh));

  return (
    <>
      <RuleForm
        key={editing?.id ?? "new"}
        editing={editing}
        onSaved={() => {
          setEditing(null);
          void refresh();
        }}
        onCancel={() => setEditing(null)}
      />
      {acting.error ? <ErrorBox error={acting.error} /> : null}
      <section className="card table-card" aria-label="Correlation rules">
        <div className="card-head padded">
          <h2>Rules</h2>
          <span className="muted small">Tried oldest first; the first that finds an open incident decides.</span>
        </div>
        <QueryTable
          query={rules}
          rows={items}
          loading="Loading rules"
          empty={<Empty title="No correlation rules.">Every alert group opens its own incident.</Empty>}
          testId="correlation-rules"
          rowKey={(r) => r.id}
          columns={[
            { header: "Rule", cell: (r) => <strong>{r.name}</strong> },
            { header: "Labels", className: "mono small", cell: (r) => r.labels.join(", ") },
            { header: "Window", cell: (r) => `${r.window_minutes} min` },
            {
              header: "Sources",
              cell: (r) =>
                r.sources?.length ? r.sources.map((s) => SOURCE_NAMES[s as Source] ?? s).join(", ") : "all",
            },
            {
              header: "State",
              cell: (r) => (
                <span className={`badge ${r.enabled ? "silence-active" : "silence-expired"}`}>
                  {r.enabled ? "on" : "off"}
                </span>
              ),
            },
          ]}
          actions={(r) => (
            <>
              <button
                type="button"
                className="btn btn-small"
                onClick={() => act(() => api.patch(`${BASE}/${r.id}`, { enabled: !r.enabled }))}
              >
                {r.enabled ? "Turn off" : "Turn on"}
              </button>
              <button type="button" className="btn btn-small" onClick={() => setEditing(r)}>
                Edit
              </button>
              <button
                type="button"
                className="btn btn-small btn-danger"
                onClick={() => {
                  if (!window.confirm(`Delete “${r.name}”?`)) return;
                  act(() => api.delete(`${BASE}/${r.id}`));
                }}
              >
                Delete
              </button>
            </>
          )}
        />
      </section>
    </>
  );
}

export function CorrelationRulesPage() {
  const { role } = useAuth();
  return (
    <>
      <PageHeader title="Correlation rules" kicker="Admin" />
      {atLeast(role, "admin") ? <RulesAdmin /> : <AdminOnly />}
    </>
  );
}
