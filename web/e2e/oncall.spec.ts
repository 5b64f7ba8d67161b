// On-call pages against the real API: a schedule made in the console, its two-week timeline, an
// override made from it that wins; a team, an escalation policy naming it and a routing rule with a
// matcher; "my shifts" and the calendar address.
import type { APIRequestContext } from "@playwright/test";
import { api, expect, PASSWORD, registerViaApi, signIn, test, unique } from "./fixtures";

async function teammate(request: APIRequestContext, token: string, name: string): Promise<{ id: string }> {
  const invite = await api<{ user: { id: string }; invite_token: string }>(request, token, "POST", "/api/v1/users", {
    email: `${unique(name.split(" ")[0])}@example.com`.toLowerCase(),
    full_name: name,
    role: "responder",
  });
  await request.post("/api/v1/auth/accept-invite", { data: { token: invite.invite_token, password: PASSWORD } });
  return invite.user;
}

function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

test.describe("a schedule", () => {
  // The refused restriction below is a 422 the browser logs; the form shows it.
  test.use({ allowedConsole: [/status of 422/] });

  test("an admin makes a schedule, sees its two weeks, and an override made from the timeline wins", async ({
    page,
    request,
  }) => {
    const owner = await registerViaApi(request);
    await teammate(request, owner.access_token, "Grace Hopper");
    await signIn(page, owner.email);
    await page.getByRole("link", { name: "Schedules" }).click();
    await expect(page.getByText("No schedules yet.")).toBeVisible();

    const form = page.getByRole("form", { name: "New schedule" });
    await form.getByLabel("Name", { exact: true }).fill("Primary");
    const layer = form.getByRole("group", { name: "Layer 1", exact: true });
    await layer.getByLabel("Layer 1: add participant").selectOption({ label: "Olivia Owner" });
    await layer.getByLabel("Layer 1: add participant").selectOption({ label: "Grace Hopper" });
    await layer.getByLabel("Rotation").selectOption("daily");
    await layer.getByLabel("Starts on").fill(today());
    await layer.getByLabel("Handoff at").fill("00:00");
    await layer.getByLabel("Time zone").fill("UTC");
    // A window whose start and end are equal (and not 00:00) is the API's 422, shown where it belongs.
    await layer.getByRole("button", { name: "Add restriction" }).click();
    const restriction = layer.getByRole("group", { name: "Layer 1 restriction 1" });
    await restriction.getByLabel("From").fill("10:00");
    await restriction.getByLabel("Until").fill("10:00");
    await form.getByRole("button", { name: "Create schedule" }).click();
    await expect(restriction.getByText("a window's start and end differ")).toBeVisible();
    await restriction.getByRole("button", { name: "Remove restriction" }).click();
    await form.getByRole("button", { name: "Create schedule" }).click();

    await expect(page.getByRole("heading", { name: "Primary" })).toBeVisible();
    const timeline = page.getByTestId("timeline");
    // Daily handoffs at midnight UTC: both people take turns across the two weeks.
    await expect(timeline.getByRole("button", { name: /^You, / }).first()).toBeVisible();
    await expect(timeline.getByRole("button", { name: /^Grace Hopper, / }).first()).toBeVisible();
    await expect(timeline.getByRole("button", { name: /\(override\)/ })).toHaveCount(0);

    // Pick one of the owner's shifts and have Grace cover it.
    await timeline
      .getByRole("button", { name: /^You, / })
      .nth(1)
      .click();
    const override = page.getByRole("form", { name: "New override" });
    await expect(override.getByLabel("From")).not.toHaveValue("");
    await override.getByLabel("Who covers").selectOption({ label: "Grace Hopper" });
    await override.getByRole("button", { name: "Add override" }).click();
    await expect(timeline.getByRole("button", { name: /^Grace Hopper, .*\(override\)$/ })).toHaveCount(1);
    await expect(page.getByTestId("overrides")).toContainText("Grace Hopper");
  });
});

test("an admin makes a team, a policy paging it and a routing rule, and sees their shifts and calendar", async ({
  page,
  request,
}) => {
  const owner = await registerViaApi(request);
  const schedule = await api<{ id: string }>(request, owner.access_token, "POST", "/api/v1/schedules", {
    name: "Database",
    layers: [
      {
        participants: [owner.user.id],
        rotation: "weekly",
        start_date: today(),
        handoff_time: "00:00",
        time_zone: "UTC",
      },
    ],
  });
  await signIn(page, owner.email);

  await page.getByRole("link", { name: "Teams", exact: true }).click();
  await expect(page.getByText("No teams yet.")).toBeVisible();
  const team = page.getByRole("form", { name: "New team" });
  await team.getByLabel("Name").fill("DBA");
  await team.getByLabel("Add member").selectOption({ label: "Olivia Owner" });
  await team.getByRole("button", { name: "Create team" }).click();
  await expect(page.getByTestId("teams")).toContainText("every member");

  await page.getByRole("link", { name: "Escalation policies" }).click();
  await expect(page.getByText("No escalation policies yet.")).toBeVisible();
  const form = page.getByRole("form", { name: "New escalation policy" });
  await form.getByLabel("Name").fill("Database on-call");
  await form.getByLabel("Step 1: add target").selectOption({ label: "Database" });
  await form.getByRole("button", { name: "Add step" }).click();
  await form.getByLabel("Step 2: add target").selectOption({ label: "Olivia Owner" });
  await form.getByLabel("Step 2: add target").selectOption({ label: "DBA" });
  await form.getByLabel("Step 2: then wait (minutes)").fill("10");
  await form.getByRole("button", { name: "Create policy" }).click();
  const policies = page.getByTestId("policies");
  await expect(policies).toContainText("Database on-call");
  await expect(policies).toContainText("Notify on call in Database, then wait 5 min");
  await expect(policies).toContainText("Notify You, team DBA, then wait 10 min");
  // Edited in place: the whole policy is replaced.
  await policies
    .getByRole("row", { name: /Database on-call/ })
    .getByRole("button", { name: "Edit" })
    .click();
  const edit = page.getByRole("form", { name: "Edit Database on-call" });
  await edit.getByLabel("Step 2: then wait (minutes)").fill("15");
  await edit.getByRole("button", { name: "Save policy" }).click();
  await expect(policies).toContainText("Notify You, team DBA, then wait 15 min");

  const routing = page.getByRole("form", { name: "Routing" });
  await routing.getByRole("button", { name: "Add rule" }).click();
  await routing.getByLabel("Rule 1: service").fill("postgres");
  await routing.getByLabel("Rule 1: policy").selectOption({ label: "Database on-call" });
  await routing.getByRole("group", { name: "Rule 1: severities" }).getByText("critical").click();
  // A label the incident lacks reads as "", so this holds for the label-less lookup below.
  await routing.getByLabel("Rule 1: matchers").fill("cluster!=staging");
  await routing.getByRole("button", { name: "Save routing" }).click();
  await expect(routing.getByText("Saved.")).toBeVisible();
  const saved = await api<{ rules: { matchers: unknown[] }[] }>(request, owner.access_token, "GET", "/api/v1/routing");
  expect(saved.rules[0].matchers).toEqual([{ label: "cluster", op: "!=", value: "staging" }]);
  // The API pages the schedule's on-call (the owner) for a critical postgres incident now.
  const who = await api<{ user_ids: string[] }>(
    request,
    owner.access_token,
    "GET",
    "/api/v1/services/postgres/on-call",
  );
  expect(who.user_ids).toEqual([owner.user.id]);

  await page.getByRole("link", { name: "My shifts" }).click();
  const mine = page.getByTestId("my-shifts");
  await expect(mine.getByRole("link", { name: "Database" }).first()).toBeVisible();
  await page.getByRole("button", { name: "Show my calendar address" }).click();
  const address = (await page.getByTestId("secret-value").textContent()) ?? "";
  const ics = await request.get(address);
  expect(ics.status()).toBe(200);
  expect(await ics.text()).toContain("BEGIN:VCALENDAR");
  // Regenerating makes the old address stop working.
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: "Regenerate address" }).click();
  await expect(page.getByTestId("secret-value")).not.toHaveText(address);
  expect((await request.get(address)).status()).toBe(404);
  expect(schedule.id).toBeTruthy();
});
