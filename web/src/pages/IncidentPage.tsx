import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent, type KeyboardEvent } from "react";
import { Link, useParams } from "react-router";
import { ApiError } from "../api/client";
import { useHypotheses, useIncident, usePeople, useTimeline, useUsers } from "../api/hooks";
import type { IncidentRead, IncidentState, TimelineEntryRead } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { Hypotheses, type Verdict } from "../components/Hypotheses";
import { PostmortemSection } from "../components/Postmortem";
import { Timeline } from "../components/Timeline";
import { ErrorBox, Field, Loading, PageHeader, SeverityBadge, StateBadge } from "../components/ui";
import { fillPath, useCapabilities } from "../lib/capabilities";
import { useDraft } from "../lib/drafts";
import { dateTime, duration, relativeTime } from "../lib/format";
import { allowedMoves, atLeast, moveLabel } from "../lib/incidents";
import { pagingOf } from "../lib/oncall";

export function StateButtons({
  state,
  onMove,
  busy,
}: {
  state: IncidentState;
  onMove: (to: IncidentState) => void;
  busy: IncidentState | null;
}) {
  return (
    <div className="state-buttons" role="group" aria-label="Change state">
      {allowedMoves(state).map((to) => (
        <button
          key={to}
          type="button"
          className={`btn btn-state to-${to}`}
          disabled={busy !== null}
          onClick={() => onMove(to)}
          data-testid={`move-${to}`}
        >
          {busy === to ? "Moving…" : moveLabel(state, to)}
        </button>
      ))}
    </div>
  );
}

function Lifecycle({ incident, canAct }: { incident: IncidentRead; canAct: boolean }) {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const capabilities = useCapabilities();
  const [draft, setDraft, clearDraft] = useDraft(`move-${incident.id}`, { note: "", root_cause: "" });
  const [busy, setBusy] = useState<IncidentState | null>(null);
  const [error, setError] = useState<unknown>(null);

  const move = async (to: IncidentState) => {
    setBusy(to);
    setError(null);
    try {
      const body: Record<string, string> = { to, note: draft.note.trim() };
      if (to === "resolved" && capabilities.rootCause && draft.root_cause.trim())
        body.root_cause = draft.root_cause.trim();
      const updated = await api.post<IncidentRead>(`/api/v1/incidents/${incident.id}/transitions`, body);
      queryClient.setQueryData(["incident", incident.id], updated);
      clearDraft();
      void queryClient.invalidateQueries({ queryKey: ["timeline", incident.id] });
      void queryClient.invalidateQueries({ queryKey: ["incidents"] });
    } catch (err) {
      setError(err);
      if (err instanceof ApiError && err.status === 409) {
        // Someone else moved it first: show where it is now.
        void queryClient.invalidateQueries({ queryKey: ["incident", incident.id] });
      }
    } finally {
      setBusy(null);
    }
  };

  if (!canAct) return null;
  return (
    <section className="card" aria-labelledby="lifecycle-heading">
      <h2 id="lifecycle-heading">Move this incident</h2>
      <Field label="Note for the change (optional)">
        {(p) => (
          <input
            {...p}
            value={draft.note}
            maxLength={5000}
            placeholder="e.g. rolled back the 10:30 deploy"
            onChange={(e) => setDraft({ ...draft, note: e.target.value })}
          />
        )}
      </Field>
      {capabilities.rootCause && allowedMoves(incident.state).includes("resolved") ? (
        <Field label="Root cause (recorded when resolving)">
          {(p) => (
            <textarea
              {...p}
              rows={2}
              maxLength={2000}
              value={draft.root_cause}
              onChange={(e) => setDraft({ ...draft, root_cause: e.target.value })}
            />
          )}
        </Field>
      ) : null}
      <StateButtons state={incident.state} onMove={(to) => void move(to)} busy={busy} />
      {error ? (
        <ErrorBox
          error={error}
          title={error instanceof ApiError && error.status === 409 ? "That move is no longer allowed" : undefined}
        />
      ) : null}
    </section>
  );
}

function NoteForm({ incidentId }: { incidentId: string }) {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const [draft, setDraft, clearDraft] = useDraft(`note-${incidentId}`, { body: "" });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    if (!draft.body.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await api.post(`/api/v1/incidents/${incidentId}/notes`, { body: draft.body.trim() });
      clearDraft();
      void queryClient.invalidateQueries({ queryKey: ["timeline", incidentId] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void submit();
  };
  return (
    <form onSubmit={submit} className="note-form" aria-label="New note">
      <Field
        label="Add a note"
        hint={
          <>
            <kbd>Ctrl</kbd>+<kbd>Enter</kbd> to post
          </>
        }
      >
        {(p) => (
          <textarea
            {...p}
            rows={3}
            maxLength={5000}
            value={draft.body}
            placeholder="What you tried, what you saw"
            onChange={(e) => setDraft({ body: e.target.value })}
            onKeyDown={onKey}
          />
        )}
      </Field>
      {error ? <ErrorBox error={error} /> : null}
      <button type="submit" className="btn" disabled={busy || !draft.body.trim()}>
        {busy ? "Posting…" : "Post note"}
      </button>
    </form>
  );
}

function Assignee({ incident, canAct }: { incident: IncidentRead; canAct: boolean }) {
  const { api, session } = useAuth();
  const queryClient = useQueryClient();
  const users = useUsers();
  const person = usePeople();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const assign = async (assigneeId: string | null) => {
    setBusy(true);
    setError(null);
    try {
      const updated = await api.patch<IncidentRead>(`/api/v1/incidents/${incident.id}`, {
        assignee_id: assigneeId,
        expected_version: incident.version,
      });
      queryClient.setQueryData(["incident", incident.id], updated);
      void queryClient.invalidateQueries({ queryKey: ["timeline", incident.id] });
    } catch (err) {
      setError(err);
      void queryClient.invalidateQueries({ queryKey: ["incident", incident.id] });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="assignee">
      {users.data && canAct ? (
        <>
          <label htmlFor="assignee-select" className="sr-only">
            Assignee
          </label>
          <select
            id="assignee-select"
            value={incident.assignee_id ?? ""}
            disabled={busy}
            onChange={(e) => void assign(e.target.value || null)}
          >
            <option value="">Unassigned</option>
            {users.data
              .filter((u) => u.status === "active" && u.role !== "viewer")
              .map((u) => (
                <option key={u.id} value={u.id}>
                  {u.full_name}
                </option>
              ))}
          </select>
        </>
      ) : (
        <span>{person(incident.assignee_id)}</span>
      )}
      {canAct && !users.data && incident.assignee_id !== session?.user.id ? (
        <button
          type="button"
          className="btn btn-small"
          disabled={busy}
          onClick={() => void assign(session?.user.id ?? null)}
        >
          Assign to me
        </button>
      ) : null}
      {error ? <ErrorBox error={error} /> : null}
    </div>
  );
}

function HypothesesSection({ incidentId, canAct }: { incidentId: string; canAct: boolean }) {
  const { api } = useAuth();
  const capabilities = useCapabilities();
  const queryClient = useQueryClient();
  const hypotheses = useHypotheses(incidentId);
  const [verdicts, setVerdicts] = useState<Record<string, Verdict>>({});
  const [error, setError] = useState<unknown>(null);
  const generation = hypotheses.data?.generation ?? 1;

  const onFeedback =
    capabilities.feedback && canAct
      ? async (rank: number, verdict: Verdict) => {
          setError(null);
          const template = capabilities.feedback!;
          const rankInPath = (template.match(/\{[^}]+\}/g) ?? []).length > 1;
          const fields = capabilities.feedbackFields;
          const candidate: Record<string, unknown> = { verdict, rank, generation };
          const body = Object.fromEntries(
            Object.entries(candidate).filter(
              ([k]) => (fields.length ? fields.includes(k) : k !== "generation") && !(rankInPath && k === "rank"),
            ),
          );
          try {
            await api.post(rankInPath ? fillPath(template, incidentId, rank) : fillPath(template, incidentId), body);
            setVerdicts({ ...verdicts, [`${generation}:${rank}`]: verdict });
            void queryClient.invalidateQueries({ queryKey: ["timeline", incidentId] });
          } catch (err) {
            setError(err);
          }
        }
      : undefined;

  const onRegenerate =
    capabilities.regenerate && canAct
      ? async () => {
          setError(null);
          try {
            await api.post(fillPath(capabilities.regenerate!, incidentId), {});
          } catch (err) {
            setError(err);
          }
        }
      : undefined;

  const feedback = Object.fromEntries(
    Object.entries(verdicts)
      .filter(([key]) => key.startsWith(`${generation}:`))
      .map(([key, v]) => [Number(key.split(":")[1]), v]),
  );

  return (
    <section className="card" aria-labelledby="hypotheses-heading">
      <h2 id="hypotheses-heading">AI hypotheses</h2>
      {hypotheses.isPending ? (
        <Loading what="Loading hypotheses" />
      ) : hypotheses.isError ? (
        <ErrorBox error={hypotheses.error} retry={() => void hypotheses.refetch()} />
      ) : (
        <Hypotheses data={hypotheses.data} feedback={feedback} onFeedback={onFeedback} onRegenerate={onRegenerate} />
      )}
      {error ? <ErrorBox error={error} /> : null}
    </section>
  );
}

/** Who the incident's escalation paged, through what, and how it ended (from its timeline). */
function PagingSection({
  entries,
  person,
}: {
  entries: TimelineEntryRead[];
  person: (id: string | null | undefined) => string;
}) {
  const paging = pagingOf(entries);
  if (!paging) return null;
  return (
    <section className="card" aria-labelledby="paging-heading" data-testid="paging">
      <h2 id="paging-heading">Paging</h2>
      <p className="small">
        <strong>{paging.policyName}</strong>:{" "}
        {paging.status === "running"
          ? `running${paging.step ? `, step ${paging.step} of round ${paging.round}` : ""}`
          : paging.status === "acknowledged"
            ? `acknowledged${paging.acknowledgedBy ? ` by ${person(paging.acknowledgedBy)}` : ""}`
            : paging.status === "exhausted"
              ? "went through every step with nobody acknowledging"
              : paging.status}
      </p>
      {paging.notifications.length ? (
        <ul className="small">
          {paging.notifications.map((n, k) => (
            <li key={k}>
              {person(n.userId)} by {n.channel}: {n.delivered ? "delivered" : `failed${n.error ? ` (${n.error})` : ""}`}
            </li>
          ))}
        </ul>
      ) : paging.paged.length ? (
        <p className="small muted">Paged: {paging.paged.map(person).join(", ")}</p>
      ) : null}
    </section>
  );
}

export function IncidentPage() {
  const { id = "" } = useParams();
  const { role } = useAuth();
  const incident = useIncident(id);
  const timeline = useTimeline(id);
  const person = usePeople();
  const canAct = atLeast(role, "responder");

  if (incident.isPending) return <Loading what="Loading incident" />;
  if (incident.isError) {
    return (
      <>
        <PageHeader title="Incident" kicker={<Link to="/incidents">Incidents</Link>} />
        <ErrorBox
          error={incident.error}
          retry={
            incident.error instanceof ApiError && incident.error.status === 404
              ? undefined
              : () => void incident.refetch()
          }
        />
      </>
    );
  }
  const i = incident.data;
  const now = Date.now();
  const openFor = (i.resolved_at ? new Date(i.resolved_at).getTime() : now) - new Date(i.created_at).getTime();

  return (
    <>
      <PageHeader
        kicker={
          <>
            <Link to="/incidents">Incidents</Link> / <span className="mono">{i.key}</span>
          </>
        }
        title={i.title}
      >
        <SeverityBadge severity={i.severity} />
        <StateBadge state={i.state} />
      </PageHeader>

      <div className="incident-layout">
        <div className="incident-main">
          <section className="card">
            <dl className="facts">
              <div>
                <dt>Service</dt>
                <dd className="mono">{i.service_name}</dd>
              </div>
              <div>
                <dt>Opened</dt>
                <dd>
                  <time dateTime={i.created_at} title={dateTime(i.created_at)}>
                    {relativeTime(i.created_at)}
                  </time>{" "}
                  by {person(i.created_by)}
                </dd>
              </div>
              <div>
                <dt>Acknowledged</dt>
                <dd>{i.acknowledged_at ? dateTime(i.acknowledged_at) : "—"}</dd>
              </div>
              <div>
                <dt>Resolved</dt>
                <dd>{i.resolved_at ? dateTime(i.resolved_at) : "—"}</dd>
              </div>
              <div>
                <dt>{i.resolved_at ? "Lasted" : "Open for"}</dt>
                <dd>{duration(openFor / 1000)}</dd>
              </div>
              <div>
                <dt>Assignee</dt>
                <dd>
                  <Assignee incident={i} canAct={canAct} />
                </dd>
              </div>
            </dl>
            {i.description ? <p className="description">{i.description}</p> : <p className="muted">No description.</p>}
            {i.related_incident_id ? (
              <p className="small">
                Follows <Link to={`/incidents/${i.related_incident_id}`}>an earlier incident</Link> (its alert fired
                again after it was resolved).
              </p>
            ) : null}
            {i.root_cause ? (
              <p className="root-cause">
                <strong>Root cause:</strong> {i.root_cause}
              </p>
            ) : null}
          </section>

          <HypothesesSection incidentId={i.id} canAct={canAct} />
          <PostmortemSection incidentId={i.id} canAct={canAct} />
        </div>

        <aside className="incident-side">
          <Lifecycle incident={i} canAct={canAct} />
          {timeline.data ? <PagingSection entries={timeline.data.items} person={person} /> : null}
          <section className="card" aria-labelledby="timeline-heading">
            <h2 id="timeline-heading">Timeline</h2>
            {timeline.isPending ? (
              <Loading what="Loading timeline" />
            ) : timeline.isError ? (
              <ErrorBox error={timeline.error} retry={() => void timeline.refetch()} />
            ) : (
              <Timeline items={timeline.data.items} person={person} />
            )}
            {canAct ? <NoteForm incidentId={i.id} /> : null}
          </section>
        </aside>
      </div>
    </>
  );
}
