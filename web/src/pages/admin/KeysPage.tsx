import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useKeys, usePeople } from "../../api/hooks";
import { KEY_SCOPES, type IntegrationKeySecretRead, type KeyScope } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { QueryTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, PageHeader, SecretOnce } from "../../components/ui";
import { relativeTime } from "../../lib/format";
import { atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";
import { AdminOnly } from "./PeoplePage";

const SCOPE_HELP: Record<KeyScope, string> = {
  "alerts:write": "Send alerts (Alertmanager, Grafana, PagerDuty Events v2 senders, JSON sources)",
  "deploys:write": "Record deploys (CI/CD)",
  "mcp:read": "AI assistants read incidents (MCP)",
  "mcp:write": "AI assistants also act on incidents (MCP)",
};

function KeysAdmin() {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const keys = useKeys();
  const person = usePeople();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<KeyScope[]>(["alerts:write"]);
  const [created, setCreated] = useState<IntegrationKeySecretRead | null>(null);
  const { busy, formError, fieldErrors: errors, setFieldErrors, run } = useSubmit();
  const revoking = useSubmit();

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    if (!name.trim()) found.name = "Name the key after what will use it.";
    if (!scopes.length) found.scopes = "Pick at least one scope.";
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const key = await api.post<IntegrationKeySecretRead>("/api/v1/integration-keys", { name: name.trim(), scopes });
      setCreated(key);
      setName("");
      await queryClient.invalidateQueries({ queryKey: ["keys"] });
    });
  };

  const revoke = async (id: string, keyName: string) => {
    if (!window.confirm(`Revoke “${keyName}”? Anything using it is refused from now on.`)) return;
    await revoking.run(async () => {
      await api.post(`/api/v1/integration-keys/${encodeURIComponent(id)}/revoke`, {});
      await queryClient.invalidateQueries({ queryKey: ["keys"] });
    });
  };

  return (
    <>
      <form className="card form" onSubmit={create} noValidate aria-label="New integration key">
        <h2>New integration key</h2>
        <div className="form-row">
          <Field label="Name" error={errors.name}>
            {(p) => (
              <input
                {...p}
                value={name}
                maxLength={120}
                placeholder="e.g. alertmanager-prod"
                onChange={(e) => setName(e.target.value)}
              />
            )}
          </Field>
          <fieldset className="chips">
            <legend>Scopes</legend>
            {KEY_SCOPES.map((scope) => (
              <label key={scope} className={`chip ${scopes.includes(scope) ? "on" : ""}`} title={SCOPE_HELP[scope]}>
                <input
                  type="checkbox"
                  checked={scopes.includes(scope)}
                  onChange={() =>
                    setScopes(scopes.includes(scope) ? scopes.filter((s) => s !== scope) : [...scopes, scope])
                  }
                />
                {scope}
              </label>
            ))}
            {errors.scopes ? <div className="error-text">{errors.scopes}</div> : null}
          </fieldset>
        </div>
        {formError || revoking.error ? <ErrorBox error={formError ?? revoking.error} /> : null}
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy}>
            {busy ? "Creating…" : "Create key"}
          </button>
        </div>
      </form>
      {created ? (
        <SecretOnce label={`Key “${created.name}” — copy it now, it is shown only once`} value={created.key}>
          <p className="small">
            Send it as <code>Authorization: Bearer …</code>. SRE Copilot keeps only a hash: if it is lost, revoke it and
            create another.
          </p>
          {created.scopes.includes("alerts:write") ? (
            <ul className="small" aria-label="Where alerts go">
              <li>
                Alertmanager or Grafana webhook: <code>{window.location.origin}/api/v1/integrations/alertmanager</code>{" "}
                with the key as bearer token.
              </li>
              <li>
                Anything that speaks PagerDuty Events v2 (Alertmanager&apos;s <code>pagerduty_configs</code>, Grafana,
                Argo CD…): <code>{window.location.origin}/api/v1/integrations/pagerduty/v2/enqueue</code> with the key
                as <code>routing_key</code>.
              </li>
              <li>
                Any other JSON: a source under Admin → JSON sources, at{" "}
                <code>{window.location.origin}/api/v1/integrations/json/&lt;source id&gt;</code>.
              </li>
            </ul>
          ) : null}
        </SecretOnce>
      ) : null}
      <section className="card table-card" aria-label="Integration keys">
        <QueryTable
          query={keys}
          rows={keys.data?.items ?? []}
          loading="Loading keys"
          empty={<Empty title="No integration keys yet.">Create one for Alertmanager or your deploy pipeline.</Empty>}
          rowKey={(key) => key.id}
          rowClassName={(key) => (key.revoked_at ? "revoked" : "")}
          columns={[
            {
              header: "Name",
              cell: (key) => (
                <>
                  <strong>{key.name}</strong>
                  <div className="muted small mono">{key.id}</div>
                </>
              ),
            },
            {
              header: "Scopes",
              cell: (key) =>
                key.scopes.map((s) => (
                  <span key={s} className="badge scope">
                    {s}
                  </span>
                )),
            },
            { header: "Created", cell: (key) => `${relativeTime(key.created_at)} by ${person(key.created_by)}` },
            {
              header: "Status",
              cell: (key) =>
                key.revoked_at ? (
                  <span className="badge status-deactivated">revoked {relativeTime(key.revoked_at)}</span>
                ) : (
                  <span className="badge status-active">active</span>
                ),
            },
          ]}
          actions={(key) =>
            key.revoked_at ? null : (
              <button type="button" className="btn btn-small btn-danger" onClick={() => void revoke(key.id, key.name)}>
                Revoke
              </button>
            )
          }
        />
      </section>
    </>
  );
}

export function KeysPage() {
  const { role } = useAuth();
  return (
    <>
      <PageHeader title="Integration keys" kicker="Admin" />
      {atLeast(role, "admin") ? <KeysAdmin /> : <AdminOnly />}
    </>
  );
}
