// The incident's postmortem (draft from the log, edit against a version, preview with citations
// linking to the timeline, publish) and its follow-up actions.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { ApiError } from "../api/client";
import type { FollowUpList, FollowUpRead, PostmortemRead } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { Markdown } from "../lib/markdown";
import { ErrorBox, Loading } from "./ui";

export function usePostmortem(incidentId: string) {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["postmortem", incidentId],
    queryFn: async ({ signal }) => {
      try {
        return await api.get<PostmortemRead>(
          `/api/v1/incidents/${encodeURIComponent(incidentId)}/postmortem`,
          undefined,
          signal,
        );
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return null; // no draft yet
        throw error;
      }
    },
  });
}

export function PostmortemView({
  postmortem,
  canAct,
  busy,
  onSave,
  onPublish,
}: {
  postmortem: PostmortemRead;
  canAct: boolean;
  busy: boolean;
  onSave: (markdown: string) => void;
  onPublish: () => void;
}) {
  const [mode, setMode] = useState<"preview" | "edit">("preview");
  const [text, setText] = useState(postmortem.markdown);
  const [base, setBase] = useState(postmortem.version);
  if (base !== postmortem.version && mode === "preview") {
    // A newer version arrived while only previewing: show it.
    setBase(postmortem.version);
    setText(postmortem.markdown);
  }
  return (
    <div className="postmortem">
      <p className="small muted" data-testid="postmortem-meta">
        Version {postmortem.version} · {postmortem.status}
        {postmortem.published_version ? ` (published: version ${postmortem.published_version})` : ""} · written by{" "}
        {postmortem.engine}
      </p>
      {postmortem.fallback_reason ? (
        <p className="small warning" role="note">
          Claude&apos;s draft was not used: {postmortem.fallback_reason}
        </p>
      ) : null}
      <div role="tablist" aria-label="Postmortem view" className="tabs">
        <button type="button" role="tab" aria-selected={mode === "preview"} onClick={() => setMode("preview")}>
          Preview
        </button>
        {canAct ? (
          <button type="button" role="tab" aria-selected={mode === "edit"} onClick={() => setMode("edit")}>
            Edit
          </button>
        ) : null}
      </div>
      {mode === "edit" ? (
        <form
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            onSave(text);
            setMode("preview");
          }}
        >
          <label className="sr-only" htmlFor="postmortem-markdown">
            Markdown
          </label>
          <textarea
            id="postmortem-markdown"
            className="postmortem-editor mono"
            rows={24}
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
          <button type="submit" className="btn btn-primary" disabled={busy || !text.trim()}>
            Save version {postmortem.version + 1}
          </button>
        </form>
      ) : (
        <Markdown text={postmortem.markdown} />
      )}
      <details className="citations">
        <summary>{postmortem.citations.length} cited events</summary>
        <ul>
          {postmortem.citations.map((c) => (
            <li key={c.event_id}>
              <a href={`#event-${c.event_id}`} className="citation">
                #{c.seq}
              </a>{" "}
              <span className="mono small muted">{c.event_id}</span>
            </li>
          ))}
        </ul>
      </details>
      {canAct && postmortem.status === "draft" ? (
        <button type="button" className="btn" disabled={busy} onClick={onPublish}>
          Publish version {postmortem.version}
        </button>
      ) : null}
    </div>
  );
}

export function PostmortemSection({ incidentId, canAct }: { incidentId: string; canAct: boolean }) {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const postmortem = usePostmortem(incidentId);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const base = `/api/v1/incidents/${encodeURIComponent(incidentId)}/postmortem`;

  const act = async (call: () => Promise<PostmortemRead>) => {
    setBusy(true);
    setError(null);
    try {
      queryClient.setQueryData(["postmortem", incidentId], await call());
    } catch (e) {
      setError(e);
      if (e instanceof ApiError && e.status === 409) void postmortem.refetch();
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="postmortem-heading">
      <h2 id="postmortem-heading">Postmortem</h2>
      {postmortem.isPending ? (
        <Loading what="Loading postmortem" />
      ) : postmortem.isError ? (
        <ErrorBox error={postmortem.error} retry={() => void postmortem.refetch()} />
      ) : postmortem.data ? (
        <PostmortemView
          postmortem={postmortem.data}
          canAct={canAct}
          busy={busy}
          onSave={(markdown) =>
            void act(() => api.put<PostmortemRead>(base, { version: postmortem.data!.version, markdown }))
          }
          onPublish={() =>
            void act(() => api.post<PostmortemRead>(`${base}/publish`, { version: postmortem.data!.version }))
          }
        />
      ) : (
        <p className="muted">No postmortem yet.</p>
      )}
      {error instanceof ApiError && error.status === 409 ? (
        <p className="small warning" role="alert">
          Someone saved another version meanwhile: it is shown now; edit it again.
        </p>
      ) : error ? (
        <ErrorBox error={error} />
      ) : null}
      {canAct ? (
        <button
          type="button"
          className="btn"
          disabled={busy}
          onClick={() => void act(() => api.post<PostmortemRead>(base))}
        >
          {busy ? "Working…" : postmortem.data ? "Draft again from the log" : "Draft from the log"}
        </button>
      ) : null}
      <FollowUps incidentId={incidentId} canAct={canAct} />
    </section>
  );
}

export function FollowUps({ incidentId, canAct }: { incidentId: string; canAct: boolean }) {
  const { api } = useAuth();
  const queryClient = useQueryClient();
  const path = `/api/v1/incidents/${encodeURIComponent(incidentId)}/follow-ups`;
  const list = useQuery({
    queryKey: ["follow-ups", incidentId],
    queryFn: ({ signal }) => api.get<FollowUpList>(path, undefined, signal),
  });
  const [title, setTitle] = useState("");
  const [owner, setOwner] = useState("");
  const [due, setDue] = useState("");
  const [error, setError] = useState<unknown>(null);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: ["follow-ups", incidentId] });

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await api.post<FollowUpRead>(path, {
        title: title.trim(),
        ...(owner.trim() ? { owner: owner.trim() } : {}),
        ...(due ? { due_date: due } : {}),
      });
      setTitle("");
      setOwner("");
      setDue("");
      refresh();
    } catch (err) {
      setError(err);
    }
  };
  const toggle = async (item: FollowUpRead) => {
    try {
      await api.patch<FollowUpRead>(`${path}/${item.id}`, { done: !item.done });
      refresh();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <div className="follow-ups">
      <h3>Follow-up actions</h3>
      {list.isPending ? (
        <Loading what="Loading follow-ups" />
      ) : list.isError ? (
        <ErrorBox error={list.error} retry={() => void list.refetch()} />
      ) : list.data.items.length ? (
        <ul data-testid="follow-ups">
          {list.data.items.map((f) => (
            <li key={f.id}>
              <label>
                <input type="checkbox" checked={f.done} disabled={!canAct} onChange={() => void toggle(f)} /> {f.title}
              </label>
              {f.owner ? <span className="small muted"> · {f.owner}</span> : null}
              {f.due_date ? <span className="small muted"> · due {f.due_date}</span> : null}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">None yet.</p>
      )}
      {canAct ? (
        <form className="follow-up-form" onSubmit={(e) => void add(e)}>
          <input
            aria-label="Follow-up title"
            placeholder="Action"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
          />
          <input aria-label="Owner" placeholder="Owner" value={owner} onChange={(e) => setOwner(e.target.value)} />
          <input aria-label="Due date" type="date" value={due} onChange={(e) => setDue(e.target.value)} />
          <button type="submit" className="btn" disabled={!title.trim()}>
            Add
          </button>
        </form>
      ) : null}
      {error ? <ErrorBox error={error} /> : null}
    </div>
  );
}
