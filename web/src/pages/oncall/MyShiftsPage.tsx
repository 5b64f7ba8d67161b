// "My on-call": the signed-in person's next shifts in every schedule (each schedule's final shifts
// from the API, kept where they are the person's), their secret calendar address, and the contact
// methods they are paged by.
import { useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState, type FormEvent } from "react";
import { Link } from "react-router";
import type {
  CalendarFeedRead,
  ChannelKind,
  ContactMethodRead,
  ContactMethodSecretRead,
  ShiftPage,
} from "../../api/types";
import { CHANNEL_KINDS } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { DataTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, Loading, PageHeader, SecretOnce } from "../../components/ui";
import { dateTime, relativeTime } from "../../lib/format";
import { atLeast } from "../../lib/incidents";
import { errorsByPath, shiftsOf, timelineWindow } from "../../lib/oncall";
import { useSubmit } from "../../lib/useSubmit";
import { useSchedules } from "./SchedulesPage";

// Per schedule: its next shifts from now; the person's are kept (a fast rotation may hide later ones).
const SHIFTS_PER_SCHEDULE = 100;

function MyShifts() {
  const { api, session } = useAuth();
  const schedules = useSchedules();
  const after = useMemo(() => timelineWindow(new Date(), 0).start.toISOString(), []);
  const items = schedules.data?.items ?? [];
  const pages = useQueries({
    queries: items.map((s) => ({
      queryKey: ["schedules", s.id, "shifts", after],
      queryFn: ({ signal }: { signal: AbortSignal }) =>
        api.get<ShiftPage>(`/api/v1/schedules/${s.id}/shifts`, { after, count: SHIFTS_PER_SCHEDULE }, signal),
    })),
  });
  if (schedules.isPending || pages.some((p) => p.isPending)) return <Loading what="Loading your shifts" />;
  if (schedules.isError) return <ErrorBox error={schedules.error} retry={() => void schedules.refetch()} />;
  const failed = pages.find((p) => p.isError);
  if (failed) return <ErrorBox error={failed.error} retry={() => void failed.refetch()} />;
  const mine = shiftsOf(
    session?.user.id ?? "",
    items.map((s, i) => ({ schedule: s, shifts: pages[i].data?.items ?? [] })),
  ).filter((shift) => new Date(shift.end).getTime() > Date.now());
  if (!mine.length) return <Empty title="No shifts coming up.">You are on call in no schedule soon.</Empty>;
  return (
    <DataTable
      rows={mine}
      testId="my-shifts"
      rowKey={(shift) => `${shift.schedule.id}-${shift.start}`}
      columns={[
        {
          header: "Schedule",
          cell: (shift) => <Link to={`/on-call/schedules/${shift.schedule.id}`}>{shift.schedule.name}</Link>,
        },
        {
          header: "From",
          cell: (shift) => (
            <>
              {dateTime(shift.start)}
              {new Date(shift.start).getTime() <= Date.now() ? <span className="badge">now</span> : null}
            </>
          ),
        },
        { header: "Until", cell: (shift) => dateTime(shift.end) },
        { header: "Why", cell: (shift) => (shift.override_id ? "override" : `layer ${(shift.layer ?? 0) + 1}`) },
      ]}
    />
  );
}

function CalendarFeed() {
  const { api } = useAuth();
  const [feed, setFeed] = useState<CalendarFeedRead | null>(null);
  const { busy, error, run } = useSubmit();
  const issue = () => run(async () => setFeed(await api.post<CalendarFeedRead>("/api/v1/calendar-feed")));
  return (
    <section className="card" aria-label="Calendar feed">
      <h2>Calendar feed</h2>
      <p className="muted small">
        A secret address of your shifts (iCalendar) to subscribe to in your calendar. It is shown once; making a new one
        stops the old address working.
      </p>
      {feed ? (
        <SecretOnce
          label="Your shifts' calendar address — shown once"
          value={`${window.location.origin}${feed.my_shifts_path}`}
        >
          <p className="small">
            A schedule's: <code>{`${window.location.origin}${feed.schedule_path_template}`}</code>
          </p>
        </SecretOnce>
      ) : null}
      {error ? <ErrorBox error={error} /> : null}
      <button
        type="button"
        className="btn"
        disabled={busy}
        onClick={() => {
          if (!feed || window.confirm("Make a new address? The one shown stops working.")) void issue();
        }}
      >
        {feed ? "Regenerate address" : "Show my calendar address"}
      </button>
    </section>
  );
}

const ADDRESS_HINT: Record<ChannelKind, string> = {
  email: "you@example.com",
  webhook: "https://sms-gateway.example/hook (a signed POST)",
  slack: "Your Slack member id, e.g. U012AB3CD",
};

/** The body is one of three shapes: its field errors are under the kind's name; the form shows two. */
function contactFields(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, msg] of Object.entries(errorsByPath(err))) {
    const field = path.split(".").pop() ?? path;
    if ((field === "address" || field === "delay_minutes") && !out[field]) out[field] = msg;
  }
  return out;
}

function ContactMethods() {
  const { api, role } = useAuth();
  const queryClient = useQueryClient();
  const methods = useQuery({
    queryKey: ["contact-methods"],
    queryFn: ({ signal }) => api.get<{ items: ContactMethodRead[] }>("/api/v1/contact-methods", undefined, signal),
  });
  const [kind, setKind] = useState<ChannelKind>("email");
  const [address, setAddress] = useState("");
  const [delay, setDelay] = useState("0");
  const { formError, fieldErrors: errors, setFieldErrors, run, reset } = useSubmit(contactFields);
  const removing = useSubmit();
  const [secret, setSecret] = useState<ContactMethodSecretRead | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["contact-methods"] });
  const responder = atLeast(role, "responder");

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    const minutes = Number(delay);
    if (!address.trim()) found.address = "Where should pages go?";
    if (delay.trim() === "" || !Number.isFinite(minutes) || minutes < 0) found.delay_minutes = "Minutes, 0 or more.";
    reset();
    removing.reset();
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const made = await api.post<ContactMethodSecretRead>("/api/v1/contact-methods", {
        kind,
        address: address.trim(),
        delay_minutes: minutes,
      });
      setSecret(made.secret ? made : null);
      setAddress("");
      void refresh();
    });
  };

  return (
    <section className="card" aria-label="Contact methods">
      <h2>How you are paged</h2>
      <p className="muted small">
        Each method is tried its delay after a page, e.g. Slack at once and email after 5 minutes, until someone
        acknowledges.
      </p>
      {methods.isPending ? (
        <Loading what="Loading contact methods" />
      ) : methods.isError ? (
        <ErrorBox error={methods.error} retry={() => void methods.refetch()} />
      ) : methods.data.items.length === 0 ? (
        <p className="muted">No contact methods: pages reach you nowhere.</p>
      ) : (
        <ul className="contact-methods" data-testid="contact-methods">
          {methods.data.items.map((m) => (
            <li key={m.id}>
              <span className="badge">{m.kind}</span> <span className="mono">{m.address}</span>{" "}
              <span className="muted small">
                {m.delay_minutes ? `after ${m.delay_minutes} min` : "at once"} · added {relativeTime(m.created_at)}
              </span>{" "}
              <button
                type="button"
                className="btn btn-small btn-danger"
                onClick={() => {
                  reset();
                  void removing.run(() => api.delete(`/api/v1/contact-methods/${m.id}`).then(refresh));
                }}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      {secret?.secret ? (
        <SecretOnce label="The webhook's signing secret — shown once" value={secret.secret}>
          <p className="small">Every page to {secret.address} is signed with it (SRE-Copilot-Signature).</p>
        </SecretOnce>
      ) : null}
      {responder ? (
        <form className="form" onSubmit={submit} noValidate aria-label="New contact method">
          <div className="form-row">
            <Field label="Channel">
              {(p) => (
                <select {...p} value={kind} onChange={(e) => setKind(e.target.value as ChannelKind)}>
                  {CHANNEL_KINDS.map((k) => (
                    <option key={k} value={k}>
                      {k}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Address" error={errors.address} hint={ADDRESS_HINT[kind]}>
              {(p) => <input {...p} value={address} onChange={(e) => setAddress(e.target.value)} />}
            </Field>
            <Field label="After (minutes)" error={errors.delay_minutes}>
              {(p) => <input {...p} inputMode="decimal" value={delay} onChange={(e) => setDelay(e.target.value)} />}
            </Field>
          </div>
          {formError || removing.error ? <ErrorBox error={formError ?? removing.error} /> : null}
          <div className="form-actions">
            <button type="submit" className="btn btn-primary">
              Add contact method
            </button>
          </div>
        </form>
      ) : null}
    </section>
  );
}

export function MyShiftsPage() {
  return (
    <>
      <PageHeader title="My shifts" kicker="On-call">
        <Link className="btn" to="/on-call/schedules">
          Schedules
        </Link>
      </PageHeader>
      <section className="card table-card" aria-label="My shifts">
        <MyShifts />
      </section>
      <CalendarFeed />
      <ContactMethods />
    </>
  );
}
