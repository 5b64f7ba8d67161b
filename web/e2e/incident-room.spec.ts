// The flow in real browsers against a real platform: register → create an incident → see the
// hypotheses arrive without reloading → move it to resolved; a second browser of the same
// organisation sees each change live.
import { expectNoReload, markDocument, PASSWORD, test, expect, unique } from "./fixtures";

test("register, open an incident, watch hypotheses arrive and resolve it while a teammate watches live", async ({
  page,
  browser,
  consoleGuard,
}) => {
  const org = unique("Acme");
  const email = `${unique("john")}@acme.example`.toLowerCase();

  // 1. Register the organisation through the form.
  await page.goto("/");
  await expect(page).toHaveURL(/\/login/);
  await page.getByRole("link", { name: "Register your organisation" }).click();
  await page.getByLabel("Organisation").fill(org);
  await page.getByLabel("Your name").fill("John Doe");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create organisation" }).click();
  await expect(page.getByText("At least 8 characters.")).toBeVisible(); // client-side validation
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create organisation" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByText(org, { exact: true })).toBeVisible();
  await expect(page.getByTestId("connection")).toHaveAttribute("data-state", "live");

  // 2. Invite a teammate, who joins in a second browser through the one-time link.
  await page.getByRole("link", { name: "People & roles" }).click();
  const invite = page.getByRole("form", { name: "Invite someone" });
  await invite.getByLabel("Email").fill(`${unique("ada")}@acme.example`.toLowerCase());
  await invite.getByLabel("Name").fill("Ada Lovelace");
  await invite.getByLabel("Role").selectOption("responder");
  await invite.getByRole("button", { name: "Invite" }).click();
  const link = (await page.getByTestId("secret-value").textContent()) ?? "";
  expect(link).toContain("/accept-invite?token=");
  await expect(page.getByRole("cell", { name: /^Ada Lovelace/ })).toBeVisible();

  const teammate = await browser.newContext();
  const ada = await teammate.newPage();
  consoleGuard.watch(ada);
  await ada.goto(link);
  await ada.getByLabel("Choose a password").fill("analytical-engine-1843");
  await ada.getByRole("button", { name: "Join" }).click();
  await expect(ada.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(ada.getByTestId("my-role")).toHaveText("responder");
  await expect(ada.getByTestId("connection")).toHaveAttribute("data-state", "live");
  await markDocument(ada);

  // 3. Open an incident with the keyboard-friendly form ("n" opens it; validation first).
  await page.getByRole("link", { name: "Dashboard" }).click();
  await page.keyboard.press("n");
  await expect(page.getByRole("heading", { name: "New incident" })).toBeVisible();
  await markDocument(page);
  await page.getByLabel("Title").fill("High CPU usage on payment-api");
  await page.getByLabel("Service").fill("payment api");
  await page.getByRole("button", { name: "Open incident" }).click();
  await expect(page.getByText("Letters, digits and . _ : / - only (no spaces).")).toBeVisible();
  await expect(page.getByText("Pick a severity.")).toBeVisible();
  await page.getByLabel("Service").fill("payment-api");
  await page.getByLabel("Severity").selectOption("high");
  await page.getByLabel("Description").fill("CPU spiked to 90% after the deployment at 10:30; p99 latency doubled.");
  await page.getByLabel("Description").press("Control+Enter");

  // 4. The incident page: the hypotheses arrive by themselves, ranked, with confidence and evidence.
  await expect(page.getByRole("heading", { name: "High CPU usage on payment-api" })).toBeVisible();
  await expect(page.getByTestId("state-badge").first()).toHaveText("Detected");
  const hypotheses = page.getByTestId("hypothesis");
  await expect(hypotheses).toHaveCount(3);
  await expect(hypotheses.first()).toContainText(/CPU/);
  await expect(hypotheses.first().getByRole("meter", { name: "Confidence" })).toBeVisible();
  await expect(hypotheses.first().getByText("Evidence (")).toBeVisible();
  await expectNoReload(page);
  const incidentUrl = page.url();

  // Feedback on the top hypothesis is counted; asking for a fresh generation brings generation 2 live.
  await hypotheses
    .first()
    .getByRole("button", { name: /This is it/ })
    .click();
  await expect(hypotheses.first().getByRole("button", { name: /This is it/ })).toContainText("1");
  await page.getByRole("button", { name: /Regenerate/ }).click();
  await expect(page.getByText(/Generation 2 · rules engine · after regenerate/)).toBeVisible();
  await expect(hypotheses).toHaveCount(3);

  // The teammate saw it arrive on their dashboard, live.
  await expect(ada.getByTestId("ticker")).toContainText("High CPU usage on payment-api");
  await expect(ada.getByTestId("ticker")).toContainText(/hypotheses ready/);
  await ada.goto(incidentUrl);
  await markDocument(ada);
  await expect(ada.getByTestId("hypothesis")).toHaveCount(3);

  // 5. Move it along: only the allowed moves are offered, and the teammate sees each one live.
  const moves = page.getByRole("group", { name: "Change state" }).getByRole("button");
  await expect(moves).toHaveText(["Acknowledge", "Investigate", "Resolve"]);
  await page.getByLabel("Note for the change (optional)").fill("looking at it");
  await page.getByTestId("move-acknowledged").click();
  await expect(page.getByTestId("state-badge").first()).toHaveText("Acknowledged");
  await expect(moves).toHaveText(["Investigate", "Resolve"]);
  await expect(ada.getByTestId("state-badge").first()).toHaveText("Acknowledged");
  await expect(ada.getByTestId("timeline")).toContainText("looking at it");

  await page.getByTestId("move-investigating").click();
  await expect(moves).toHaveText(["Resolve"]);
  await expect(ada.getByTestId("state-badge").first()).toHaveText("Investigating");

  // The teammate writes a note; the first browser sees it without reloading.
  await ada.getByLabel("Add a note").fill("rolled back payment-api to 1.4.1");
  await ada.getByRole("button", { name: "Post note" }).click();
  await expect(page.getByTestId("timeline")).toContainText("rolled back payment-api to 1.4.1");

  await page.getByTestId("move-resolved").click();
  await expect(page.getByTestId("state-badge").first()).toHaveText("Resolved");
  await expect(moves).toHaveText(["Reopen"]);
  await expect(ada.getByTestId("state-badge").first()).toHaveText("Resolved");
  await expect(ada.getByRole("group", { name: "Change state" }).getByRole("button")).toHaveText(["Reopen"]);

  // Neither browser ever reloaded: everything came over the live feed.
  await expectNoReload(page);
  await expectNoReload(ada);

  // 6. The list shows it resolved, and its filters work.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Incidents", exact: true }).click();
  await expect(page.getByRole("row", { name: /High CPU usage on payment-api/ })).toContainText("Resolved");
  await page.getByRole("group", { name: "State" }).getByText("Detected").click();
  await expect(page.getByText("No incidents match these filters.")).toBeVisible();
  await page.getByRole("button", { name: "Clear filters" }).click();
  await expect(page.getByRole("row", { name: /High CPU usage on payment-api/ })).toBeVisible();
  await teammate.close();
});
