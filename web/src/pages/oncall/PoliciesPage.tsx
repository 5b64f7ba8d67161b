// Escalation policies (/api/v1/escalation-policies) and the routing that picks one for a new
// incident (/api/v1/routing): every member reads them, admins make and change them.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { usePeople, useUsers } from "../../api/hooks";
import type { Page, PolicyRead, RoutingRead, RuleSpec, Severity, TargetSpec } from "../../api/types";
import { SEVERITIES } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { DataTable } from "../../components/DataTable";
import { Empty, ErrorBox, Field, Loading, PageHeader } from "../../components/ui";
import { atLeast } from "../../lib/incidents";
import { useSubmit } from "../../lib/useSubmit";
import {
  checkPolicy,
  describeRule,
  draftToSteps,
  errorsByPath,
  labelsToText,
  matchersToText,
  parseLabels,
  parseRuleMatchers,
  type StepDraft,
} from "../../lib/oncall";
import { useSchedules } from "./SchedulesPage";
import { useTeams, Warnings } from "./TeamsPage";

const BASE = "/api/v1/escalation-policies";

function usePolicies() {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["policies"],
    queryFn: ({ signal }) => api.get<Page<PolicyRead>>(BASE, { limit: 200 }, signal),
  });
}

function useTargetName(): (t: TargetSpec) => string {
  const person = usePeople();
  const schedules = useSchedules();
  const teams = useTeams();
  return (t) => {
    if (t.kind === "user") return person(t.id);
    if (t.kind === "team") return `team ${teams.data?.items.find((x) => x.id === t.id)?.name ?? "(deleted)"}`;
    const s = schedules.data?.items.find((x) => x.id === t.id);
    return `on call in ${s ? s.name : "a schedule"}`;
  };
}

function StepEditor({
  index,
  step,
  errors,
  onChange,
  onRemove,
}: {
  index: number;
  step: StepDraft;
  errors: Record<string, string>;
  onChange: (s: StepDraft) => void;
  onRemove: (() => void) | null;
}) {
  const users = useUsers();
  const schedules = useSchedules();
  const teams = useTeams();
  const name = useTargetName();
  const label = `Step ${index + 1}`;
  const has = (t: TargetSpec) => step.targets.some((x) => x.kind === t.kind && x.id === t.id);
  const add = (value: string) => {
    const [kind, id] = value.split(":");
    if (kind === "user" || kind === "schedule" || kind === "team")
      onChange({ ...step, targets: [...step.targets, { kind, id }] });
  };
  const targetsError = errors[`steps.${index}.targets`];
  return (
    <fieldset className="card step" aria-label={label}>
      <legend>{label}</legend>
      <ul className="targets" aria-label={`${label} targets`}>
        {step.targets.map((t, k) => (
          <li key={`${t.kind}:${t.id}`}>
            Notify {name(t)}{" "}
            <button
              type="button"
              className="btn btn-small btn-ghost"
              aria-label={`Remove ${name(t)}`}
              onClick={() => onChange({ ...step, targets: step.targets.filter((_, n) => n !== k) })}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
      <div className="form-row">
        <label className="inline-field">
          <span>Notify</span>
          <select aria-label={`${label}: add target`} value="" onChange={(e) => add(e.target.value)}>
            <option value="">Add someone, a schedule or a team…</option>
            <optgroup label="Teams">
              {(teams.data?.items ?? [])
                .filter((t) => !has({ kind: "team", id: t.id }))
                .map((t) => (
                  <option key={t.id} value={`team:${t.id}`}>
                    {t.name}
                  </option>
                ))}
            </optgroup>
            <optgroup label="Schedules (whoever is on call)">
              {(schedules.data?.items ?? [])
                .filter((s) => !has({ kind: "schedule", id: s.id }))
                .map((s) => (
                  <option key={s.id} value={`schedule:${s.id}`}>
                    {s.name}
                  </option>
                ))}
            </optgroup>
            <optgroup label="People">
              {(users.data ?? [])
                .filter((u) => u.status !== "deactivated" && !has({ kind: "user", id: u.id }))
                .map((u) => (
                  <option key={u.id} value={`user:${u.id}`}>
                    {u.full_name}
                  </option>
                ))}
            </optgroup>
          </select>
        </label>
        <Field label={`${label}: then wait (minutes)`} error={errors[`steps.${index}.wait_minutes`]}>
          {(p) => (
            <input
              {...p}
              inputMode="decimal"
              value={step.wait}
              onChange={(e) => onChange({ ...step, wait: e.target.value })}
            />
          )}
        </Field>
      </div>
      {targetsError ? <div className="error-text">{targetsError}</div> : null}
      {onRemove ? (
        <button type="button" className="btn btn-small btn-danger" onClick={onRemove}>
          Remove step
        </button>
      ) : null}
    </fieldset>
  );
}

function PolicyForm({
  policy,
  onSaved,
  onCancel,
}: {
  policy?: PolicyRead;
  onSaved: () => void;
  onCancel?: () => void;
}) {
  const { api } = useAuth();
  const blank = (): StepDraft[] => [{ targets: [], wait: "5" }];
  const [name, setName] = useState(policy?.name ?? "");
  const [steps, setSteps] = useState<StepDraft[]>(
    policy ? policy.steps.map((s) => ({ targets: [...s.targets], wait: String(s.wait_minutes) })) : blank(),
  );
  const [repeat, setRepeat] = useState(String(policy?.repeat ?? 0));
  const { busy, formError, fieldErrors: errors, setFieldErrors, run, reset } = useSubmit(errorsByPath);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found = checkPolicy(name, steps, repeat);
    reset();
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const body = { name: name.trim(), steps: draftToSteps(steps), repeat: Number(repeat) };
      if (policy) {
        await api.put(`${BASE}/${policy.id}`, body);
      } else {
        await api.post(BASE, body);
        setName("");
        setSteps(blank());
        setRepeat("0");
      }
      onSaved();
    });
  };

  const title = policy ? `Edit ${policy.name}` : "New escalation policy";
  return (
    <form className="card form" onSubmit={submit} noValidate aria-label={title}>
      <h2>{title}</h2>
      <div className="form-row">
        <Field label="Name" error={errors.name}>
          {(p) => <input {...p} value={name} maxLength={120} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Repeat" error={errors.repeat} hint="Run the steps again this many times if nobody acknowledges">
          {(p) => <input {...p} inputMode="numeric" value={repeat} onChange={(e) => setRepeat(e.target.value)} />}
        </Field>
      </div>
      {steps.map((step, i) => (
        <StepEditor
          key={i}
          index={i}
          step={step}
          errors={errors}
          onChange={(next) => setSteps(steps.map((s, k) => (k === i ? next : s)))}
          onRemove={steps.length > 1 ? () => setSteps(steps.filter((_, k) => k !== i)) : null}
        />
      ))}
      {errors.steps ? <div className="error-text">{errors.steps}</div> : null}
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        <button type="button" className="btn" onClick={() => setSteps([...steps, { targets: [], wait: "5" }])}>
          Add step
        </button>
        {onCancel ? (
          <button type="button" className="btn btn-ghost" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Saving…" : policy ? "Save policy" : "Create policy"}
        </button>
      </div>
    </form>
  );
}

function PolicyList({
  policies,
  admin,
  onEdit,
}: {
  policies: PolicyRead[];
  admin: boolean;
  onEdit: (p: PolicyRead) => void;
}) {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const name = useTargetName();
  const deleting = useSubmit();
  if (!policies.length) return <Empty title="No escalation policies yet.">Without one, nobody is paged.</Empty>;
  return (
    <>
      {deleting.error ? <ErrorBox error={deleting.error} /> : null}
      <DataTable
        rows={policies}
        testId="policies"
        rowKey={(p) => p.id}
        columns={[
          {
            header: "Policy",
            cell: (p) => (
              <>
                <strong>{p.name}</strong>
                <div className="muted small">{p.repeat ? `repeats ${p.repeat}×` : "runs once"}</div>
                <Warnings warnings={p.warnings} label={`Warnings of ${p.name}`} />
              </>
            ),
          },
          {
            header: "Steps",
            cell: (p) => (
              <ol className="steps small">
                {p.steps.map((s, i) => (
                  <li key={i}>
                    Notify {s.targets.map(name).join(", ")}, then wait {s.wait_minutes} min
                  </li>
                ))}
              </ol>
            ),
          },
        ]}
        actions={(p) =>
          admin ? (
            <>
              <button type="button" className="btn btn-small" onClick={() => onEdit(p)}>
                Edit
              </button>
              <button
                type="button"
                className="btn btn-small btn-danger"
                onClick={() => {
                  if (!window.confirm(`Delete the policy “${p.name}”? Running escalations go on.`)) return;
                  void deleting.run(() =>
                    api.delete(`${BASE}/${p.id}`).then(() => queryClient.invalidateQueries({ queryKey: ["policies"] })),
                  );
                }}
              >
                Delete
              </button>
            </>
          ) : null
        }
      />
    </>
  );
}

/** A rule as edited; fields the console does not know ride along unchanged. */
type RuleDraft = RuleSpec & { service_name: string; severities: Severity[]; labelsText: string; matchersText: string };

function toDraft(rule: RuleSpec): RuleDraft {
  return {
    ...rule,
    service_name: rule.service_name ?? "",
    severities: [...(rule.severities ?? [])],
    labelsText: labelsToText(rule.labels),
    matchersText: matchersToText(rule.matchers),
  };
}

/** The rule to send (call it once the texts parse); empty conditions are left out, as a new rule has none. */
export function draftToRule(draft: RuleDraft): RuleSpec {
  const { labelsText, matchersText, ...rule } = draft;
  const service = draft.service_name.trim();
  const out: RuleSpec = { ...rule, service_name: service || null, severities: draft.severities };
  const { labels } = parseLabels(labelsText);
  const { matchers } = parseRuleMatchers(matchersText);
  delete out.labels;
  delete out.matchers;
  if (Object.keys(labels).length || draft.labels) out.labels = labels;
  if (matchers.length || draft.matchers) out.matchers = matchers;
  return out;
}

/** The first message of a path under `prefix` (a 422 on `rules.0.matchers.1.value` shows on the field). */
function firstUnder(errors: Record<string, string>, prefix: string): string | undefined {
  const key = Object.keys(errors).find((k) => k.startsWith(prefix));
  return key ? errors[key] : undefined;
}

function RoutingEditor({ routing, policies, admin }: { routing: RoutingRead; policies: PolicyRead[]; admin: boolean }) {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const [rules, setRules] = useState<RuleDraft[]>(routing.rules.map(toDraft));
  const [fallback, setFallback] = useState(routing.default_policy_id ?? "");
  const { busy, formError, fieldErrors: errors, setFieldErrors, run, reset } = useSubmit(errorsByPath);
  const [saved, setSaved] = useState(false);
  const policyName = (id: string) => policies.find((p) => p.id === id)?.name ?? "a deleted policy";
  const set = (i: number, patch: Partial<RuleDraft>) => {
    setSaved(false);
    setRules(rules.map((r, k) => (k === i ? { ...r, ...patch } : r)));
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    rules.forEach((r, i) => {
      if (!r.policy_id) found[`rules.${i}.policy_id`] = "Which policy?";
      const labels = parseLabels(r.labelsText);
      if (labels.bad) found[`rules.${i}.labels`] = `Not name=value: ${labels.bad}`;
      const matchers = parseRuleMatchers(r.matchersText);
      if (matchers.bad) found[`rules.${i}.matchers`] = `Not a matcher: ${matchers.bad}`;
    });
    reset();
    setFieldErrors(found);
    if (Object.keys(found).length) return;
    await run(async () => {
      const next = await api.put<RoutingRead>("/api/v1/routing", {
        rules: rules.map(draftToRule),
        default_policy_id: fallback || null,
      });
      queryClient.setQueryData(["routing"], next);
      setSaved(true);
    });
  };

  if (!admin) {
    return (
      <div className="padded">
        <ol className="small">
          {routing.rules.map((r, i) => (
            <li key={i}>
              {describeRule(r)} → {policyName(r.policy_id)}
            </li>
          ))}
        </ol>
        <p className="small">
          Otherwise: {routing.default_policy_id ? policyName(routing.default_policy_id) : "nobody is paged"}.
        </p>
      </div>
    );
  }
  return (
    <form className="form padded" onSubmit={submit} noValidate aria-label="Routing">
      <p className="muted small">A new incident takes the policy of the first rule it matches, else the default.</p>
      {rules.map((r, i) => (
        <fieldset key={i} className="rule" aria-label={`Rule ${i + 1}`}>
          <legend>Rule {i + 1}</legend>
          <div className="form-row">
            <Field label={`Rule ${i + 1}: service`} hint="Empty: any service" error={errors[`rules.${i}.service_name`]}>
              {(p) => (
                <input {...p} value={r.service_name} onChange={(e) => set(i, { service_name: e.target.value })} />
              )}
            </Field>
            <Field label={`Rule ${i + 1}: policy`} error={errors[`rules.${i}.policy_id`]}>
              {(p) => (
                <select {...p} value={r.policy_id} onChange={(e) => set(i, { policy_id: e.target.value })}>
                  <option value="">Choose a policy…</option>
                  {policies.map((pol) => (
                    <option key={pol.id} value={pol.id}>
                      {pol.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
          <div className="chips" role="group" aria-label={`Rule ${i + 1}: severities`}>
            {SEVERITIES.map((sev) => (
              <label key={sev} className={`chip ${r.severities.includes(sev) ? "on" : ""}`}>
                <input
                  type="checkbox"
                  checked={r.severities.includes(sev)}
                  onChange={() =>
                    set(i, {
                      severities: r.severities.includes(sev)
                        ? r.severities.filter((x) => x !== sev)
                        : [...r.severities, sev],
                    })
                  }
                />
                {sev}
              </label>
            ))}
            <span className="muted small">none: any severity</span>
          </div>
          <div className="form-row">
            <Field
              label={`Rule ${i + 1}: labels`}
              hint="The opening alert's labels, one per line: cluster=prod-eu"
              error={errors[`rules.${i}.labels`]}
            >
              {(p) => (
                <textarea
                  {...p}
                  rows={2}
                  value={r.labelsText}
                  onChange={(e) => set(i, { labelsText: e.target.value })}
                />
              )}
            </Field>
            <Field
              label={`Rule ${i + 1}: matchers`}
              hint="One per line: team=~db|storage, env!=staging (=, !=, =~, !~)"
              error={errors[`rules.${i}.matchers`] ?? firstUnder(errors, `rules.${i}.matchers.`)}
            >
              {(p) => (
                <textarea
                  {...p}
                  rows={2}
                  value={r.matchersText}
                  onChange={(e) => set(i, { matchersText: e.target.value })}
                />
              )}
            </Field>
          </div>
          <div className="form-actions">
            {i > 0 ? (
              <button
                type="button"
                className="btn btn-small"
                onClick={() => {
                  const next = [...rules];
                  [next[i - 1], next[i]] = [next[i], next[i - 1]];
                  setRules(next);
                  setSaved(false);
                }}
              >
                Move up
              </button>
            ) : null}
            <button
              type="button"
              className="btn btn-small btn-danger"
              onClick={() => {
                setRules(rules.filter((_, k) => k !== i));
                setSaved(false);
              }}
            >
              Remove rule
            </button>
          </div>
        </fieldset>
      ))}
      <Field label="Default policy" hint="When no rule matches">
        {(p) => (
          <select
            {...p}
            value={fallback}
            onChange={(e) => {
              setFallback(e.target.value);
              setSaved(false);
            }}
          >
            <option value="">None: nobody is paged</option>
            {policies.map((pol) => (
              <option key={pol.id} value={pol.id}>
                {pol.name}
              </option>
            ))}
          </select>
        )}
      </Field>
      {errors.default_policy_id ? <div className="error-text">{errors.default_policy_id}</div> : null}
      {formError ? <ErrorBox error={formError} /> : null}
      <div className="form-actions">
        <button
          type="button"
          className="btn"
          onClick={() =>
            setRules([...rules, { policy_id: "", service_name: "", severities: [], labelsText: "", matchersText: "" }])
          }
        >
          Add rule
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Saving…" : "Save routing"}
        </button>
        {saved ? (
          <span role="status" className="muted">
            Saved.
          </span>
        ) : null}
      </div>
    </form>
  );
}

export function PoliciesPage() {
  const { api, role } = useAuth();
  const queryClient = useQueryClient();
  const policies = usePolicies();
  const routing = useQuery({
    queryKey: ["routing"],
    queryFn: ({ signal }) => api.get<RoutingRead>("/api/v1/routing", undefined, signal),
  });
  const admin = atLeast(role, "admin");
  const [editing, setEditing] = useState<PolicyRead | null>(null);
  const saved = () => void queryClient.invalidateQueries({ queryKey: ["policies"] });
  return (
    <>
      <PageHeader title="Escalation policies" kicker="On-call" />
      {editing ? (
        <PolicyForm
          key={editing.id}
          policy={editing}
          onCancel={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            saved();
          }}
        />
      ) : null}
      <section className="card table-card" aria-label="Escalation policies">
        {policies.isPending ? (
          <Loading what="Loading policies" />
        ) : policies.isError ? (
          <ErrorBox error={policies.error} retry={() => void policies.refetch()} />
        ) : (
          <PolicyList policies={policies.data.items} admin={admin} onEdit={setEditing} />
        )}
      </section>
      {admin ? <PolicyForm onSaved={saved} /> : null}
      <section className="card" aria-label="Routing rules">
        <h2>Routing</h2>
        {routing.isPending || policies.isPending ? (
          <Loading what="Loading routing" />
        ) : routing.isError ? (
          <ErrorBox error={routing.error} retry={() => void routing.refetch()} />
        ) : (
          <RoutingEditor routing={routing.data} policies={policies.data?.items ?? []} admin={admin} />
        )}
      </section>
    </>
  );
}
