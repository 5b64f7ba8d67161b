// Outgoing webhooks (Slack, Teams, Mattermost, Discord, or generic signed JSON) and their delivery logs, through
// /api/v1/integrations/webhooks. The page lights up when /openapi.json lists those routes.
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import {
  WEBHOOK_EVENTS,
  type Page,
  type WebhookDeliveryRead,
  type WebhookEvent,
  type WebhookRead,
  type WebhookSecretRead,
} from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { QueryTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, PageHeader, SecretOnce } from "../../components/ui";
import { fillPath, useCapabilities } from "../../lib/capabilities";
import { dateTime, relativeTime } from "../../lib/format";
import { incidentKey } from "../../lib/incidentKeys";
import { atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";
import { AdminOnly } from "./PeoplePage";

const BASE = "/api/v1/integrations/webhooks";

type WebhookKind = WebhookRead["kind"];
// Each kind, as the form offers it, with where its URL comes from.
const KINDS: { kind: WebhookKind; label: string; placeholder: string }[] = [
  { kind: "generic", label: "Generic (signed JSON)", placeholder: "https://hooks.example.com/sre" },
  { kind: "slack", label: "Slack incoming webhook", placeholder: "https://hooks.slack.com/services/…" },
  {
    kind: "teams",
    label: "Microsoft Teams (Workflows webhook)",
    placeholder: "https://….logic.azure.com/workflows/…",
  },
  { kind: "mattermost", label: "Mattermost incoming webhook", placeholder: "https://chat.example.com/hooks/…" },
  { kind: "discord", label: "Discord webhook", placeholder: "https://discord.com/api/webhooks/…" },
];

function WebhookForm({ onCreated }: { onCreated: (webhook: WebhookSecretRead) => void }) {
  const { api } = useAuth();
  const [kind, setKind] = useState<WebhookKind>("generic");
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  // Slack only: the app's signing secret turns on the Acknowledge and Resolve buttons.
  const [signingSecret, setSigningSecret] = useState("");
  const [events, setEvents] = useState<WebhookEvent[]>([...WEBHOOK_EVENTS]);
  const { busy, formError, fieldErrors: errors, setFieldErrors, run } = useSubmit();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    if (!name.trim()) found.name = "Name it after where it goes.";
    if (!/^https?:\/\/[^\s]+$/i.test(url.trim())) found.url = "An http(s) URL.";
    if (!events.length) found.event_types = "Pick at least one event.";
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const created = await api.post<WebhookSecretRead>(BASE, {
        kind,
        name: name.trim(),
        url: url.trim(),
        event_types: events,
        ...(kind === "slack" && signingSecret.trim() ? { slack_signing_secret: signingSecret.trim() } : {}),
      });
      setName("");
      setUrl("");
      setSigningSecret("");
      onCreated(created);
    });
  };

  return (
    <form className="card form" onSubmit={submit} noValidate aria-label="New webhook">
      <h2>New webhook</h2>
      <div className="form-row">
        <Field label="Kind">
          {(p) => (
            <select {...p} value={kind} onChange={(e) => setKind(e.target.value as WebhookKind)}>
              {KINDS.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Name" error={errors.name}>
          {(p) => (
            <input
              {...p}
              value={name}
              maxLength={120}
              placeholder="e.g. #incidents"
              onChange={(e) => setName(e.target.value)}
            />
          )}
        </Field>
      </div>
      <Field label="URL" error={errors.url}>
        {(p) => (
          <input
            {...p}
            type="url"
            value={url}
            maxLength={2048}
            placeholder={KINDS.find((k) => k.kind === kind)?.placeholder}
            onChange={(e) => setUrl(e.target.value)}
          />
        )}
      </Field>
      {kind === "slack" ? (
        <Field
          label="Slack signing secret (optional: Acknowledge and Resolve buttons on the messages)"
          error={errors.slack_signing_secret}
        >
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="off"
              value={signingSecret}
              maxLength={256}
              placeholder="Your Slack app's Basic Information → Signing Secret"
              onChange={(e) => setSigningSecret(e.target.value)}
            />
          )}
        </Field>
      ) : null}
      <fieldset className="chips">
        <legend>Events</legend>
        {WEBHOOK_EVENTS.map((event) => (
          <label key={event} className={`chip ${events.includes(event) ? "on" : ""}`}>
            <input
              type="checkbox"
              checked={events.includes(event)}
              onChange={() =>
                setEvents(events.includes(event) ? events.filter((e) => e !== event) : [...events, event])
              }
            />
            {event}
          </label>
        ))}
        {errors.event_types ? <div className="error-text">{errors.event_types}</div> : null}
      </fieldset>
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Creating…" : "Create webhook"}
        </button>
      </div>
    </form>
  );
}

function Deliveries({ webhook }: { webhook: WebhookRead }) {
  const { api } = useAuth();
  const capabilities = useCapabilities();
  const queryClient = useQueryClient();
  const [status, setStatus] = useState("");
  const retrying = useSubmit();
  const deliveries = useInfiniteQuery({
    queryKey: ["webhooks", "deliveries", webhook.id, status],
    queryFn: ({ pageParam, signal }) =>
      api.get<Page<WebhookDeliveryRead>>(
        `${BASE}/${encodeURIComponent(webhook.id)}/deliveries`,
        { status: status || undefined, limit: 25, cursor: pageParam },
        signal,
      ),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    // Attempts change by the second: keep the log fresh while it is on screen.
    refetchInterval: 5000,
  });

  const retry = async (delivery: WebhookDeliveryRead) => {
    const path = capabilities.webhookRetry;
    if (!path) return;
    await retrying.run(async () => {
      await api.post(fillPath(path, webhook.id, delivery.id));
      await queryClient.invalidateQueries({ queryKey: ["webhooks", "deliveries", webhook.id] });
    });
  };

  const items = deliveries.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="card table-card" aria-label={`Deliveries of ${webhook.name}`}>
      <div className="card-head padded">
        <h2>Deliveries: {webhook.name}</h2>
        <label className="inline-field">
          <span>Status</span>
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">All</option>
            <option value="pending">Pending</option>
            <option value="succeeded">Succeeded</option>
            <option value="failed">Failed</option>
          </select>
        </label>
      </div>
      {retrying.error ? <ErrorBox error={retrying.error} /> : null}
      <QueryTable
        query={deliveries}
        rows={items}
        loading="Loading deliveries"
        empty={<Empty title="No deliveries yet.">Deliveries appear here when a chosen event happens.</Empty>}
        testId="deliveries"
        rowKey={(d) => d.id}
        columns={[
          {
            header: "Event",
            cell: (d) => (
              <>
                <span className="mono">{d.event_type}</span>
                {d.incident_id ? (
                  <div className="small">
                    <Link to={`/incidents/${d.incident_id}`}>{incidentKey(d.incident_id) ?? "the incident"}</Link>
                  </div>
                ) : null}
              </>
            ),
          },
          { header: "Status", cell: (d) => <span className={`badge delivery-${d.status}`}>{d.status}</span> },
          { header: "Attempts", cell: (d) => d.attempts },
          {
            header: "Last answer",
            cell: (d) => (
              <>
                {d.last_status_code ? <span className="mono">HTTP {d.last_status_code}</span> : null}
                {d.last_error ? <div className="muted small">{d.last_error}</div> : null}
                {!d.last_status_code && !d.last_error ? <span className="muted">—</span> : null}
              </>
            ),
          },
          {
            header: "When",
            cell: (d) => (
              <>
                <time dateTime={d.created_at} title={dateTime(d.created_at)}>
                  {relativeTime(d.created_at)}
                </time>
                {d.status === "pending" && d.next_attempt_at ? (
                  <div className="muted small">next try {relativeTime(d.next_attempt_at)}</div>
                ) : null}
              </>
            ),
          },
        ]}
        actions={(d) =>
          capabilities.webhookRetry && d.status !== "succeeded" ? (
            <button type="button" className="btn btn-small" onClick={() => void retry(d)}>
              Retry
            </button>
          ) : null
        }
      />
      {!deliveries.isError && items.length > 0 && deliveries.hasNextPage ? (
        <div className="pager">
          <button
            type="button"
            className="btn"
            disabled={deliveries.isFetchingNextPage}
            onClick={() => void deliveries.fetchNextPage()}
          >
            Older deliveries
          </button>
        </div>
      ) : null}
    </section>
  );
}

function WebhooksAdmin() {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const [created, setCreated] = useState<WebhookSecretRead | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const changing = useSubmit();
  const webhooks = useQuery({
    queryKey: ["webhooks", "list"],
    queryFn: ({ signal }) => api.get<Page<WebhookRead>>(BASE, { limit: 200 }, signal),
  });

  const change = (work: () => Promise<unknown>) =>
    changing.run(async () => {
      await work();
      await queryClient.invalidateQueries({ queryKey: ["webhooks", "list"] });
    });

  const items = webhooks.data?.items ?? [];
  const shown = items.find((w) => w.id === selected) ?? null;
  return (
    <>
      <WebhookForm
        onCreated={(webhook) => {
          setCreated(webhook);
          setSelected(webhook.id);
          void queryClient.invalidateQueries({ queryKey: ["webhooks", "list"] });
        }}
      />
      {created?.secret ? (
        <SecretOnce label={`Signing secret of “${created.name}” — shown only once`} value={created.secret}>
          <p className="small">
            Every delivery carries an <code>SRE-Copilot-Signature</code> made with it; verify it before trusting a
            delivery.
          </p>
        </SecretOnce>
      ) : null}
      {changing.error ? <ErrorBox error={changing.error} /> : null}
      <section className="card table-card" aria-label="Webhooks">
        <QueryTable
          query={webhooks}
          rows={items}
          loading="Loading webhooks"
          empty={<Empty title="No webhooks yet.">Send incidents to Slack, or to your own service.</Empty>}
          rowKey={(w) => w.id}
          rowClassName={(w) => (selected === w.id ? "selected" : "")}
          columns={[
            {
              header: "Webhook",
              cell: (w) => (
                <>
                  <strong>{w.name}</strong> <span className="badge kind">{w.kind}</span>
                  {w.interactive ? <span className="badge">buttons</span> : null}
                  <div className="muted small mono url">{w.url}</div>
                </>
              ),
            },
            {
              header: "Events",
              cell: (w) =>
                w.event_types.map((e) => (
                  <span key={e} className="badge scope">
                    {e}
                  </span>
                )),
            },
            {
              header: "State",
              cell: (w) => (
                <span className={`badge ${w.enabled ? "status-active" : "status-deactivated"}`}>
                  {w.enabled ? "enabled" : "disabled"}
                </span>
              ),
            },
          ]}
          actions={(w) => (
            <>
              <button
                type="button"
                className="btn btn-small"
                aria-pressed={selected === w.id}
                onClick={() => setSelected(selected === w.id ? null : w.id)}
              >
                Deliveries
              </button>{" "}
              <button
                type="button"
                className="btn btn-small"
                onClick={() => void change(() => api.patch(`${BASE}/${w.id}`, { enabled: !w.enabled }))}
              >
                {w.enabled ? "Disable" : "Enable"}
              </button>{" "}
              <button
                type="button"
                className="btn btn-small btn-danger"
                onClick={() => {
                  if (window.confirm(`Delete “${w.name}” and its delivery log?`)) {
                    if (selected === w.id) setSelected(null);
                    void change(() => api.delete(`${BASE}/${w.id}`));
                  }
                }}
              >
                Delete
              </button>
            </>
          )}
        />
      </section>
      {shown ? <Deliveries webhook={shown} /> : null}
    </>
  );
}

export function WebhooksPage() {
  const { role } = useAuth();
  const capabilities = useCapabilities();
  return (
    <>
      <PageHeader title="Outgoing webhooks" kicker="Admin" />
      {!atLeast(role, "admin") ? (
        <AdminOnly />
      ) : capabilities.webhooks ? (
        <WebhooksAdmin />
      ) : (
        <Empty title="Not available on this server.">
          This gateway does not offer outgoing webhooks (<code>/api/v1/integrations/webhooks</code>).
        </Empty>
      )}
    </>
  );
}
