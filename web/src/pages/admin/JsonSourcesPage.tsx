// Generic JSON sources (/api/v1/integrations/json-sources): a JMESPath mapping per source, tried on a
// pasted sample before it is saved; senders POST to /api/v1/integrations/json/{id} with a key.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { JsonMapping, JsonSourceRead, MappingPreviewRead, Page } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { QueryTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, PageHeader } from "../../components/ui";
import { atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";
import { AdminOnly } from "./PeoplePage";

const BASE = "/api/v1/integrations/json-sources";
const FIELDS = ["title", "severity", "dedup_key", "status", "service", "labels"] as const;
type MappingField = (typeof FIELDS)[number];
const HINTS: Record<MappingField, string> = {
  title: "Required, e.g. alert.name",
  severity: "critical/high/medium/low, P1-P5, error, warning…",
  dedup_key: "One open incident per value",
  status: "firing or resolved (ok, closed… read as resolved)",
  service: "e.g. labels.service",
  labels: "An object, e.g. {env: env, host: host}",
};

/** The mapping as the API takes it: empty optional fields left out. */
export function mappingOf(fields: Record<MappingField, string>): JsonMapping {
  const mapping: Record<string, string> = {};
  for (const name of FIELDS) if (fields[name].trim()) mapping[name] = fields[name].trim();
  return mapping as JsonMapping;
}

function SourceForm({ onSaved }: { onSaved: () => void }) {
  const { api } = useAuth();
  const [name, setName] = useState("");
  const [fields, setFields] = useState<Record<MappingField, string>>({
    title: "",
    severity: "",
    dedup_key: "",
    status: "",
    service: "",
    labels: "",
  });
  const [sample, setSample] = useState("");
  const [preview, setPreview] = useState<MappingPreviewRead | null>(null);
  // A mapping's problem names its field last in `loc` (["body", "mapping", "title"]), as fieldErrors reads it.
  const { formError, fieldErrors: errors, setFieldErrors, run, reset } = useSubmit();

  const tryIt = async () => {
    reset();
    let parsed: unknown;
    try {
      parsed = JSON.parse(sample || "null");
    } catch {
      setFieldErrors({ sample: "Not JSON." });
      return;
    }
    await run(async () =>
      setPreview(await api.post<MappingPreviewRead>(`${BASE}/preview`, { mapping: mappingOf(fields), sample: parsed })),
    );
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    if (!name.trim()) found.name = "Name it after the tool that sends.";
    if (!fields.title.trim()) found.title = "A title expression is required.";
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      await api.post(BASE, { name: name.trim(), mapping: mappingOf(fields) });
      setName("");
      setPreview(null);
      onSaved();
    });
  };

  return (
    <form className="card form" onSubmit={save} noValidate aria-label="New JSON source">
      <h2>New JSON source</h2>
      <Field label="Name" error={errors.name}>
        {(p) => <input {...p} value={name} maxLength={120} onChange={(e) => setName(e.target.value)} />}
      </Field>
      {FIELDS.map((field) => (
        <Field key={field} label={`Mapping: ${field}`} error={errors[field]} hint={HINTS[field]}>
          {(p) => (
            <input
              {...p}
              className="mono"
              value={fields[field]}
              maxLength={1000}
              onChange={(e) => setFields({ ...fields, [field]: e.target.value })}
            />
          )}
        </Field>
      ))}
      <Field label="Sample payload" error={errors.sample} hint="Paste a body the tool really sent">
        {(p) => (
          <textarea {...p} rows={6} className="mono" value={sample} onChange={(e) => setSample(e.target.value)} />
        )}
      </Field>
      {preview ? (
        <div className={`alert ${preview.problem ? "alert-error" : "alert-info"}`} data-testid="preview">
          {preview.problem ? (
            <span>{preview.problem}</span>
          ) : (
            <pre className="mono small">{JSON.stringify(preview.alert, null, 2)}</pre>
          )}
        </div>
      ) : null}
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        <button type="button" className="btn" onClick={() => void tryIt()}>
          Preview
        </button>{" "}
        <button type="submit" className="btn btn-primary">
          Save source
        </button>
      </div>
    </form>
  );
}

function JsonSourcesAdmin() {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const deleting = useSubmit();
  const sources = useQuery({
    queryKey: ["json-sources", "list"],
    queryFn: ({ signal }) => api.get<Page<JsonSourceRead>>(BASE, { limit: 200 }, signal),
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["json-sources", "list"] });
  const items = sources.data?.items ?? [];
  return (
    <>
      <SourceForm onSaved={() => void refresh()} />
      {deleting.error ? <ErrorBox error={deleting.error} /> : null}
      <section className="card table-card" aria-label="JSON sources">
        <QueryTable
          query={sources}
          rows={items}
          loading="Loading sources"
          empty={<Empty title="No JSON sources yet.">Map any tool's webhook to alerts, without code.</Empty>}
          testId="json-sources"
          rowKey={(s) => s.id}
          columns={[
            {
              header: "Source",
              cell: (s) => (
                <>
                  <strong>{s.name}</strong>
                  <div className="muted small mono">POST /api/v1/integrations/json/{s.id}</div>
                </>
              ),
            },
            {
              header: "Mapping",
              className: "mono small",
              cell: (s) =>
                Object.entries(s.mapping)
                  .filter(([, v]) => v)
                  .map(([k, v]) => `${k}: ${String(v)}`)
                  .join(" · "),
            },
          ]}
          actions={(s) => (
            <button
              type="button"
              className="btn btn-small btn-danger"
              onClick={() => {
                if (!window.confirm(`Delete “${s.name}”? Its senders will be refused.`)) return;
                void deleting.run(() => api.delete(`${BASE}/${s.id}`).then(refresh));
              }}
            >
              Delete
            </button>
          )}
        />
      </section>
    </>
  );
}

export function JsonSourcesPage() {
  const { role } = useAuth();
  return (
    <>
      <PageHeader title="JSON sources" kicker="Admin" />
      {atLeast(role, "admin") ? <JsonSourcesAdmin /> : <AdminOnly />}
    </>
  );
}
