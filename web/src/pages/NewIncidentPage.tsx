import { useState, type FormEvent, type KeyboardEvent } from "react";
import { Link, useNavigate } from "react-router";
import { ApiError } from "../api/client";
import { SEVERITIES, type IncidentRead } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ErrorBox, Field, PageHeader } from "../components/ui";
import { useDraft } from "../lib/drafts";
import { atLeast, SEVERITY_LABEL, validateIncident, type IncidentDraft } from "../lib/incidents";

const EMPTY: IncidentDraft = { title: "", description: "", service_name: "", severity: "" };

export function NewIncidentForm({ onCreated }: { onCreated: (incident: IncidentRead) => void }) {
  const { api } = useAuth();
  const [draft, setDraft, clearDraft] = useDraft<IncidentDraft>("new-incident", EMPTY);
  const [errors, setErrors] = useState<Partial<Record<keyof IncidentDraft, string>>>({});
  // Problems show after a first attempt to submit, then follow the typing (validating on blur
  // would move the submit button under the pointer between mousedown and click).
  const [attempted, setAttempted] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);

  const set = (name: keyof IncidentDraft, value: string) => {
    const next = { ...draft, [name]: value };
    setDraft(next);
    if (attempted) setErrors(validateIncident(next));
  };
  const shown = (name: keyof IncidentDraft) => (attempted ? errors[name] : undefined);

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    const found = validateIncident(draft);
    setErrors(found);
    setAttempted(true);
    const first = (["title", "service_name", "severity", "description"] as const).find((f) => found[f]);
    if (first) {
      document.querySelector<HTMLElement>(`[name="${first}"]`)?.focus();
      return;
    }
    setBusy(true);
    setFailure(null);
    try {
      const incident = await api.post<IncidentRead>("/api/v1/incidents", {
        title: draft.title.trim(),
        description: draft.description,
        service_name: draft.service_name.trim(),
        severity: draft.severity,
      });
      clearDraft();
      onCreated(incident);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) setErrors(err.fieldErrors());
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  const submitOnCtrlEnter = (e: KeyboardEvent) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void submit();
  };

  return (
    <form className="card form" onSubmit={submit} noValidate aria-label="New incident" onKeyDown={submitOnCtrlEnter}>
      <Field label="Title" error={shown("title")}>
        {(p) => (
          <input
            {...p}
            name="title"
            value={draft.title}
            maxLength={200}
            placeholder="What is happening, in a line"
            onChange={(e) => set("title", e.target.value)}
            autoFocus
          />
        )}
      </Field>
      <div className="form-row">
        <Field label="Service" error={shown("service_name")} hint="As your monitoring names it, e.g. payment-api">
          {(p) => (
            <input
              {...p}
              name="service_name"
              value={draft.service_name}
              maxLength={100}
              autoComplete="off"
              onChange={(e) => set("service_name", e.target.value)}
            />
          )}
        </Field>
        <Field label="Severity" error={shown("severity")}>
          {(p) => (
            <select {...p} name="severity" value={draft.severity} onChange={(e) => set("severity", e.target.value)}>
              <option value="">Choose…</option>
              {SEVERITIES.map((s) => (
                <option key={s} value={s}>
                  {SEVERITY_LABEL[s]}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <Field
        label="Description"
        error={shown("description")}
        hint="Symptoms, figures, what changed recently. The AI worker reads this."
      >
        {(p) => (
          <textarea
            {...p}
            name="description"
            rows={6}
            value={draft.description}
            onChange={(e) => set("description", e.target.value)}
          />
        )}
      </Field>
      {failure && !(failure instanceof ApiError && failure.status === 422) ? <ErrorBox error={failure} /> : null}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Opening…" : "Open incident"}
        </button>
        <span className="muted small">
          <kbd>Ctrl</kbd>+<kbd>Enter</kbd> submits
        </span>
        <button type="button" className="btn btn-ghost" onClick={clearDraft} disabled={busy}>
          Clear
        </button>
      </div>
    </form>
  );
}

export function NewIncidentPage() {
  const { role } = useAuth();
  const navigate = useNavigate();
  return (
    <>
      <PageHeader title="New incident" kicker={<Link to="/incidents">Incidents</Link>} />
      {atLeast(role, "responder") ? (
        <NewIncidentForm onCreated={(incident) => navigate(`/incidents/${incident.id}`)} />
      ) : (
        <ErrorBox title="Not allowed" error={new Error("Viewers can read incidents but not open them.")} />
      )}
    </>
  );
}
