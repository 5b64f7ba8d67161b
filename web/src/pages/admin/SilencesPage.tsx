// Maintenance windows and silences (/api/v1/integrations/silences): what is on now and what comes
// next, a form to open one (responders and up), and ending one early.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { Page, SilenceCreate, SilenceRead } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { QueryTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, PageHeader } from "../../components/ui";
import { dateTime, relativeTime } from "../../lib/format";
import { atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";

const BASE = "/api/v1/integrations/silences";
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
type Weekday = (typeof WEEKDAYS)[number];
type Matcher = SilenceCreate["matchers"] extends (infer M)[] | undefined ? M : never;

/** `label=value`, `label!=value`, `label=~regex`, `label!~regex`, one per line. */
export function parseMatchers(text: string): { matchers: Matcher[]; bad: string | null } {
  const matchers: Matcher[] = [];
  for (const line of text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)) {
    const found = /^([A-Za-z_][A-Za-z0-9_.:/-]*)\s*(=~|!~|!=|=)\s*(.*)$/.exec(line);
    if (!found) return { matchers, bad: line };
    matchers.push({ label: found[1], op: found[2] as Matcher["op"], value: found[3] } as Matcher);
  }
  return { matchers, bad: null };
}

function SilenceForm({ onCreated }: { onCreated: () => void }) {
  const { api } = useAuth();
  const [name, setName] = useState("");
  const [services, setServices] = useState("");
  const [matchers, setMatchers] = useState("");
  const [startsAt, setStartsAt] = useState("");
  const [duration, setDuration] = useState("60");
  const [weekly, setWeekly] = useState(false);
  const [weekdays, setWeekdays] = useState<Weekday[]>([]);
  const [timezone, setTimezone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const { busy, error, fieldErrors: errors, setFieldErrors, run } = useSubmit();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    const serviceList = services
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const parsed = parseMatchers(matchers);
    const minutes = Number(duration);
    if (!name.trim()) found.name = "Say what the window is for.";
    if (parsed.bad) found.matchers = `Not a matcher: ${parsed.bad}`;
    if (!serviceList.length && !parsed.matchers.length) found.services = "Name a service or a matcher.";
    if (!startsAt || Number.isNaN(new Date(startsAt).getTime())) found.starts_at = "When does it start?";
    if (!Number.isInteger(minutes) || minutes < 1) found.duration_minutes = "Whole minutes, at least 1.";
    if (weekly && !weekdays.length) found.weekdays = "Pick at least one day.";
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    const body: SilenceCreate = {
      name: name.trim(),
      services: serviceList,
      matchers: parsed.matchers,
      starts_at: new Date(startsAt).toISOString(),
      duration_minutes: minutes,
      recurrence: weekly ? { weekdays, timezone, until: null } : null,
    };
    await run(async () => {
      await api.post(BASE, body);
      setName("");
      setServices("");
      setMatchers("");
      onCreated();
    });
  };

  return (
    <form className="card form" onSubmit={submit} noValidate aria-label="New silence">
      <h2>New maintenance window</h2>
      <Field label="Name" error={errors.name}>
        {(p) => <input {...p} value={name} maxLength={120} onChange={(e) => setName(e.target.value)} />}
      </Field>
      <div className="form-row">
        <Field label="Services" error={errors.services} hint="Comma-separated, e.g. checkout, billing">
          {(p) => <input {...p} value={services} onChange={(e) => setServices(e.target.value)} />}
        </Field>
        <Field label="Matchers" error={errors.matchers} hint="One per line: env=staging, instance=~db-.*">
          {(p) => <textarea {...p} rows={2} value={matchers} onChange={(e) => setMatchers(e.target.value)} />}
        </Field>
      </div>
      <div className="form-row">
        <Field label="Starts" error={errors.starts_at}>
          {(p) => <input {...p} type="datetime-local" value={startsAt} onChange={(e) => setStartsAt(e.target.value)} />}
        </Field>
        <Field label="Minutes" error={errors.duration_minutes}>
          {(p) => <input {...p} inputMode="numeric" value={duration} onChange={(e) => setDuration(e.target.value)} />}
        </Field>
      </div>
      <label className="inline-field">
        <input type="checkbox" checked={weekly} onChange={(e) => setWeekly(e.target.checked)} /> Every week
      </label>
      {weekly ? (
        <>
          <fieldset className="chips">
            <legend>Days</legend>
            {WEEKDAYS.map((day) => (
              <label key={day} className={`chip ${weekdays.includes(day) ? "on" : ""}`}>
                <input
                  type="checkbox"
                  checked={weekdays.includes(day)}
                  onChange={() =>
                    setWeekdays(weekdays.includes(day) ? weekdays.filter((d) => d !== day) : [...weekdays, day])
                  }
                />
                {day}
              </label>
            ))}
            {errors.weekdays ? <div className="error-text">{errors.weekdays}</div> : null}
          </fieldset>
          <Field label="Time zone">
            {(p) => <input {...p} value={timezone} onChange={(e) => setTimezone(e.target.value)} />}
          </Field>
        </>
      ) : null}
      {error ? <ErrorBox error={error} /> : null}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Creating…" : "Create window"}
        </button>
      </div>
    </form>
  );
}

function describe(s: SilenceRead): string {
  const what = [...(s.services ?? []), ...(s.matchers ?? []).map((m) => `${m.label}${m.op ?? "="}${m.value}`)];
  return what.join(", ");
}

export function SilencesPage() {
  const { api, role } = useAuth();
  const queryClient = useQueryClient();
  const [state, setState] = useState("current");
  const ending = useSubmit();
  const silences = useQuery({
    queryKey: ["silences", "list"],
    queryFn: ({ signal }) => api.get<Page<SilenceRead>>(BASE, { limit: 200 }, signal),
    refetchInterval: 30000,
  });
  const responder = atLeast(role, "responder");
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["silences", "list"] });
  const all = silences.data?.items ?? [];
  const items = state === "current" ? all.filter((s) => s.state !== "expired") : all.filter((s) => s.state === state);

  return (
    <>
      <PageHeader title="Maintenance windows" kicker="Integrations" />
      {responder ? <SilenceForm onCreated={() => void refresh()} /> : null}
      {ending.error ? <ErrorBox error={ending.error} /> : null}
      <section className="card table-card" aria-label="Silences">
        <div className="card-head padded">
          <h2>Windows</h2>
          <label className="inline-field">
            <span>Show</span>
            <select value={state} onChange={(e) => setState(e.target.value)}>
              <option value="current">Active and upcoming</option>
              <option value="active">Active</option>
              <option value="upcoming">Upcoming</option>
              <option value="expired">Expired</option>
            </select>
          </label>
        </div>
        <QueryTable
          query={silences}
          rows={items}
          loading="Loading windows"
          empty={<Empty title="No windows here.">Alerts they match are recorded but open no incident.</Empty>}
          testId="silences"
          rowKey={(s) => s.id}
          columns={[
            {
              header: "Window",
              cell: (s) => (
                <>
                  <strong>{s.name}</strong>
                  <div className="muted small">
                    {s.recurrence
                      ? `every ${s.recurrence.weekdays.join(", ")} (${s.recurrence.timezone ?? "UTC"}), ${s.duration_minutes} min`
                      : `${dateTime(s.starts_at)}, ${s.duration_minutes} min`}
                  </div>
                </>
              ),
            },
            { header: "Silences", className: "mono small", cell: describe },
            {
              header: "State",
              cell: (s) => (
                <>
                  <span className={`badge silence-${s.state}`}>{s.state}</span>
                  {s.next_change_at ? (
                    <div className="muted small">
                      {s.state === "active" ? "ends" : "starts"} {relativeTime(s.next_change_at)}
                    </div>
                  ) : null}
                </>
              ),
            },
          ]}
          actions={(s) =>
            responder && s.state !== "expired" ? (
              <button
                type="button"
                className="btn btn-small btn-danger"
                onClick={() => {
                  if (!window.confirm(`End “${s.name}” now?`)) return;
                  void ending.run(() => api.delete(`${BASE}/${s.id}`).then(refresh));
                }}
              >
                End now
              </button>
            ) : null
          }
        />
      </section>
    </>
  );
}
