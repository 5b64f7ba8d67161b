import { useId, useState, type ReactNode } from "react";
import type { IncidentState, Severity } from "../api/types";
import { ApiError, messageOf } from "../api/client";
import { SEVERITY_LABEL, STATE_LABEL } from "../lib/incidents";

export function Spinner({ label = "Loading" }: { label?: string }) {
  return <span className="spinner" role="status" aria-label={label} />;
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <div className="state-box" aria-busy="true">
      <Spinner label={what} />
      <span>{what}…</span>
    </div>
  );
}

export function ErrorBox({ error, retry, title }: { error: unknown; retry?: () => void; title?: string }) {
  const status = error instanceof ApiError ? error.status : undefined;
  return (
    <div className="alert alert-error" role="alert">
      <strong>
        {title ?? (status === 404 ? "Not found" : status === 403 ? "Not allowed" : "Something went wrong")}
      </strong>
      <span>{messageOf(error)}</span>
      {retry ? (
        <button type="button" className="btn btn-small" onClick={retry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <svg viewBox="0 0 48 48" width="40" height="40" aria-hidden="true">
        <circle cx="24" cy="24" r="20" fill="none" stroke="currentColor" strokeWidth="2.5" />
        <path d="M16 25l5 5 11-12" fill="none" stroke="currentColor" strokeWidth="2.5" strokeLinecap="round" />
      </svg>
      <strong>{title}</strong>
      {children ? <div className="muted">{children}</div> : null}
    </div>
  );
}

export function SeverityBadge({ severity }: { severity: Severity }) {
  return <span className={`badge sev-${severity}`}>{SEVERITY_LABEL[severity] ?? severity}</span>;
}

export function StateBadge({ state }: { state: IncidentState }) {
  return (
    <span className={`badge state-${state}`} data-testid="state-badge">
      <span className="dot" aria-hidden="true" />
      {STATE_LABEL[state] ?? state}
    </span>
  );
}

interface FieldProps {
  label: string;
  error?: string;
  hint?: ReactNode;
  children: (props: { id: string; "aria-invalid": boolean; "aria-describedby"?: string }) => ReactNode;
  className?: string;
}

/** A labelled control with its hint and error wired for screen readers. */
export function Field({ label, error, hint, children, className }: FieldProps) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field ${error ? "has-error" : ""} ${className ?? ""}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-invalid": Boolean(error), "aria-describedby": describedBy })}
      {hint ? (
        <div className="hint" id={hintId}>
          {hint}
        </div>
      ) : null}
      {error ? (
        <div className="error-text" id={errorId}>
          {error}
        </div>
      ) : null}
    </div>
  );
}

/** A secret shown once, with a copy button. */
export function SecretOnce({ label, value, children }: { label: string; value: string; children?: ReactNode }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return (
    <div className="alert alert-secret" role="status">
      <strong>{label}</strong>
      {children}
      <div className="secret-row">
        <code className="secret" data-testid="secret-value">
          {value}
        </code>
        <button type="button" className="btn btn-small" onClick={copy}>
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
    </div>
  );
}

export function PageHeader({
  title,
  children,
  kicker,
}: {
  title: ReactNode;
  children?: ReactNode;
  kicker?: ReactNode;
}) {
  return (
    <div className="page-header">
      <div>
        {kicker ? <div className="kicker">{kicker}</div> : null}
        <h1>{title}</h1>
      </div>
      {children ? <div className="page-actions">{children}</div> : null}
    </div>
  );
}
