import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { describe, expect, it } from "vitest";
import type { ScheduleRead, UserRead } from "../../api/types";
import { fakeFetch, renderWithApp, signedInClient, type FakeCall } from "../../test/utils";
import { MyShiftsPage } from "./MyShiftsPage";
import { PoliciesPage } from "./PoliciesPage";
import { SchedulePage } from "./SchedulePage";
import { SchedulesPage } from "./SchedulesPage";

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
                    labels: [{ label: "env", value: "prod" }],
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
        { targets: [{ kind: "schedule", id: "s1" }], wait_minutes: 5 },
        { targets: [{ kind: "user", id: "u_2" }], wait_minutes: 10 },
      ],
    });

    const routing = screen.getByRole("form", { name: "Routing" });
    await user.click(within(routing).getByRole("button", { name: "Add rule" }));
    await user.type(within(routing).getByLabelText("Rule 2: service"), "db");
    await user.selectOptions(within(routing).getByLabelText("Rule 2: policy"), POLICY.id);
    await user.selectOptions(within(routing).getByLabelText("Default policy"), POLICY.id);
    await user.click(within(routing).getByRole("button", { name: "Save routing" }));
    expect(await within(routing).findByText("Saved.")).toBeInTheDocument();
    expect(calls.find((c) => c.method === "PUT")?.body).toEqual({
      rules: [
        {
          policy_id: POLICY.id,
          service_name: "web",
          severities: ["critical"],
          labels: [{ label: "env", value: "prod" }],
        },
        { policy_id: POLICY.id, service_name: "db", severities: [] },
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
