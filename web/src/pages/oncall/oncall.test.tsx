import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ScheduleRead, TeamRead, UserRead } from "../../api/types";
import { fakeFetch, renderWithApp, signedInClient, type FakeCall } from "../../test/utils";
import { MyShiftsPage } from "./MyShiftsPage";
import { PoliciesPage } from "./PoliciesPage";
import { SchedulePage } from "./SchedulePage";
import { SchedulesPage } from "./SchedulesPage";
import { TeamsPage } from "./TeamsPage";

const USERS: UserRead[] = [
  {
    id: "u_1",
    email: "john@acme.example",
    full_name: "John Doe",
    role: "owner",
    status: "active",
    created_at: "2026-11-01T00:00:00Z",
  },
  {
    id: "u_2",
    email: "ada@acme.example",
    full_name: "Ada Lovelace",
    role: "responder",
    status: "active",
    created_at: "2026-11-01T00:00:00Z",
  },
] as UserRead[];

const SCHEDULE: ScheduleRead = {
  id: "s1",
  name: "Primary",
  description: "",
  layers: [
    {
      name: "",
      participants: ["u_1", "u_2"],
      rotation: "weekly",
      length: 1,
      start_date: "2026-12-01",
      handoff_time: "09:00",
      time_zone: "UTC",
      restrictions: [],
    },
  ],
  overrides: [],
  created_by: "u_1",
  created_at: "2026-12-01T00:00:00Z",
  updated_at: "2026-12-01T00:00:00Z",
};

const TEAM: TeamRead = {
  id: "t1",
  name: "Databases",
  members: ["u_1", "u_2"],
  schedule_id: "s1",
  warnings: [],
  created_by: "u_1",
  created_at: "2026-12-01T00:00:00Z",
  updated_at: "2026-12-01T00:00:00Z",
};

function day(offset: number, hour = 9): string {
  const d = new Date();
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + offset, hour).toISOString();
}

const SHIFTS = {
  schedule_id: "s1",
  items: [
    { user_id: "u_1", start: day(-1), end: day(3), layer: 0 },
    { user_id: "u_2", start: day(3), end: day(4), override_id: "o1" },
    { user_id: "u_1", start: day(4), end: day(11), layer: 0 },
  ],
};

function api(extra: (call: FakeCall) => { status: number; body?: unknown } | undefined = () => undefined) {
  return fakeFetch((call) => {
    const answer = extra(call);
    if (answer) return answer;
    const path = new URL(call.url, "http://x").pathname;
    if (path === "/api/v1/users") return { status: 200, body: { items: USERS, next_cursor: null } };
    if (path === "/api/v1/schedules") return { status: 200, body: { items: [SCHEDULE], next_cursor: null } };
    if (path === "/api/v1/schedules/s1") return { status: 200, body: SCHEDULE };
    if (path === "/api/v1/schedules/s1/shifts") return { status: 200, body: SHIFTS };
    if (path === "/api/v1/schedules/s1/on-call")
      return { status: 200, body: { schedule_id: "s1", at: day(0), user_id: "u_1", layer: 0 } };
    return undefined;
  });
}

const posts = (calls: FakeCall[]) =>
  calls.filter((c) => c.method === "POST" || c.method === "PUT" || c.method === "PATCH");

describe("a schedule's page", () => {
  it("draws the API's shifts and makes an override from a picked shift", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = api((call) =>
      call.method === "POST"
        ? {
            status: 201,
            body: {
              id: "o2",
              schedule_id: "s1",
              user_id: "u_2",
              start: day(0),
              end: day(1),
              created_by: "u_1",
              created_at: day(0),
            },
          }
        : undefined,
    );
    renderWithApp(
      <Routes>
        <Route path="/on-call/schedules/:id" element={<SchedulePage />} />
      </Routes>,
      signedInClient(fetch),
      "/on-call/schedules/s1",
    );
    const timeline = await screen.findByTestId("timeline");
    const shifts = await within(timeline).findAllByTestId("shift");
    expect(shifts).toHaveLength(3);
    expect(shifts[1]).toHaveAccessibleName(/Ada Lovelace, .* \(override\)/);
    // The shifts were asked from the window's start, not computed here.
    const asked = calls.find((c) => c.url.includes("/shifts"));
    expect(new URL(asked!.url, "http://x").searchParams.get("count")).toBe("100");

    const form = screen.getByRole("form", { name: "New override" });
    await user.click(within(form).getByRole("button", { name: "Add override" }));
    expect(await within(form).findByText("Who covers?")).toBeInTheDocument();
    await user.click(shifts[2]);
    await user.selectOptions(within(form).getByLabelText("Who covers"), "u_2");
    await user.click(within(form).getByRole("button", { name: "Add override" }));
    await waitFor(() => expect(posts(calls)).toHaveLength(1));
    expect(posts(calls)[0].url).toContain("/api/v1/schedules/s1/overrides");
    expect(posts(calls)[0].body).toEqual({ user_id: "u_2", start: day(4), end: day(11) });
  });

  it("shows the API's 422 on the field it names when an edit is refused", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = api((call) =>
      call.method === "PATCH"
        ? {
            status: 422,
            body: {
              error: {
                code: "validation_error",
                message: "a window's start and end differ",
                details: [
                  {
                    loc: ["body", "layers", 0, "restrictions", 0],
                    msg: "a window's start and end differ",
                    type: "value_error",
                  },
                ],
              },
            },
          }
        : undefined,
    );
    renderWithApp(
      <Routes>
        <Route path="/on-call/schedules/:id" element={<SchedulePage />} />
      </Routes>,
      signedInClient(fetch),
      "/on-call/schedules/s1",
    );
    await user.click(await screen.findByRole("button", { name: "Edit schedule" }));
    const form = screen.getByRole("form", { name: "Edit Primary" });
    await user.click(within(form).getByRole("button", { name: "Add restriction" }));
    const restriction = within(form).getByRole("group", { name: "Layer 1 restriction 1" });
    await user.clear(within(restriction).getByLabelText("Until"));
    await user.type(within(restriction).getByLabelText("Until"), "09:00");
    await user.click(within(form).getByRole("button", { name: "Save schedule" }));
    expect(await within(restriction).findByText("a window's start and end differ")).toBeInTheDocument();
    const sent = posts(calls)[0].body as { layers: { participants: string[]; restrictions: unknown[] }[] };
    expect(sent.layers[0].participants).toEqual(["u_1", "u_2"]);
    expect(sent.layers[0].restrictions).toEqual([
      { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "09:00" },
    ]);
    expect(within(form).queryByRole("alert")).toBeNull();
  });
});

describe("the schedules list", () => {
  it("lists schedules with who is on call now and checks a new one before sending it", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = api();
    renderWithApp(<SchedulesPage />, signedInClient(fetch));
    const table = await screen.findByTestId("schedules");
    expect(within(table).getByText("Primary")).toBeInTheDocument();
    expect(await within(table).findByText("You")).toBeInTheDocument();
    const form = screen.getByRole("form", { name: "New schedule" });
    await user.clear(within(form).getByLabelText("Time zone"));
    await user.type(within(form).getByLabelText("Time zone"), "Mars/Olympus");
    await user.click(within(form).getByRole("button", { name: "Create schedule" }));
    expect(await within(form).findByText("Name the schedule.")).toBeInTheDocument();
    expect(within(form).getByText("Pick at least one participant.")).toBeInTheDocument();
    expect(within(form).getByText(/An IANA time zone/)).toBeInTheDocument();
    expect(posts(calls)).toHaveLength(0);
  });
});

describe("my shifts", () => {
  it("lists the signed-in person's shifts across schedules and issues the calendar address", async () => {
    const user = userEvent.setup();
    const { fetch } = api((call) => {
      if (call.url.startsWith("/api/v1/calendar-feed"))
        return {
          status: 201,
          body: {
            token: "tok",
            my_shifts_path: "/api/v1/calendars/tok/me.ics",
            schedule_path_template: "/api/v1/calendars/tok/schedules/{schedule_id}.ics",
          },
        };
      if (call.url.startsWith("/api/v1/contact-methods")) return { status: 200, body: { items: [] } };
      return undefined;
    });
    renderWithApp(<MyShiftsPage />, signedInClient(fetch));
    const table = await screen.findByTestId("my-shifts");
    // u_1 (the signed-in user) has the first and third shift; Ada's override is not theirs.
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    expect(within(table).getAllByText("Primary")).toHaveLength(2);
    expect(within(table).getByText("now")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Show my calendar address" }));
    expect(await screen.findByTestId("secret-value")).toHaveTextContent("/api/v1/calendars/tok/me.ics");
  });
});

describe("escalation policies", () => {
  const POLICY = {
    id: "00000000-0000-7000-8000-000000000001",
    name: "Web",
    steps: [{ targets: [{ kind: "schedule", id: "s1" }], wait_minutes: 5 }],
    repeat: 1,
    created_by: "u_1",
    created_at: day(0),
    updated_at: day(0),
  };

  it("makes a policy of steps and saves routing, keeping what the console does not edit", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = api((call) => {
      if (call.url.startsWith("/api/v1/teams")) return { status: 200, body: { items: [TEAM], next_cursor: null } };
      if (call.url.startsWith("/api/v1/escalation-policies"))
        return call.method === "POST"
          ? { status: 201, body: POLICY }
          : { status: 200, body: { items: [POLICY], next_cursor: null } };
      if (call.url.startsWith("/api/v1/routing"))
        return call.method === "PUT"
          ? { status: 200, body: call.body }
          : {
              status: 200,
              body: {
                rules: [
                  {
                    policy_id: POLICY.id,
                    service_name: "web",
                    severities: ["critical"],
                    labels: { env: "prod" },
                    matchers: [{ label: "team", op: "=~", value: "web|edge" }],
                    // A field this console does not know: sent back as it came.
                    note: "kept",
                  },
                ],
                default_policy_id: null,
              },
            };
      return undefined;
    });
    renderWithApp(<PoliciesPage />, signedInClient(fetch));
    const table = await screen.findByTestId("policies");
    expect(await within(table).findByText("Notify on call in Primary, then wait 5 min")).toBeInTheDocument();

    const form = screen.getByRole("form", { name: "New escalation policy" });
    await user.type(within(form).getByLabelText("Name"), "Database");
    await user.click(within(form).getByRole("button", { name: "Create policy" }));
    expect(await within(form).findByText("Whom does this step notify?")).toBeInTheDocument();
    await user.selectOptions(within(form).getByLabelText("Step 1: add target"), "schedule:s1");
    await user.selectOptions(within(form).getByLabelText("Step 1: add target"), "team:t1");
    expect(within(form).getByRole("list", { name: "Step 1 targets" })).toHaveTextContent("Notify team Databases");
    await user.click(within(form).getByRole("button", { name: "Add step" }));
    await user.selectOptions(within(form).getByLabelText("Step 2: add target"), "user:u_2");
    await user.clear(within(form).getByLabelText("Step 2: then wait (minutes)"));
    await user.type(within(form).getByLabelText("Step 2: then wait (minutes)"), "10");
    await user.click(within(form).getByRole("button", { name: "Create policy" }));
    await waitFor(() => expect(posts(calls)).toHaveLength(1));
    expect(posts(calls)[0].body).toEqual({
      name: "Database",
      repeat: 0,
      steps: [
        {
          targets: [
            { kind: "schedule", id: "s1" },
            { kind: "team", id: "t1" },
          ],
          wait_minutes: 5,
        },
        { targets: [{ kind: "user", id: "u_2" }], wait_minutes: 10 },
      ],
    });

    const routing = screen.getByRole("form", { name: "Routing" });
    // The rule's conditions are shown as text, one per line, and edited there.
    expect(within(routing).getByLabelText("Rule 1: labels")).toHaveValue("env=prod");
    expect(within(routing).getByLabelText("Rule 1: matchers")).toHaveValue("team=~web|edge");
    await user.type(within(routing).getByLabelText("Rule 1: matchers"), "\nenv!=staging");
    await user.click(within(routing).getByRole("button", { name: "Add rule" }));
    await user.type(within(routing).getByLabelText("Rule 2: service"), "db");
    await user.type(within(routing).getByLabelText("Rule 2: labels"), "cluster=prod-eu\nnot a label");
    await user.selectOptions(within(routing).getByLabelText("Rule 2: policy"), POLICY.id);
    await user.click(within(routing).getByRole("button", { name: "Save routing" }));
    expect(await within(routing).findByText("Not name=value: not a label")).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "PUT")).toHaveLength(0);
    await user.clear(within(routing).getByLabelText("Rule 2: labels"));
    await user.type(within(routing).getByLabelText("Rule 2: labels"), "cluster=prod-eu\ntier = 1");
    await user.selectOptions(within(routing).getByLabelText("Default policy"), POLICY.id);
    await user.click(within(routing).getByRole("button", { name: "Save routing" }));
    expect(await within(routing).findByText("Saved.")).toBeInTheDocument();
    expect(calls.find((c) => c.method === "PUT")?.body).toEqual({
      rules: [
        {
          policy_id: POLICY.id,
          service_name: "web",
          severities: ["critical"],
          labels: { env: "prod" },
          matchers: [
            { label: "team", op: "=~", value: "web|edge" },
            { label: "env", op: "!=", value: "staging" },
          ],
          note: "kept",
        },
        { policy_id: POLICY.id, service_name: "db", severities: [], labels: { cluster: "prod-eu", tier: "1" } },
      ],
      default_policy_id: POLICY.id,
    });
  });

  it("edits a policy in place with a PUT of its whole new shape", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = api((call) => {
      if (call.url.startsWith("/api/v1/escalation-policies"))
        return call.method === "PUT"
          ? { status: 200, body: { ...POLICY, ...(call.body as object) } }
          : { status: 200, body: { items: [POLICY], next_cursor: null } };
      if (call.url.startsWith("/api/v1/routing")) return { status: 200, body: { rules: [], default_policy_id: null } };
      return undefined;
    });
    renderWithApp(<PoliciesPage />, signedInClient(fetch));
    const table = await screen.findByTestId("policies");
    await user.click(within(table).getByRole("button", { name: "Edit" }));
    const form = screen.getByRole("form", { name: "Edit Web" });
    expect(within(form).getByLabelText("Name")).toHaveValue("Web");
    await user.clear(within(form).getByLabelText("Step 1: then wait (minutes)"));
    await user.type(within(form).getByLabelText("Step 1: then wait (minutes)"), "15");
    await user.click(within(form).getByRole("button", { name: "Save policy" }));
    await waitFor(() => expect(screen.queryByRole("form", { name: "Edit Web" })).toBeNull());
    const put = calls.find((c) => c.method === "PUT");
    expect(put?.url).toBe(`/api/v1/escalation-policies/${POLICY.id}`);
    expect(put?.body).toEqual({
      name: "Web",
      repeat: 1,
      steps: [{ targets: [{ kind: "schedule", id: "s1" }], wait_minutes: 15 }],
    });
  });
});

describe("warnings", () => {
  it("shows what became untrue on a policy, and names team targets", async () => {
    const policy = {
      id: "p1",
      name: "Web",
      steps: [{ targets: [{ kind: "team", id: "t1" }], wait_minutes: 5 }],
      repeat: 0,
      warnings: [
        {
          code: "deactivated",
          message: "team Databases: member u_2 is deactivated and is not paged",
          step: 0,
          target: { kind: "team", id: "t1" },
          user_id: "u_2",
        },
      ],
      created_by: "u_1",
      created_at: day(0),
      updated_at: day(0),
    };
    const { fetch } = api((call) => {
      if (call.url.startsWith("/api/v1/teams")) return { status: 200, body: { items: [TEAM], next_cursor: null } };
      if (call.url.startsWith("/api/v1/escalation-policies"))
        return { status: 200, body: { items: [policy], next_cursor: null } };
      if (call.url.startsWith("/api/v1/routing")) return { status: 200, body: { rules: [], default_policy_id: null } };
      return undefined;
    });
    renderWithApp(<PoliciesPage />, signedInClient(fetch));
    const table = await screen.findByTestId("policies");
    expect(await within(table).findByText("Notify team Databases, then wait 5 min")).toBeInTheDocument();
    const note = within(table).getByRole("note", { name: "Warnings of Web" });
    expect(note).toHaveTextContent("Deactivated: team Databases: member u_2 is deactivated and is not paged");
  });
});

describe("teams", () => {
  afterEach(() => vi.restoreAllMocks());

  const teamsApi = (answer: (call: FakeCall) => { status: number; body?: unknown } | undefined = () => undefined) =>
    api((call) => {
      if (!call.url.startsWith("/api/v1/teams")) return undefined;
      const given = answer(call);
      if (given) return given;
      return {
        status: 200,
        body: {
          items: [
            {
              ...TEAM,
              warnings: [{ code: "missing", message: "schedule s9 was deleted: every member is paged" }],
            },
          ],
          next_cursor: null,
        },
      };
    });

  it("lists teams with their warnings and creates one of picked members and a schedule", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = teamsApi((call) =>
      call.method === "POST" ? { status: 201, body: { ...TEAM, id: "t2", name: "Web" } } : undefined,
    );
    renderWithApp(<TeamsPage />, signedInClient(fetch));
    const table = await screen.findByTestId("teams");
    const row = within(table).getByRole("row", { name: /Databases/ });
    expect(await within(row).findByText("You, Ada Lovelace")).toBeInTheDocument();
    expect(await within(row).findByText("on call in Primary")).toBeInTheDocument();
    expect(within(row).getByRole("note", { name: "Warnings of Databases" })).toHaveTextContent(
      "Missing: schedule s9 was deleted: every member is paged",
    );

    const form = screen.getByRole("form", { name: "New team" });
    await user.click(within(form).getByRole("button", { name: "Create team" }));
    expect(await within(form).findByText("Name the team.")).toBeInTheDocument();
    expect(posts(calls)).toHaveLength(0);
    await user.type(within(form).getByLabelText("Name"), "Web");
    await user.selectOptions(within(form).getByLabelText("Add member"), "u_2");
    await user.selectOptions(within(form).getByLabelText("Add member"), "u_1");
    await user.selectOptions(within(form).getByLabelText("Schedule"), "s1");
    await user.click(within(form).getByRole("button", { name: "Create team" }));
    await waitFor(() => expect(posts(calls)).toHaveLength(1));
    expect(posts(calls)[0].url).toBe("/api/v1/teams");
    expect(posts(calls)[0].body).toEqual({ name: "Web", members: ["u_2", "u_1"], schedule_id: "s1" });
  });

  it("edits a team with a PATCH, shows the API's 409 on the member it names, and deletes one", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = teamsApi((call) => {
      if (call.method === "PATCH")
        return {
          status: 409,
          body: {
            error: {
              code: "conflict",
              message: "a deactivated person cannot be paged",
              details: [{ loc: ["body", "members", 1], msg: "u_2 is deactivated", type: "value_error" }],
            },
          },
        };
      if (call.method === "DELETE") return { status: 204 };
      return undefined;
    });
    renderWithApp(<TeamsPage />, signedInClient(fetch));
    const table = await screen.findByTestId("teams");
    await user.click(within(table).getByRole("button", { name: "Edit" }));
    const form = screen.getByRole("form", { name: "Edit Databases" });
    expect(within(form).getByLabelText("Name")).toHaveValue("Databases");
    await user.selectOptions(within(form).getByLabelText("Schedule"), "");
    await user.click(within(form).getByRole("button", { name: "Save team" }));
    const members = within(form).getByRole("list", { name: "Members" });
    expect(await within(members).findByText("u_2 is deactivated")).toBeInTheDocument();
    expect(within(form).getByRole("alert")).toHaveTextContent("a deactivated person cannot be paged");
    const patch = calls.find((c) => c.method === "PATCH");
    expect(patch?.url).toBe("/api/v1/teams/t1");
    expect(patch?.body).toEqual({ name: "Databases", members: ["u_1", "u_2"], schedule_id: null });

    vi.spyOn(window, "confirm").mockReturnValue(true);
    await user.click(within(table).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(calls.some((c) => c.method === "DELETE" && c.url === "/api/v1/teams/t1")).toBe(true));
  });
});
