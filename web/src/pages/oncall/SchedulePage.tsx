// One schedule: its next two weeks as the API computes them (layers, restrictions, then overrides),
// an override made from the timeline (pick a shift or a day, then a person and a range), its
// overrides, and (admins) editing or deleting it.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState, type FormEvent } from "react";
import { useNavigate, useParams } from "react-router";
import { usePeople, useUsers } from "../../api/hooks";
import type { OverrideRead, ScheduleRead, ShiftPage } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { DataTable } from "../../components/DataTable";
import { ErrorBox, Field, Loading, PageHeader } from "../../components/ui";
import { dateTime } from "../../lib/format";
import { atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";
import {
  dayTicks,
  describeRotation,
  errorsByPath,
  hueOf,
  placeShifts,
  timelineWindow,
  toLocalInput,
  truncated,
} from "../../lib/oncall";
import { ScheduleForm } from "./ScheduleForm";

const SHIFTS_ASKED = 100;

export interface Range {
  start: Date;
  end: Date;
}

function Timeline({
  shifts,
  start,
  end,
  onPick,
}: {
  shifts: ShiftPage["items"];
  start: Date;
  end: Date;
  onPick: (range: Range, userId?: string) => void;
}) {
  const person = usePeople();
  const segments = placeShifts(shifts, start, end);
  const ticks = dayTicks(start, end);
  return (
    <div className="oncall-timeline" data-testid="timeline">
      <div className="ot-days">
        {ticks.map(({ day, left }) => (
          <button
            type="button"
            key={day.toISOString()}
            className="ot-day"
            style={{ left: `${left}%`, width: `${100 / ticks.length}%` }}
            title="Override this day"
            onClick={() => onPick({ start: day, end: new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1) })}
          >
            {day.toLocaleDateString(undefined, { weekday: "short", day: "numeric" })}
          </button>
        ))}
      </div>
      <div className="ot-track">
        {segments.length === 0 ? (
          <span className="ot-empty muted small">Nobody on call in these two weeks.</span>
        ) : null}
        {segments.map(({ shift, left, width }) => {
          const who = person(shift.user_id);
          const label = `${who}, ${dateTime(shift.start)} to ${dateTime(shift.end)}${shift.override_id ? " (override)" : ""}`;
          return (
            <button
              type="button"
              key={`${shift.start}-${shift.user_id}`}
              className={`ot-shift ${shift.override_id ? "override" : ""}`}
              data-testid="shift"
              style={{ left: `${left}%`, width: `${width}%`, background: `hsl(${hueOf(shift.user_id)} 60% 45%)` }}
              title={label}
              aria-label={label}
              onClick={() => onPick({ start: new Date(shift.start), end: new Date(shift.end) })}
            >
              <span>{who}</span>
            </button>
          );
        })}
      </div>
    </div>
  );
}

function OverrideForm({
  schedule,
  range,
  onCreated,
}: {
  schedule: ScheduleRead;
  range: Range | null;
  onCreated: (o: OverrideRead) => void;
}) {
  const { api, role, session } = useAuth();
  const users = useUsers();
  const admin = atLeast(role, "admin");
  const me = session?.user.id ?? "";
  const [userId, setUserId] = useState(admin ? "" : me);
  const [start, setStart] = useState(range ? toLocalInput(range.start) : "");
  const [end, setEnd] = useState(range ? toLocalInput(range.end) : "");
  const { busy, formError, fieldErrors: errors, setFieldErrors, run, reset } = useSubmit(errorsByPath);
  const [seen, setSeen] = useState<Range | null>(range);
  // A new pick on the timeline fills the range in (the person chosen stays).
  if (range !== seen) {
    setSeen(range);
    if (range) {
      setStart(toLocalInput(range.start));
      setEnd(toLocalInput(range.end));
    }
  }
  const people = admin
    ? (users.data ?? []).filter((u) => u.status !== "deactivated").map((u) => ({ id: u.id, name: u.full_name }))
    : [{ id: me, name: `${session?.user.full_name ?? "You"} (you)` }];

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    const a = new Date(start);
    const b = new Date(end);
    if (!userId) found.user_id = "Who covers?";
    if (!start || Number.isNaN(a.getTime())) found.start = "From when?";
    if (!end || Number.isNaN(b.getTime())) found.end = "Until when?";
    else if (!found.start && b <= a) found.end = "It ends after it starts.";
    reset();
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const made = await api.post<OverrideRead>(`/api/v1/schedules/${schedule.id}/overrides`, {
        user_id: userId,
        start: a.toISOString(),
        end: b.toISOString(),
      });
      onCreated(made);
    });
  };

  return (
    <form className="card form" onSubmit={submit} noValidate aria-label="New override">
      <h2>Override</h2>
      <p className="muted small">
        Pick a shift or a day on the timeline, or type a range: whoever you choose is on call then, whatever the layers
        say. Where overrides overlap, the later one wins.
      </p>
      <div className="form-row">
        <Field label="Who covers" error={errors.user_id}>
          {(p) => (
            <select {...p} value={userId} onChange={(e) => setUserId(e.target.value)}>
              {admin ? <option value="">Choose someone…</option> : null}
              {people.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="From" error={errors.start}>
          {(p) => <input {...p} type="datetime-local" value={start} onChange={(e) => setStart(e.target.value)} />}
        </Field>
        <Field label="Until" error={errors.end}>
          {(p) => <input {...p} type="datetime-local" value={end} onChange={(e) => setEnd(e.target.value)} />}
        </Field>
      </div>
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Adding…" : "Add override"}
        </button>
      </div>
    </form>
  );
}

export function SchedulePage() {
  const { id = "" } = useParams();
  const { api, role, session } = useAuth();
  const person = usePeople();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [range, setRange] = useState<Range | null>(null);
  const [editing, setEditing] = useState(false);
  const acting = useSubmit();
  // The window is fixed when the page opens, so refetches ask for the same two weeks.
  const { start, end } = useMemo(() => timelineWindow(new Date()), []);
  const admin = atLeast(role, "admin");
  const responder = atLeast(role, "responder");
  const path = `/api/v1/schedules/${encodeURIComponent(id)}`;

  const schedule = useQuery({
    queryKey: ["schedules", id],
    queryFn: ({ signal }) => api.get<ScheduleRead>(path, undefined, signal),
  });
  const shifts = useQuery({
    queryKey: ["schedules", id, "shifts", start.toISOString()],
    queryFn: ({ signal }) =>
      api.get<ShiftPage>(`${path}/shifts`, { after: start.toISOString(), count: SHIFTS_ASKED }, signal),
    enabled: schedule.isSuccess,
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["schedules"] });

  if (schedule.isPending) return <Loading what="Loading the schedule" />;
  if (schedule.isError) return <ErrorBox error={schedule.error} retry={() => void schedule.refetch()} />;
  const s = schedule.data;
  const me = session?.user.id;
  const upcoming = s.overrides.filter((o) => new Date(o.end).getTime() > Date.now());

  return (
    <>
      <PageHeader title={s.name} kicker="On-call schedule">
        {admin && !editing ? (
          <>
            <button type="button" className="btn" onClick={() => setEditing(true)}>
              Edit schedule
            </button>
            <button
              type="button"
              className="btn btn-danger"
              onClick={() => {
                if (!window.confirm(`Delete the schedule “${s.name}”?`)) return;
                void acting.run(() =>
                  api.delete(path).then(() => {
                    void refresh();
                    navigate("/on-call/schedules");
                  }),
                );
              }}
            >
              Delete
            </button>
          </>
        ) : null}
      </PageHeader>
      {s.description ? <p className="muted">{s.description}</p> : null}
      {acting.error ? <ErrorBox error={acting.error} /> : null}
      {editing ? (
        <ScheduleForm
          schedule={s}
          onCancel={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            void refresh();
          }}
        />
      ) : null}
      <section className="card" aria-label="Next two weeks">
        <div className="card-head">
          <h2>Next two weeks</h2>
          <span className="muted small">
            {s.layers.map((l, i) => `${l.name || `Layer ${i + 1}`}: ${describeRotation(l)}`).join(" · ")}
          </span>
        </div>
        {shifts.isPending ? (
          <Loading what="Loading shifts" />
        ) : shifts.isError ? (
          <ErrorBox error={shifts.error} retry={() => void shifts.refetch()} />
        ) : (
          <>
            <Timeline shifts={shifts.data.items} start={start} end={end} onPick={(r) => setRange(r)} />
            {truncated(shifts.data.items, SHIFTS_ASKED, end) ? (
              <p className="muted small">The timeline shows the next {SHIFTS_ASKED} shifts only.</p>
            ) : null}
          </>
        )}
      </section>
      {responder ? (
        <OverrideForm
          schedule={s}
          range={range}
          onCreated={() => {
            setRange(null);
            void refresh();
          }}
        />
      ) : null}
      <section className="card table-card" aria-label="Overrides">
        <div className="card-head padded">
          <h2>Overrides</h2>
        </div>
        {upcoming.length === 0 ? (
          <p className="muted padded">None coming up.</p>
        ) : (
          <DataTable
            rows={upcoming}
            testId="overrides"
            rowKey={(o) => o.id}
            columns={[
              { header: "Who", cell: (o) => person(o.user_id) },
              { header: "From", cell: (o) => dateTime(o.start) },
              { header: "Until", cell: (o) => dateTime(o.end) },
            ]}
            actions={(o) =>
              admin || (responder && (o.user_id === me || o.created_by === me)) ? (
                <button
                  type="button"
                  className="btn btn-small btn-danger"
                  onClick={() => void acting.run(() => api.delete(`${path}/overrides/${o.id}`).then(refresh))}
                >
                  Remove
                </button>
              ) : null
            }
          />
        )}
      </section>
    </>
  );
}
