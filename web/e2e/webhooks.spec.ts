// Outgoing webhooks end to end: the console creates one pointing at a receiver this test runs, an
// incident opens, the platform delivers it (signed), and the delivery log in the console says so.
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { api, expect, registerViaApi, signIn, test } from "./fixtures";

test("a generic webhook is created, shows its secret once, and its deliveries are listed", async ({
  page,
  request,
}) => {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const port = (receiver.address() as AddressInfo).port;

  try {
    const owner = await registerViaApi(request);
    await signIn(page, owner.email);
    await page.getByRole("link", { name: "Webhooks" }).click();
    await expect(page.getByText("No webhooks yet.")).toBeVisible();

    const form = page.getByRole("form", { name: "New webhook" });
    await form.getByLabel("Name").fill("on-call bot");
    await form.getByLabel("URL").fill(`http://127.0.0.1:${port}/hook`);
    await form.getByText("incident.state_changed").click(); // off
    await form.getByText("hypothesis.generated").click(); // off
    await form.getByRole("button", { name: "Create webhook" }).click();
    await expect(page.getByTestId("secret-value")).not.toBeEmpty();
    const row = page.getByRole("row", { name: /on-call bot/ });
    await expect(row).toContainText("enabled");
    await expect(row).toContainText("incident.created");
    await expect(row).not.toContainText("hypothesis.generated");

    await api(request, owner.access_token, "POST", "/api/v1/incidents", {
      title: "Webhook smoke",
      description: "",
      service_name: "hooks",
      severity: "low",
    });
    await expect.poll(() => received.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(received[0].headers["sre-copilot-signature"]).toBeTruthy();
    expect(received[0].body).toContain("Webhook smoke");

    const log = page.getByTestId("deliveries");
    await expect(log).toContainText("incident.created");
    await expect(log).toContainText("succeeded");
    await expect(log).toContainText("HTTP 200");

    await row.getByRole("button", { name: "Disable" }).click();
    await expect(row).toContainText("disabled");
  } finally {
    receiver.close();
  }
});
