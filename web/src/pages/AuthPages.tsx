import { useState, type FormEvent, type ReactNode } from "react";
import { Link, Navigate, useNavigate, useSearchParams } from "react-router";
import { ApiError, messageOf } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Field } from "../components/ui";

/** Only a path of this site: never an absolute or protocol-relative URL (no open redirect). */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

function AuthFrame({ title, children, footer }: { title: string; children: ReactNode; footer: ReactNode }) {
  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <div className="auth-brand">
          <svg viewBox="0 0 32 32" width="36" height="36" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#e5484d" />
            <path
              d="M6 17h5l3-7 4 13 3-6h5"
              stroke="white"
              strokeWidth="2.6"
              fill="none"
              strokeLinecap="round"
              strokeLinejoin="round"
            />
          </svg>
          <span>SRE Copilot</span>
        </div>
        <h1>{title}</h1>
        {children}
        <div className="auth-footer">{footer}</div>
      </main>
    </div>
  );
}

function FormError({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div className="alert alert-error" role="alert">
      {messageOf(error)}
    </div>
  );
}

export function LoginPage() {
  const { session, login } = useAuth();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = safeNext(params.get("next"));
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  if (session && !busy) return <Navigate to={next} replace />;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email.trim(), password);
      navigate(next, { replace: true });
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401 ? new Error("That email and password do not match.") : err,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthFrame
      title="Sign in"
      footer={
        <>
          New here? <Link to="/register">Register your organisation</Link>
        </>
      }
    >
      {params.get("expired") ? (
        <div className="alert alert-info" role="status" data-testid="session-expired">
          Your session expired. Sign in again to carry on; what you were typing has been kept.
        </div>
      ) : null}
      <form onSubmit={submit} noValidate aria-label="Sign in">
        <Field label="Email">
          {(p) => (
            <input
              {...p}
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              autoFocus
            />
          )}
        </Field>
        <Field label="Password">
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
        <FormError error={error} />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy || !email || !password}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </AuthFrame>
  );
}

interface RegisterErrors {
  tenant_name?: string;
  full_name?: string;
  email?: string;
  password?: string;
}

export function validateRegistration(input: {
  tenant_name: string;
  full_name: string;
  email: string;
  password: string;
}): RegisterErrors {
  const errors: RegisterErrors = {};
  if (!input.tenant_name.trim()) errors.tenant_name = "Name your organisation.";
  else if (input.tenant_name.trim().length > 120) errors.tenant_name = "At most 120 characters.";
  if (!input.full_name.trim()) errors.full_name = "Your name, as your team knows it.";
  else if (input.full_name.trim().length > 120) errors.full_name = "At most 120 characters.";
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(input.email.trim())) errors.email = "A valid email address.";
  if (input.password.length < 8) errors.password = "At least 8 characters.";
  else if (input.password.length > 128) errors.password = "At most 128 characters.";
  else if (input.password.toLowerCase() === input.email.trim().toLowerCase()) errors.password = "Not your email.";
  return errors;
}

export function RegisterPage() {
  const { session, register } = useAuth();
  const navigate = useNavigate();
  const [form, setForm] = useState({ tenant_name: "", full_name: "", email: "", password: "" });
  const [errors, setErrors] = useState<RegisterErrors>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  if (session && !busy) return <Navigate to="/" replace />;

  const set = (name: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) =>
    setForm({ ...form, [name]: e.target.value });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found = validateRegistration(form);
    setErrors(found);
    if (Object.keys(found).length) {
      const first = Object.keys(found)[0];
      document.querySelector<HTMLInputElement>(`[name="${first}"]`)?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await register({ ...form, email: form.email.trim() });
      navigate("/", { replace: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) setErrors(err.fieldErrors());
      setError(
        err instanceof ApiError && err.status === 409
          ? new Error("An account with that email already exists. Sign in instead.")
          : err,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthFrame
      title="Register your organisation"
      footer={
        <>
          Already registered? <Link to="/login">Sign in</Link>
        </>
      }
    >
      <form onSubmit={submit} noValidate aria-label="Register">
        <Field label="Organisation" error={errors.tenant_name}>
          {(p) => (
            <input
              {...p}
              name="tenant_name"
              autoComplete="organization"
              value={form.tenant_name}
              onChange={set("tenant_name")}
              autoFocus
            />
          )}
        </Field>
        <Field label="Your name" error={errors.full_name}>
          {(p) => (
            <input {...p} name="full_name" autoComplete="name" value={form.full_name} onChange={set("full_name")} />
          )}
        </Field>
        <Field label="Email" error={errors.email}>
          {(p) => (
            <input {...p} name="email" type="email" autoComplete="email" value={form.email} onChange={set("email")} />
          )}
        </Field>
        <Field label="Password" error={errors.password} hint="8 to 128 characters; not a common password.">
          {(p) => (
            <input
              {...p}
              name="password"
              type="password"
              autoComplete="new-password"
              value={form.password}
              onChange={set("password")}
            />
          )}
        </Field>
        <FormError error={error} />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Creating…" : "Create organisation"}
        </button>
      </form>
    </AuthFrame>
  );
}

export function AcceptInvitePage() {
  const { acceptInvite } = useAuth();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [token, setToken] = useState(params.get("token") ?? "");
  const [fullName, setFullName] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const passwordError = password && password.length < 8 ? "At least 8 characters." : undefined;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!token || password.length < 8) return;
    setBusy(true);
    setError(null);
    try {
      await acceptInvite(token.trim(), password, fullName);
      navigate("/", { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <AuthFrame title="Join your team" footer={<Link to="/login">Back to sign in</Link>}>
      <form onSubmit={submit} noValidate aria-label="Accept invitation">
        <Field label="Invitation code">
          {(p) => <input {...p} value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" />}
        </Field>
        <Field label="Your name" hint="Optional: keeps the name you were invited with when empty.">
          {(p) => <input {...p} value={fullName} onChange={(e) => setFullName(e.target.value)} autoComplete="name" />}
        </Field>
        <Field label="Choose a password" error={passwordError}>
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
        <FormError error={error} />
        <button type="submit" className="btn btn-primary btn-block" disabled={busy || !token || password.length < 8}>
          {busy ? "Joining…" : "Join"}
        </button>
      </form>
    </AuthFrame>
  );
}
