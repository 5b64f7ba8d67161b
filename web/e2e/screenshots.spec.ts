// Every main page against a seeded organisation: each must render without console errors. With
// SCREENSHOTS=1 the pictures go to docs/screenshots/ (for the README); otherwise to test-results.
import type { Page } from "@playwright/test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { api, expect, PASSWORD, registerViaApi, signIn, test } from "./fixtures";

const DOCS = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..", "docs", "screenshots");

const INCIDENTS = [
  [
    "Checkout latency p99 above 2 s",
    "checkout-api",
    "critical",
    "p99 latency jumped from 300 ms to 2.4 s at 09:12, right after the 09:05 deploy of checkout-api 3.8.0; error rate 4%.",
  ],
  [
    "High CPU usage on payment-api",
    "payment-api",
    "high",
    "CPU spiked to 90% after the deployment at 10:30; pods throttled, queue depth growing.",
  ],
  [
    "Disk almost full on postgres-primary",
    "postgres-primary",
    "high",
    "Disk usage at 93% and climbing 1%/hour; WAL archiving looks stuck.",
  ],
  [
    "Login errors for SSO users",
    "auth-gateway",
    "medium",
    "About 5% of SAML logins fail with 'invalid signature' since the certificate rotation this morning.",
  ],
  [
    "Search results stale",
    "search-indexer",
    "low",
    "Index lag of 25 minutes; the indexer consumer restarted twice overnight (OOMKilled).",
  ],
  [
    "Memory leak in notification-worker",
    "notification-worker",
    "medium",
    "RSS grows 200 MB/hour until the pod is OOMKilled; started with 2.14.0.",
  ],
] as const;

async function shoot(page: Page, name: string, testInfo: { outputPath: (n: string) => string }) {
  const path = process.env.SCREENSHOTS ? join(DOCS, `${name}.png`) : testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path, animations: "disabled" });
}

test("the main pages render with real data (and make the README's screenshots)", async ({
  page,
  request,
}, testInfo) => {
  test.setTimeout(120_000);
  // Addresses of a domain of its own, so the pictures read naturally and runs never collide.
  const domain = `acme-${Math.random().toString(36).slice(2, 7)}.example`;
  const owner = await registerViaApi(request, "Acme Corp", { name: "John Doe", email: `john@${domain}` });
  const token = owner.access_token;
  const people = [
    ["Ada Lovelace", "responder"],
    ["Grace Hopper", "admin"],
    ["Linus Pauling", "viewer"],
  ] as const;
  const ids: string[] = [];
  for (const [name, role] of people) {
    const invite = await api<{ user: { id: string }; invite_token: string }>(request, token, "POST", "/api/v1/users", {
      email: `${name.split(" ")[0].toLowerCase()}@${domain}`,
      full_name: name,
      role,
    });
    ids.push(invite.user.id);
    if (role !== "viewer") {
      await request.post("/api/v1/auth/accept-invite", { data: { token: invite.invite_token, password: PASSWORD } });
    }
  }
  // Webhooks that deliver to a receiver of this test (the platform allows private targets here).
  const receiver = createServer((req, res) => req.resume().on("end", () => res.writeHead(200).end("ok")));
  await new Promise<void>((done) => receiver.listen(0, "127.0.0.1", done));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  await api(request, token, "POST", "/api/v1/integrations/webhooks", {
    kind: "slack",
    name: "#incidents on Slack",
    url: `${hook}/slack`,
  });
  await api(request, token, "POST", "/api/v1/integrations/webhooks", {
    kind: "generic",
    name: "status-page sync",
    url: `${hook}/status`,
    event_types: ["incident.created", "incident.state_changed"],
  });
  const created: { id: string }[] = [];
  for (const [title, service, severity, description] of INCIDENTS) {
    created.push(
      await api(request, token, "POST", "/api/v1/incidents", { title, service_name: service, severity, description }),
    );
  }
  const move = (i: number, to: string, note = "") =>
    api(request, token, "POST", `/api/v1/incidents/${created[i].id}/transitions`, { to, note });
  await move(1, "acknowledged", "Paging the payments on-call.");
  await move(1, "investigating", "Rolling back 10:30 deploy to confirm.");
  await move(2, "acknowledged");
  await move(4, "resolved", "Raised the indexer's memory limit.");
  await move(5, "investigating");
  await api(request, token, "PATCH", `/api/v1/incidents/${created[1].id}`, { assignee_id: ids[0] });
  await api(request, token, "POST", `/api/v1/incidents/${created[1].id}/notes`, {
    body: "Throttling started exactly at the deploy; flame graph shows JSON serialisation in the hot path.",
  });

  await page.goto("/login");
  await shoot(page, "login", testInfo);
  await signIn(page, owner.email);
  await expect(page.getByTestId("connection")).toHaveAttribute("data-state", "live");
  // A few things happen while the dashboard is open: the live ticker shows them.
  await move(0, "acknowledged", "On it.");
  await move(3, "investigating");
  await api(request, token, "POST", "/api/v1/incidents", {
    title: "5xx spike on edge-proxy",
    service_name: "edge-proxy",
    severity: "critical",
    description: "502s from the edge for 3% of requests in eu-west-1.",
  });
  await expect(page.getByTestId("ticker")).toContainText("5xx spike on edge-proxy");
  await expect(page.getByTestId("ticker")).toContainText("hypotheses ready");
  await shoot(page, "dashboard", testInfo);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Incidents", exact: true }).click();
  await expect(page.getByRole("row")).toHaveCount(8);
  await shoot(page, "incidents", testInfo);

  await page.getByRole("link", { name: "High CPU usage on payment-api" }).click();
  await expect(page.getByTestId("hypothesis")).toHaveCount(3);
  await expect(page.getByTestId("timeline")).toContainText("flame graph");
  await shoot(page, "incident", testInfo);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "New incident" }).click();
  await page.getByLabel("Title").fill("Elevated error rate on orders-api");
  await page.getByLabel("Service").fill("orders api");
  await page.getByRole("button", { name: "Open incident" }).click();
  await expect(page.getByText("Pick a severity.")).toBeVisible();
  await shoot(page, "new-incident", testInfo);
  await page.getByRole("button", { name: "Clear" }).click();

  await page.getByRole("link", { name: "People & roles" }).click();
  await expect(page.getByRole("cell", { name: /^Grace Hopper/ })).toBeVisible();
  await shoot(page, "people", testInfo);

  await page.getByRole("link", { name: "Integration keys" }).click();
  const form = page.getByRole("form", { name: "New integration key" });
  await form.getByLabel("Name").fill("alertmanager-prod");
  await form.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByTestId("secret-value")).toContainText("sck_");
  await shoot(page, "integration-keys", testInfo);

  await page.getByRole("link", { name: "Webhooks" }).click();
  await page
    .getByRole("row", { name: /#incidents on Slack/ })
    .getByRole("button", { name: "Deliveries" })
    .click();
  await expect(page.getByTestId("deliveries")).toContainText("succeeded");
  await page.getByRole("region", { name: "Webhooks" }).evaluate((el) => el.scrollIntoView({ block: "start" }));
  await shoot(page, "webhooks", testInfo);
  receiver.close();

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`/incidents/${created[1].id}`);
  await expect(page.getByTestId("hypothesis")).toHaveCount(3);
  await shoot(page, "phone-incident", testInfo);
  await page.goto("/");
  await expect(page.getByTestId("open-total")).toBeVisible();
  await page.getByRole("button", { name: "Menu" }).click();
  await expect(page.getByRole("link", { name: "Incidents", exact: true })).toBeVisible();
  await shoot(page, "phone-menu", testInfo);
});
