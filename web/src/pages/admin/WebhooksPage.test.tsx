import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fakeFetch, renderWithApp, signedInClient } from "../../test/utils";
import { WebhooksPage } from "./WebhooksPage";

// The page lights up when the server's document lists the webhook routes.
const SPEC = { paths: { "/api/v1/integrations/webhooks": { get: {}, post: {} } } };

const SLACK = {
  id: "w1",
  kind: "slack",
  name: "#incidents",
  url: "https://hooks.slack.com/services/T/B/x",
  event_types: ["incident.created"],
  enabled: true,
  interactive: true,
  created_by: "u_1",
  created_at: "2026-12-02T10:00:00Z",
};

describe("the outgoing webhooks page", () => {
  beforeEach(() => {
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify(SPEC), { status: 200 }));
  });
  afterEach(() => vi.unstubAllGlobals());

  it("sends a Slack webhook's signing secret, which turns its buttons on", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) =>
      call.method === "POST"
        ? { status: 201, body: { ...SLACK, secret: null } }
        : { status: 200, body: { items: [SLACK], next_cursor: null } },
    );
    renderWithApp(<WebhooksPage />, signedInClient(fetch));
    const form = await screen.findByRole("form", { name: "New webhook" });
    expect(within(form).queryByLabelText(/Slack signing secret/)).toBeNull(); // generic by default
    await user.selectOptions(within(form).getByLabelText("Kind"), "slack");
    await user.type(within(form).getByLabelText("Name"), "#incidents");
    await user.type(within(form).getByLabelText("URL"), SLACK.url);
    await user.type(within(form).getByLabelText(/Slack signing secret/), "8f742231b10e8888abcd99yyyzzz85a5");
    await user.click(within(form).getByRole("button", { name: "Create webhook" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "POST")).toHaveLength(1));
    expect(calls.find((c) => c.method === "POST")?.body).toMatchObject({
      kind: "slack",
      name: "#incidents",
      slack_signing_secret: "8f742231b10e8888abcd99yyyzzz85a5",
    });
    expect(await screen.findByText("buttons")).toBeInTheDocument();
  });

  it("sends no signing secret for other kinds", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) =>
      call.method === "POST"
        ? { status: 201, body: { ...SLACK, kind: "generic", interactive: false, secret: "s" } }
        : { status: 200, body: { items: [], next_cursor: null } },
    );
    renderWithApp(<WebhooksPage />, signedInClient(fetch));
    const form = await screen.findByRole("form", { name: "New webhook" });
    await user.type(within(form).getByLabelText("Name"), "pager gateway");
    await user.type(within(form).getByLabelText("URL"), "https://hooks.example.com/sre");
    await user.click(within(form).getByRole("button", { name: "Create webhook" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "POST")).toHaveLength(1));
    expect(calls.find((c) => c.method === "POST")?.body).not.toHaveProperty("slack_signing_secret");
  });
});
