// Teams (/api/v1/teams): named groups an escalation step can page (their schedule's on-call, else
// every member). Every member reads them; admins make, change and delete them.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { usePeople, useUsers } from "../../api/hooks";
import type { Page, PolicyWarning, TeamRead, TeamWarning } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { QueryTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, PageHeader } from "../../components/ui";
import { atLeast } from "../../lib/incidents";
import { errorsByPath } from "../../lib/oncall";
import { useSubmit } from "../../lib/useSubmit";
import { useSchedules } from "./SchedulesPage";

const BASE = "/api/v1/teams";

export function useTeams() {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["teams"],
    queryFn: ({ signal }) => api.get<Page<TeamRead>>(BASE, { limit: 200 }, signal),
  });
}

/** What became untrue since a policy or team was saved, as the API says it: never hidden. */
export function Warnings({ warnings, label }: { warnings?: (PolicyWarning | TeamWarning)[]; label: string }) {
  if (!warnings?.length) return null;
  return (
    <div className="alert alert-warning" role="note" aria-label={label}>
      <ul className="small">
        {warnings.map((w, i) => (
          <li key={i}>
            <strong>{w.code === "deactivated" ? "Deactivated" : "Missing"}:</strong> {w.message}
          </li>
        ))}
      </ul>
    </div>
  );
}

function TeamForm({ team, onSaved, onCancel }: { team?: TeamRead; onSaved: () => void; onCancel?: () => void }) {
  const { api } = useAuth();
  const users = useUsers();
  const person = usePeople();
  const schedules = useSchedules();
  const [name, setName] = useState(team?.name ?? "");
  const [members, setMembers] = useState<string[]>(team ? [...team.members] : []);
  const [scheduleId, setScheduleId] = useState(team?.schedule_id ?? "");
  // A 404 or 409 names the unknown or deactivated members in its details, like a 422 names fields.
  const {
    busy,
    formError,
    fieldErrors: errors,
    setFieldErrors,
    run,
    reset,
  } = useSubmit((err) => errorsByPath(err, [404, 409, 422]));
  const candidates = (users.data ?? []).filter((u) => u.status !== "deactivated" && !members.includes(u.id));

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    if (!name.trim()) found.name = "Name the team.";
    reset();
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const body = { name: name.trim(), members, schedule_id: scheduleId || null };
      if (team) {
        await api.patch(`${BASE}/${team.id}`, body);
      } else {
        await api.post(BASE, body);
        setName("");
        setMembers([]);
        setScheduleId("");
      }
      onSaved();
    });
  };

  const title = team ? `Edit ${team.name}` : "New team";
  return (
    <form className="card form" onSubmit={submit} noValidate aria-label={title}>
      <h2>{title}</h2>
      <div className="form-row">
        <Field label="Name" error={errors.name}>
          {(p) => <input {...p} value={name} maxLength={120} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field
          label="Schedule"
          error={errors.schedule_id}
          hint="With one, a step naming the team pages its on-call; without, every member"
        >
          {(p) => (
            <select {...p} value={scheduleId} onChange={(e) => setScheduleId(e.target.value)}>
              <option value="">None: page every member</option>
              {(schedules.data?.items ?? []).map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <div className={`field ${errors.members ? "has-error" : ""}`}>
        <span className="field-label">Members</span>
        <ul className="participants" aria-label="Members">
          {members.map((id, k) => (
            <li key={id}>
              {person(id)}{" "}
              <button
                type="button"
                className="btn btn-small btn-ghost"
                aria-label={`Remove ${person(id)}`}
                onClick={() => setMembers(members.filter((_, n) => n !== k))}
              >
                ×
              </button>
              {errors[`members.${k}`] ? <div className="error-text">{errors[`members.${k}`]}</div> : null}
            </li>
          ))}
        </ul>
        <label className="inline-field">
          <span>Add member</span>
          <select
            aria-label="Add member"
            value=""
            onChange={(e) => e.target.value && setMembers([...members, e.target.value])}
          >
            <option value="">Choose someone…</option>
            {candidates.map((u) => (
              <option key={u.id} value={u.id}>
                {u.full_name}
              </option>
            ))}
          </select>
        </label>
        {errors.members ? <div className="error-text">{errors.members}</div> : null}
      </div>
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        {onCancel ? (
          <button type="button" className="btn btn-ghost" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Saving…" : team ? "Save team" : "Create team"}
        </button>
      </div>
    </form>
  );
}

export function TeamsPage() {
  const { api, role } = useAuth();
  const queryClient = useQueryClient();
  const teams = useTeams();
  const schedules = useSchedules();
  const person = usePeople();
  const admin = atLeast(role, "admin");
  const [editing, setEditing] = useState<TeamRead | null>(null);
  const deleting = useSubmit();
  const saved = () => {
    // Policies' warnings follow from teams (a deleted team is a `missing` target).
    void queryClient.invalidateQueries({ queryKey: ["teams"] });
    void queryClient.invalidateQueries({ queryKey: ["policies"] });
  };
  const scheduleName = (id: string) => schedules.data?.items.find((s) => s.id === id)?.name ?? "a deleted schedule";
  const items = teams.data?.items ?? [];
  return (
    <>
      <PageHeader title="Teams" kicker="On-call" />
      {editing ? (
        <TeamForm
          key={editing.id}
          team={editing}
          onCancel={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            saved();
          }}
        />
      ) : null}
      <section className="card table-card" aria-label="Teams">
        {deleting.error ? <ErrorBox error={deleting.error} /> : null}
        <QueryTable
          query={teams}
          rows={items}
          loading="Loading teams"
          empty={
            <Empty title="No teams yet.">
              {admin ? "Create one below, then name it in a policy's step." : "An admin makes them."}
            </Empty>
          }
          testId="teams"
          rowKey={(t) => t.id}
          columns={[
            {
              header: "Team",
              cell: (t) => (
                <>
                  <strong>{t.name}</strong>
                  <Warnings warnings={t.warnings} label={`Warnings of ${t.name}`} />
                </>
              ),
            },
            {
              header: "Members",
              className: "small",
              cell: (t) => (t.members.length ? t.members.map((id) => person(id)).join(", ") : "nobody"),
            },
            {
              header: "Paged",
              className: "small",
              cell: (t) => (t.schedule_id ? `on call in ${scheduleName(t.schedule_id)}` : "every member"),
            },
          ]}
          actions={(t) =>
            admin ? (
              <>
                <button type="button" className="btn btn-small" onClick={() => setEditing(t)}>
                  Edit
                </button>
                <button
                  type="button"
                  className="btn btn-small btn-danger"
                  onClick={() => {
                    if (!window.confirm(`Delete the team “${t.name}”? Steps naming it will page nobody.`)) return;
                    void deleting.run(() => api.delete(`${BASE}/${t.id}`).then(saved));
                  }}
                >
                  Delete
                </button>
              </>
            ) : null
          }
        />
      </section>
      {admin ? <TeamForm onSaved={saved} /> : null}
    </>
  );
}
