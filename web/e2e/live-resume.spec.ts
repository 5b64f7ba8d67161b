// The live feed resumes where it left off: the browser's websocket goes through Playwright to the
// real gateway, and the test drops it (4408, as the gateway does to a client that fell behind) while
// a change happens; the console reconnects with since=<last seq> and shows the change it missed.
import type { WebSocketRoute } from "@playwright/test";
import { api, expect, registerViaApi, signIn, test } from "./fixtures";

test("after a 4408 the console reconnects with since= and catches up on what it missed", async ({ page, request }) => {
  const owner = await registerViaApi(request);
  const incident = await api<{ id: string }>(request, owner.access_token, "POST", "/api/v1/incidents", {
    title: "Elevated 5xx on edge",
    description: "",
    service_name: "edge",
    severity: "high",
  });

  const urls: string[] = [];
  const sockets: WebSocketRoute[] = [];
  let dropped = false;
  let release!: () => void;
  const changed = new Promise<void>((resolve) => (release = resolve));
  await page.routeWebSocket(/\/api\/v1\/stream/, async (ws) => {
    urls.push(ws.url());
    sockets.push(ws);
    // A plain relay to the real gateway, except that the reconnection is held (the page's messages
    // queued) until the change it must catch up on has been made.
    const queued: (string | Buffer)[] = [];
    let server: WebSocketRoute | null = null;
    ws.onMessage((message) => (server ? server.send(message) : queued.push(message)));
    if (dropped) await changed;
    server = ws.connectToServer();
    server.onMessage((message) => ws.send(message));
    server.onClose((code, reason) => ws.close({ code, reason }));
    ws.onClose((code, reason) => server?.close({ code, reason }));
    for (const message of queued.splice(0)) server.send(message);
  });

  await signIn(page, owner.email);
  await page.goto(`/incidents/${incident.id}`);
  await expect(page.getByTestId("connection")).toHaveAttribute("data-state", "live");
  await expect(page.getByTestId("state-badge").first()).toHaveText("Detected");
  const before = urls.length; // the dashboard's connection, then this page's
  expect(urls[before - 1]).not.toContain("since=");

  dropped = true;
  await sockets[before - 1].close({ code: 4408, reason: "too slow" });
  await expect(page.getByTestId("connection")).not.toHaveAttribute("data-state", "live");
  await expect.poll(() => urls.length).toBe(before + 1);
  await api(request, owner.access_token, "POST", `/api/v1/incidents/${incident.id}/transitions`, {
    to: "investigating",
    note: "changed while the feed was down",
  });
  release();

  await expect(page.getByTestId("connection")).toHaveAttribute("data-state", "live");
  expect(urls[before]).toMatch(/since=\d+/);
  await expect(page.getByTestId("state-badge").first()).toHaveText("Investigating");
  await expect(page.getByTestId("timeline")).toContainText("changed while the feed was down");
});
