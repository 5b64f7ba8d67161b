// Admin pages against the real API: integration keys (the secret shown once, revocation) and roles.
import { api, expect, PASSWORD, registerViaApi, signIn, test } from "./fixtures";

test("an admin creates an integration key, sees its secret once, and revokes it", async ({ page, request }) => {
  const owner = await registerViaApi(request);
  await signIn(page, owner.email);
  await page.getByRole("link", { name: "Integration keys" }).click();
  await expect(page.getByText("No integration keys yet.")).toBeVisible();

  const form = page.getByRole("form", { name: "New integration key" });
  await form.getByRole("button", { name: "Create key" }).click();
  await expect(form.getByText("Name the key after what will use it.")).toBeVisible();
  await form.getByLabel("Name").fill("alertmanager-prod");
  await form.getByText("deploys:write").click();
  await form.getByRole("button", { name: "Create key" }).click();

  const secret = (await page.getByTestId("secret-value").textContent()) ?? "";
  expect(secret).toMatch(/^sck_/);
  const row = page.getByRole("row", { name: /alertmanager-prod/ });
  await expect(row).toContainText("alerts:write");
  await expect(row).toContainText("deploys:write");
  await expect(row).toContainText("active");
  // The secret works for a machine…
  const identity = await request.get("/api/v1/auth/key", { headers: { Authorization: `Bearer ${secret}` } });
  expect(identity.status()).toBe(200);
  expect((await identity.json()).name).toBe("alertmanager-prod");
  // …and is never shown again.
  await page.reload();
  await expect(page.getByTestId("secret-value")).toHaveCount(0);
  await expect(page.getByText(secret)).toHaveCount(0);

  page.once("dialog", (dialog) => void dialog.accept());
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row).toContainText("revoked");
  const refused = await request.get("/api/v1/auth/key", { headers: { Authorization: `Bearer ${secret}` } });
  expect(refused.status()).toBe(401);
});

test("an owner changes a teammate's role and the teammate's console follows", async ({
  page,
  browser,
  request,
  consoleGuard,
}) => {
  const owner = await registerViaApi(request);
  const invite = await api<{ user: { id: string; email: string }; invite_token: string }>(
    request,
    owner.access_token,
    "POST",
    "/api/v1/users",
    { email: `grace-${Date.now()}@example.com`, full_name: "Grace Hopper", role: "responder" },
  );
  await request.post("/api/v1/auth/accept-invite", { data: { token: invite.invite_token, password: PASSWORD } });

  const other = await browser.newContext();
  const grace = await other.newPage();
  consoleGuard.watch(grace);
  await signIn(grace, invite.user.email);
  await expect(grace.getByTestId("my-role")).toHaveText("responder");
  await expect(grace.getByRole("link", { name: "New incident" }).first()).toBeVisible();

  await signIn(page, owner.email);
  await page.getByRole("link", { name: "People & roles" }).click();
  await page.getByLabel("Role of Grace Hopper").selectOption("viewer");
  await expect(page.getByLabel("Role of Grace Hopper")).toHaveValue("viewer");

  // Grace's console hears of it over the live feed: viewers may read, not open incidents.
  await expect(grace.getByTestId("my-role")).toHaveText("viewer");
  await expect(grace.getByRole("link", { name: "New incident" })).toHaveCount(0);
  await other.close();
});
