import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useUsers } from "../../api/hooks";
import type { InviteRead, Role, UserRead } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { Empty, ErrorBox, Field, Loading, PageHeader, SecretOnce } from "../../components/ui";
import { relativeTime } from "../../lib/format";
import { assignableRoles, atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";

export function AdminOnly() {
  return <ErrorBox title="Admins only" error={new Error("Managing people and keys needs the admin or owner role.")} />;
}

function InviteForm({ onInvited }: { onInvited: (invite: InviteRead) => void }) {
  const { api, role } = useAuth();
  const roles = assignableRoles(role);
  const [form, setForm] = useState({ email: "", full_name: "", role: "responder" as Role });
  const { busy, formError, fieldErrors: errors, setFieldErrors, run } = useSubmit();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(form.email.trim())) found.email = "A valid email address.";
    if (!form.full_name.trim()) found.full_name = "Their name.";
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const invite = await api.post<InviteRead>("/api/v1/users", {
        ...form,
        email: form.email.trim(),
        full_name: form.full_name.trim(),
      });
      setForm({ email: "", full_name: "", role: form.role });
      onInvited(invite);
    });
  };

  return (
    <form className="card form" onSubmit={submit} noValidate aria-label="Invite someone">
      <h2>Invite someone</h2>
      <div className="form-row">
        <Field label="Email" error={errors.email}>
          {(p) => (
            <input
              {...p}
              type="email"
              value={form.email}
              onChange={(e) => setForm({ ...form, email: e.target.value })}
            />
          )}
        </Field>
        <Field label="Name" error={errors.full_name}>
          {(p) => (
            <input
              {...p}
              value={form.full_name}
              maxLength={120}
              onChange={(e) => setForm({ ...form, full_name: e.target.value })}
            />
          )}
        </Field>
        <Field label="Role">
          {(p) => (
            <select {...p} value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Inviting…" : "Invite"}
        </button>
      </div>
    </form>
  );
}

function PersonRow({ user }: { user: UserRead }) {
  const { api, role, session } = useAuth();
  const queryClient = useQueryClient();
  const { busy, error, run } = useSubmit();
  const self = user.id === session?.user.id;
  const roles = assignableRoles(role);
  // Admins manage responders and viewers; owners manage everyone; nobody manages themselves.
  const manageable = !self && roles.includes(user.role);

  const act = (work: () => Promise<unknown>) =>
    run(async () => {
      await work();
      await queryClient.invalidateQueries({ queryKey: ["users"] });
    });

  return (
    <tr>
      <td data-label="Name">
        <strong>{user.full_name}</strong>
        {self ? <span className="muted"> (you)</span> : null}
        <div className="muted small">{user.email}</div>
      </td>
      <td data-label="Role">
        {manageable ? (
          <>
            <label className="sr-only" htmlFor={`role-${user.id}`}>
              Role of {user.full_name}
            </label>
            <select
              id={`role-${user.id}`}
              value={user.role}
              disabled={busy}
              onChange={(e) => void act(() => api.patch(`/api/v1/users/${user.id}`, { role: e.target.value }))}
            >
              {roles.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </>
        ) : (
          <span className="badge role">{user.role}</span>
        )}
      </td>
      <td data-label="Status">
        <span className={`badge status-${user.status}`}>{user.status}</span>
      </td>
      <td data-label="Since">{relativeTime(user.created_at)}</td>
      <td data-label="Actions" className="actions">
        {manageable && user.status !== "deactivated" ? (
          <button
            type="button"
            className="btn btn-small btn-danger"
            disabled={busy}
            onClick={() => {
              if (window.confirm(`Deactivate ${user.full_name}? Their sessions end at once.`)) {
                void act(() => api.post(`/api/v1/users/${user.id}/deactivate`));
              }
            }}
          >
            Deactivate
          </button>
        ) : null}
        {manageable && user.status === "deactivated" ? (
          <button
            type="button"
            className="btn btn-small"
            disabled={busy}
            onClick={() => void act(() => api.post(`/api/v1/users/${user.id}/reactivate`))}
          >
            Reactivate
          </button>
        ) : null}
        {error ? <ErrorBox error={error} /> : null}
      </td>
    </tr>
  );
}

export function PeoplePage() {
  const { role } = useAuth();
  const users = useUsers();
  const [invite, setInvite] = useState<InviteRead | null>(null);
  if (!atLeast(role, "admin")) {
    return (
      <>
        <PageHeader title="People & roles" kicker="Admin" />
        <AdminOnly />
      </>
    );
  }
  const link = invite ? `${window.location.origin}/accept-invite?token=${encodeURIComponent(invite.invite_token)}` : "";
  return (
    <>
      <PageHeader title="People & roles" kicker="Admin" />
      <InviteForm onInvited={setInvite} />
      {invite ? (
        <SecretOnce label={`Invitation for ${invite.user.email} — shown once`} value={link}>
          <p className="small">
            Send this link to {invite.user.full_name}; it lets them set a password and join as {invite.user.role}. It
            expires {new Date(invite.invite_expires_at).toLocaleDateString()}.
          </p>
        </SecretOnce>
      ) : null}
      <section className="card table-card" aria-label="People">
        {users.isPending ? (
          <Loading what="Loading people" />
        ) : users.isError ? (
          <ErrorBox error={users.error} retry={() => void users.refetch()} />
        ) : users.data.length === 0 ? (
          <Empty title="Nobody here yet." />
        ) : (
          <table className="people">
            <thead>
              <tr>
                <th scope="col">Person</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Since</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.data.map((user) => (
                <PersonRow key={user.id} user={user} />
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
