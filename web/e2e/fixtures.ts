import { test as base, expect, type APIRequestContext, type Page } from "@playwright/test";

export const PASSWORD = "correct-horse-battery-staple";

let counter = 0;
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${process.pid}-${counter}`;
}

export interface Session {
  access_token: string;
  refresh_token: string;
  user: { id: string; email: string; full_name: string };
  tenant: { id: string; name: string };
}

/** A fresh organisation through the public API (for set-up that is not what the test is about). */
export async function registerViaApi(
  request: APIRequestContext,
  org = unique("Org"),
  owner: { name: string; email: string } = { name: "Olivia Owner", email: `${unique("owner")}@example.com` },
): Promise<Session & { email: string }> {
  const email = owner.email.toLowerCase();
  const response = await request.post("/api/v1/auth/register", {
    data: { email, password: PASSWORD, full_name: owner.name, tenant_name: org },
  });
  expect(response.status(), await response.text()).toBe(201);
  return { ...(await response.json()), email };
}

export async function api<T = unknown>(
  request: APIRequestContext,
  token: string,
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  data?: unknown,
): Promise<T> {
  const response = await request.fetch(path, { method, data, headers: { Authorization: `Bearer ${token}` } });
  expect(response.ok(), `${method} ${path}: ${response.status()} ${await response.text()}`).toBeTruthy();
  return (response.status() === 204 ? undefined : await response.json()) as T;
}

export async function signIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
}

/** Marks the document, so a later check can prove the page was never reloaded. */
export async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
}

export async function expectNoReload(page: Page): Promise<void> {
  expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
}

// Requests whose 404 is a documented answer the console turns into what it shows (the browser logs
// every 4xx of a fetch as a console error): an incident's postmortem before its first draft.
const ABSENT_UNTIL_MADE = [/\/api\/v1\/incidents\/[^/]+\/postmortem$/];

function answeredAsDocumented(text: string, url: string): boolean {
  if (!text.includes("status of 404")) return false;
  const path = url ? new URL(url).pathname : "";
  return ABSENT_UNTIL_MADE.some((re) => re.test(path));
}

interface Fixtures {
  /** Console messages a test expects (e.g. the 401 a revoked session gets). */
  allowedConsole: RegExp[];
  /** Collects console errors and page errors of every page the test opens; none may remain. */
  consoleGuard: { watch(page: Page): void };
}

export const test = base.extend<Fixtures>({
  allowedConsole: [[], { option: true }],
  consoleGuard: [
    async ({ context, allowedConsole }, use) => {
      const problems: string[] = [];
      const watch = (page: Page) => {
        page.on("console", (message) => {
          if (message.type() !== "error" && message.type() !== "warning") return;
          const text = message.text();
          if (answeredAsDocumented(text, message.location().url)) return;
          if (!allowedConsole.some((re) => re.test(text))) problems.push(`${message.type()}: ${text}`);
        });
        page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
      };
      context.on("page", watch);
      for (const page of context.pages()) watch(page);
      await use({ watch });
      expect(problems, "console errors").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
