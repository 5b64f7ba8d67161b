// On-call schedules (/api/v1/schedules): every schedule with who is on call now, and (admins) a
// form for a new one.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router";
import { usePeople } from "../../api/hooks";
import type { OnCallRead, Page, ScheduleRead } from "../../api/types";
import { useAuth } from "../../auth/AuthContext";
import { QueryTable } from "../../components/DataTable";
import { Empty, PageHeader } from "../../components/ui";
import { atLeast } from "../../lib/incidents";
import { describeRotation } from "../../lib/oncall";
import { ScheduleForm } from "./ScheduleForm";

export function useSchedules() {
  const { api } = useAuth();
  return useQuery({
    queryKey: ["schedules", "list"],
    queryFn: ({ signal }) => api.get<Page<ScheduleRead>>("/api/v1/schedules", { limit: 200 }, signal),
  });
}

function OnCallNow({ scheduleId }: { scheduleId: string }) {
  const { api } = useAuth();
  const person = usePeople();
  const now = useQuery({
    queryKey: ["schedules", scheduleId, "on-call"],
    queryFn: ({ signal }) => api.get<OnCallRead>(`/api/v1/schedules/${scheduleId}/on-call`, undefined, signal),
    refetchInterval: 60_000,
  });
  if (now.isPending) return <span className="muted">…</span>;
  if (now.isError) return <span className="muted">unknown</span>;
  return now.data.user_id ? (
    <span>
      {person(now.data.user_id)}
      {now.data.override_id ? <span className="badge">override</span> : null}
    </span>
  ) : (
    <span className="muted">nobody</span>
  );
}

export function SchedulesPage() {
  const { role } = useAuth();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const schedules = useSchedules();
  const admin = atLeast(role, "admin");
  const items = schedules.data?.items ?? [];

  return (
    <>
      <PageHeader title="Schedules" kicker="On-call">
        <Link className="btn" to="/on-call/me">
          My shifts
        </Link>
      </PageHeader>
      <section className="card table-card" aria-label="Schedules">
        <QueryTable
          query={schedules}
          rows={items}
          loading="Loading schedules"
          empty={
            <Empty title="No schedules yet.">
              {admin ? "Create one below." : "An admin makes them; they say who is paged when."}
            </Empty>
          }
          testId="schedules"
          rowKey={(s) => s.id}
          columns={[
            {
              header: "Schedule",
              cell: (s) => (
                <>
                  <Link to={`/on-call/schedules/${s.id}`}>
                    <strong>{s.name}</strong>
                  </Link>
                  {s.description ? <div className="muted small">{s.description}</div> : null}
                </>
              ),
            },
            {
              header: "Layers",
              className: "small",
              cell: (s) =>
                s.layers.map((l, i) => (
                  <div key={i}>
                    {l.name || `Layer ${i + 1}`}: {l.participants.length} people, {describeRotation(l)}
                  </div>
                )),
            },
            { header: "On call now", cell: (s) => <OnCallNow scheduleId={s.id} /> },
          ]}
        />
      </section>
      {admin ? (
        <ScheduleForm
          onSaved={(saved) => {
            void queryClient.invalidateQueries({ queryKey: ["schedules"] });
            navigate(`/on-call/schedules/${saved.id}`);
          }}
        />
      ) : null}
    </>
  );
}
