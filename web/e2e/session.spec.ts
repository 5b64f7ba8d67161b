// Sessions in the browser: signing out, a wrong password, a silent refresh, and a session ended
// elsewhere that sends you to the login page and back without losing what you typed.
import { api, expect, PASSWORD, registerViaApi, signIn, test } from "./fixtures";

test.use({ allowedConsole: [/status of 401/] });

function storedSession(page: import("@playwright/test").Page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("sre-copilot.session") ?? "null"));
}

test("a wrong password is refused without saying which half was wrong; signing out ends the login", async ({
  page,
  request,
}) => {
  const owner = await registerViaApi(request);
  await page.goto("/login");
  await page.getByLabel("Email").fill(owner.email);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("That email and password do not match.");

  await signIn(page, owner.email);
  const { refreshToken } = await storedSession(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  expect(await storedSession(page)).toBeNull();
  // The login is over on the server too: its refresh token is refused.
  const refused = await request.post("/api/v1/auth/refresh", { data: { refresh_token: refreshToken } });
  expect(refused.status()).toBe(401);
  // And the console's pages send you back to sign in.
  await page.goto("/incidents");
  await expect(page).toHaveURL(/\/login\?next=%2Fincidents/);
});

test("an access token the API refuses is renewed silently with the refresh token", async ({ page, request }) => {
  const owner = await registerViaApi(request);
  await api(request, owner.access_token, "POST", "/api/v1/incidents", {
    title: "Checkout errors",
    description: "",
    service_name: "checkout",
    severity: "critical",
  });
  await signIn(page, owner.email);
  const before = await storedSession(page);
  // As if the 15-minute access token had run out while the tab slept.
  await page.evaluate(() => {
    const session = JSON.parse(localStorage.getItem("sre-copilot.session")!);
    localStorage.setItem("sre-copilot.session", JSON.stringify({ ...session, accessToken: "expired.token.value" }));
  });
  await page.goto("/incidents");
  await expect(page.getByRole("row", { name: /Checkout errors/ })).toBeVisible();
  await expect(page.getByTestId("connection")).toHaveAttribute("data-state", "live");
  await expect(page).toHaveURL(/\/incidents$/);
  const after = await storedSession(page);
  expect(after.accessToken).not.toBe("expired.token.value");
  expect(after.refreshToken).not.toBe(before.refreshToken); // rotated: the old one is used up
});

test("a session ended elsewhere returns to the login page and back, keeping what was typed", async ({
  page,
  request,
}) => {
  const owner = await registerViaApi(request);
  await signIn(page, owner.email);
  await page.goto("/incidents/new");
  await page.getByLabel("Title").fill("Queue backlog growing on billing-worker");
  await page.getByLabel("Service").fill("billing-worker");
  await page.getByLabel("Severity").selectOption("medium");
  await page.getByLabel("Description").fill("Backlog at 40k messages and climbing since 09:10.");

  // Meanwhile the password is changed from another session: every other session ends at once.
  const other = await request.post("/api/v1/auth/login", { data: { email: owner.email, password: PASSWORD } });
  const newPassword = "a-brand-new-passphrase-42";
  await api(request, (await other.json()).access_token, "POST", "/api/v1/auth/password", {
    current_password: PASSWORD,
    new_password: newPassword,
  });

  // The console learns it over the live feed (or at the latest on its next request), and sends the
  // person to sign in again.
  await expect(page).toHaveURL(/\/login\?next=%2Fincidents%2Fnew&expired=1/);
  await expect(page.getByTestId("session-expired")).toBeVisible();
  await page.getByLabel("Email").fill(owner.email);
  await page.getByLabel("Password").fill(newPassword);
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page).toHaveURL(/\/incidents\/new$/);
  await expect(page.getByLabel("Title")).toHaveValue("Queue backlog growing on billing-worker");
  await expect(page.getByLabel("Service")).toHaveValue("billing-worker");
  await expect(page.getByLabel("Severity")).toHaveValue("medium");
  await expect(page.getByLabel("Description")).toHaveValue("Backlog at 40k messages and climbing since 09:10.");
  await page.getByRole("button", { name: "Open incident" }).click();
  await expect(page.getByRole("heading", { name: "Queue backlog growing on billing-worker" })).toBeVisible();
});
