import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ApiError } from "../../api/client";
import { useKeys, usePeople } from "../../api/hooks";
import { KEY_SCOPES, type IntegrationKeySecretRead, type KeyScope } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { Empty, ErrorBox, Field, Loading, PageHeader, SecretOnce } from "../../components/ui";
import { relativeTime } from "../../lib/format";
import { atLeast } from "../../lib/incidents";
import { AdminOnly } from "./PeoplePage";

const SCOPE_HELP: Record<KeyScope, string> = {
  "alerts:write": "Send alerts (Alertmanager)",
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
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [created, setCreated] = useState<IntegrationKeySecretRead | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    if (!name.trim()) found.name = "Name the key after what will use it.";
    if (!scopes.length) found.scopes = "Pick at least one scope.";
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    setError(null);
    try {
      const key = await api.post<IntegrationKeySecretRead>("/api/v1/integration-keys", { name: name.trim(), scopes });
      setCreated(key);
      setName("");
      await queryClient.invalidateQueries({ queryKey: ["keys"] });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) setErrors(err.fieldErrors());
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (id: string, keyName: string) => {
    if (!window.confirm(`Revoke “${keyName}”? Anything using it is refused from now on.`)) return;
    try {
      await api.post(`/api/v1/integration-keys/${encodeURIComponent(id)}/revoke`, {});
      await queryClient.invalidateQueries({ queryKey: ["keys"] });
    } catch (err) {
      setError(err);
    }
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
        {error && !(error instanceof ApiError && error.status === 422) ? <ErrorBox error={error} /> : null}
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
        </SecretOnce>
      ) : null}
      <section className="card table-card" aria-label="Integration keys">
        {keys.isPending ? (
          <Loading what="Loading keys" />
        ) : keys.isError ? (
          <ErrorBox error={keys.error} retry={() => void keys.refetch()} />
        ) : keys.data.items.length === 0 ? (
          <Empty title="No integration keys yet.">Create one for Alertmanager or your deploy pipeline.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Scopes</th>
                <th scope="col">Created</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.items.map((key) => (
                <tr key={key.id} className={key.revoked_at ? "revoked" : ""}>
                  <td data-label="Name">
                    <strong>{key.name}</strong>
                    <div className="muted small mono">{key.id}</div>
                  </td>
                  <td data-label="Scopes">
                    {key.scopes.map((s) => (
                      <span key={s} className="badge scope">
                        {s}
                      </span>
                    ))}
                  </td>
                  <td data-label="Created">
                    {relativeTime(key.created_at)} by {person(key.created_by)}
                  </td>
                  <td data-label="Status">
                    {key.revoked_at ? (
                      <span className="badge status-deactivated">revoked {relativeTime(key.revoked_at)}</span>
                    ) : (
                      <span className="badge status-active">active</span>
                    )}
                  </td>
                  <td className="actions">
                    {key.revoked_at ? null : (
                      <button
                        type="button"
                        className="btn btn-small btn-danger"
                        onClick={() => void revoke(key.id, key.name)}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
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
