// Every incident's follow-up actions, open ones by default, oldest first.
import { useInfiniteQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import type { FollowUpPage } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ErrorBox, Loading, PageHeader } from "../components/ui";

const STATES = ["open", "done", "all"] as const;
type State = (typeof STATES)[number];

export function FollowUpsPage() {
  const { api } = useAuth();
  const [params, setParams] = useSearchParams();
  const state: State = (STATES as readonly string[]).includes(params.get("state") ?? "")
    ? (params.get("state") as State)
    : "open";
  const pages = useInfiniteQuery({
    queryKey: ["follow-ups", "all", state],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam, signal }) =>
      api.get<FollowUpPage>(
        "/api/v1/follow-ups",
        { state, limit: 50, ...(pageParam ? { cursor: pageParam } : {}) },
        signal,
      ),
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
  const items = pages.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <>
      <PageHeader title="Follow-up actions" />
      <div role="tablist" aria-label="Which follow-ups" className="tabs">
        {STATES.map((s) => (
          <button key={s} type="button" role="tab" aria-selected={s === state} onClick={() => setParams({ state: s })}>
            {s}
          </button>
        ))}
      </div>
      <section className="card">
        {pages.isPending ? (
          <Loading what="Loading follow-ups" />
        ) : pages.isError ? (
          <ErrorBox error={pages.error} retry={() => void pages.refetch()} />
        ) : items.length ? (
          <table className="table">
            <thead>
              <tr>
                <th>Action</th>
                <th>Incident</th>
                <th>Owner</th>
                <th>Due</th>
                <th>Done</th>
              </tr>
            </thead>
            <tbody>
              {items.map((f) => (
                <tr key={f.id}>
                  <td>{f.title}</td>
                  <td>
                    <Link to={`/incidents/${f.incident_id}`}>{f.incident_key ?? "incident"}</Link>{" "}
                    <span className="small muted">{f.incident_title}</span>
                  </td>
                  <td>{f.owner ?? "—"}</td>
                  <td>{f.due_date ?? "—"}</td>
                  <td>{f.done ? "yes" : "no"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">Nothing {state === "all" ? "" : state} here.</p>
        )}
        {pages.hasNextPage ? (
          <button type="button" className="btn" onClick={() => void pages.fetchNextPage()}>
            More
          </button>
        ) : null}
      </section>
    </>
  );
}
