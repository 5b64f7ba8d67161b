import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useIncidents, usePeople, useUsers } from "../api/hooks";
import type { Query } from "../api/client";
import { SEVERITIES, STATES } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { Empty, ErrorBox, Loading, PageHeader, SeverityBadge, StateBadge } from "../components/ui";
import { localInputToIso, relativeTime } from "../lib/format";
import { atLeast, SEVERITY_LABEL, STATE_LABEL } from "../lib/incidents";

const PAGE_SIZE = 25;
const FILTERS = ["q", "state", "severity", "service", "assignee", "created_from", "created_to", "order"] as const;

/** The list's URL parameters as the API's query (datetime-local values become ISO 8601). */
export function filtersToQuery(params: URLSearchParams): Query {
  const list = (name: string) => (params.get(name) ?? "").split(",").filter(Boolean);
  return {
    q: params.get("q") ?? undefined,
    state: list("state"),
    severity: list("severity"),
    service: params.get("service") ?? undefined,
    assignee: params.get("assignee") ?? undefined,
    created_from: localInputToIso(params.get("created_from") ?? ""),
    created_to: localInputToIso(params.get("created_to") ?? ""),
    order: params.get("order") === "oldest" ? "oldest" : undefined,
    cursor: params.get("cursor") ?? undefined,
    limit: PAGE_SIZE,
  };
}

function ChipGroup({
  legend,
  options,
  selected,
  onChange,
  classFor,
}: {
  legend: string;
  options: readonly string[];
  selected: string[];
  onChange: (next: string[]) => void;
  classFor: (v: string) => string;
}) {
  return (
    <fieldset className="chips">
      <legend>{legend}</legend>
      {options.map((option) => {
        const on = selected.includes(option);
        return (
          <label key={option} className={`chip ${on ? "on" : ""} ${classFor(option)}`}>
            <input
              type="checkbox"
              checked={on}
              onChange={() => onChange(on ? selected.filter((s) => s !== option) : [...selected, option])}
            />
            {option in STATE_LABEL
              ? STATE_LABEL[option as keyof typeof STATE_LABEL]
              : SEVERITY_LABEL[option as keyof typeof SEVERITY_LABEL]}
          </label>
        );
      })}
    </fieldset>
  );
}

export function IncidentsPage() {
  const { role } = useAuth();
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const users = useUsers();
  const person = usePeople();
  const searchRef = useRef<HTMLInputElement>(null);
  const [q, setQ] = useState(params.get("q") ?? "");
  const [service, setService] = useState(params.get("service") ?? "");
  // Cursors of the pages before this one, so "Previous" can go back (the API's cursors go forward).
  const [previous, setPrevious] = useState<string[]>([]);

  const filterKey = FILTERS.map((f) => params.get(f) ?? "").join("|");
  useEffect(() => setPrevious([]), [filterKey]);
  useEffect(() => {
    if (params.get("focus") === "search") searchRef.current?.focus();
  }, [params]);

  const query = filtersToQuery(params);
  const incidents = useIncidents(query);

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [name, value] of Object.entries(changes)) {
      if (value) next.set(name, value);
      else next.delete(name);
    }
    next.delete("cursor");
    next.delete("focus");
    setParams(next, { replace: true });
  };

  // Text filters apply as you type (after a pause) and at once on Enter.
  useEffect(() => {
    const handle = setTimeout(() => {
      if ((params.get("q") ?? "") !== q.trim() || (params.get("service") ?? "") !== service.trim()) {
        update({ q: q.trim() || null, service: service.trim() || null });
      }
    }, 350);
    return () => clearTimeout(handle);
  }, [q, service]);

  const applyText = (e: FormEvent) => {
    e.preventDefault();
    update({ q: q.trim() || null, service: service.trim() || null });
  };

  const states = (params.get("state") ?? "").split(",").filter(Boolean);
  const severities = (params.get("severity") ?? "").split(",").filter(Boolean);
  const anyFilter = FILTERS.some((f) => f !== "order" && params.get(f));
  const moreOpen = Boolean(params.get("created_from") || params.get("created_to") || params.get("order"));

  const goNext = () => {
    const cursor = incidents.data?.next_cursor;
    if (!cursor) return;
    setPrevious([...previous, params.get("cursor") ?? ""]);
    const next = new URLSearchParams(params);
    next.set("cursor", cursor);
    setParams(next);
  };
  const goPrevious = () => {
    const stack = [...previous];
    const cursor = stack.pop();
    setPrevious(stack);
    const next = new URLSearchParams(params);
    if (cursor) next.set("cursor", cursor);
    else next.delete("cursor");
    setParams(next);
  };

  return (
    <>
      <PageHeader title="Incidents">
        {atLeast(role, "responder") ? (
          <Link to="/incidents/new" className="btn btn-primary">
            New incident <kbd>N</kbd>
          </Link>
        ) : null}
      </PageHeader>

      <form className="card filters" role="search" aria-label="Filter incidents" onSubmit={applyText}>
        <div className="filters-row">
          <div className="field grow">
            <label htmlFor="incident-search">
              Search <kbd>/</kbd>
            </label>
            <input
              id="incident-search"
              ref={searchRef}
              type="search"
              placeholder="Text in the title or description"
              value={q}
              maxLength={200}
              onChange={(e) => setQ(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="filter-service">Service</label>
            <input
              id="filter-service"
              placeholder="e.g. payment-api"
              value={service}
              maxLength={100}
              onChange={(e) => setService(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="filter-assignee">Assignee</label>
            <select
              id="filter-assignee"
              value={params.get("assignee") ?? ""}
              onChange={(e) => update({ assignee: e.target.value || null })}
            >
              <option value="">Anyone</option>
              <option value="me">Me</option>
              <option value="none">Unassigned</option>
              {(users.data ?? [])
                .filter((u) => u.status === "active")
                .map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.full_name}
                  </option>
                ))}
            </select>
          </div>
        </div>
        <div className="filters-row">
          <ChipGroup
            legend="State"
            options={STATES}
            selected={states}
            onChange={(next) => update({ state: next.join(",") || null })}
            classFor={(s) => `state-${s}`}
          />
          <ChipGroup
            legend="Severity"
            options={SEVERITIES}
            selected={severities}
            onChange={(next) => update({ severity: next.join(",") || null })}
            classFor={(s) => `sev-${s}`}
          />
        </div>
        <details className="more-filters" open={moreOpen}>
          <summary>More filters: dates and order</summary>
          <div className="filters-row">
            <div className="field">
              <label htmlFor="filter-from">Created from</label>
              <input
                id="filter-from"
                type="datetime-local"
                value={params.get("created_from") ?? ""}
                onChange={(e) => update({ created_from: e.target.value || null })}
              />
            </div>
            <div className="field">
              <label htmlFor="filter-to">Created before</label>
              <input
                id="filter-to"
                type="datetime-local"
                value={params.get("created_to") ?? ""}
                onChange={(e) => update({ created_to: e.target.value || null })}
              />
            </div>
            <div className="field">
              <label htmlFor="filter-order">Order</label>
              <select
                id="filter-order"
                value={params.get("order") ?? "newest"}
                onChange={(e) => update({ order: e.target.value === "oldest" ? "oldest" : null })}
              >
                <option value="newest">Newest first</option>
                <option value="oldest">Oldest first</option>
              </select>
            </div>
          </div>
        </details>
        <div className="filters-actions">
          <button type="submit" className="btn">
            Apply
          </button>
          {anyFilter ? (
            <button
              type="button"
              className="btn btn-ghost"
              onClick={() => {
                setQ("");
                setService("");
                setParams(new URLSearchParams(), { replace: true });
              }}
            >
              Clear filters
            </button>
          ) : null}
        </div>
      </form>

      <section className="card table-card" aria-label="Incident list" aria-busy={incidents.isFetching}>
        {incidents.isPending ? (
          <Loading what="Loading incidents" />
        ) : incidents.isError ? (
          <ErrorBox error={incidents.error} retry={() => void incidents.refetch()} />
        ) : incidents.data.items.length === 0 ? (
          anyFilter ? (
            <Empty title="No incidents match these filters.">Try fewer filters, or clear them.</Empty>
          ) : (
            <Empty title="No incidents yet.">
              {atLeast(role, "responder") ? <Link to="/incidents/new">Open the first one</Link> : "Quiet times."}
            </Empty>
          )
        ) : (
          <>
            <table className="incidents">
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Title</th>
                  <th scope="col">Service</th>
                  <th scope="col">Severity</th>
                  <th scope="col">State</th>
                  <th scope="col">Assignee</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {incidents.data.items.map((incident) => (
                  <tr
                    key={incident.id}
                    onClick={(e) => {
                      if ((e.target as HTMLElement).closest("a")) return;
                      navigate(`/incidents/${incident.id}`);
                    }}
                  >
                    <td className="mono" data-label="Key">
                      {incident.key}
                    </td>
                    <td className="title-cell" data-label="Title">
                      <Link to={`/incidents/${incident.id}`}>{incident.title}</Link>
                    </td>
                    <td data-label="Service">
                      <span className="mono">{incident.service_name}</span>
                    </td>
                    <td data-label="Severity">
                      <SeverityBadge severity={incident.severity} />
                    </td>
                    <td data-label="State">
                      <StateBadge state={incident.state} />
                    </td>
                    <td data-label="Assignee">
                      {incident.assignee_id ? person(incident.assignee_id) : <span className="muted">—</span>}
                    </td>
                    <td data-label="Created">
                      <time dateTime={incident.created_at} title={new Date(incident.created_at).toLocaleString()}>
                        {relativeTime(incident.created_at)}
                      </time>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <nav className="pager" aria-label="Pages">
              <button type="button" className="btn" disabled={previous.length === 0} onClick={goPrevious}>
                ← Previous
              </button>
              <span className="muted">Page {previous.length + 1}</span>
              <button type="button" className="btn" disabled={!incidents.data.next_cursor} onClick={goNext}>
                Next →
              </button>
            </nav>
          </>
        )}
      </section>
    </>
  );
}
