import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { fakeFetch, renderWithApp, signedInClient } from "../../test/utils";
import { KeysPage } from "./KeysPage";

const KEY = {
  id: "k_1",
  name: "alertmanager-prod",
  scopes: ["alerts:write"],
  created_by: "u_1",
  created_at: "2026-12-02T10:00:00Z",
  revoked_at: null,
};

describe("the integration keys page", () => {
  it("shows a new alerts key once, with where each kind of sender points", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) => {
      if (call.method === "POST") return { status: 201, body: { ...KEY, key: "sck_k_1_secret" } };
      if (call.url.includes("/api/v1/integration-keys")) return { status: 200, body: { items: [], next_cursor: null } };
      return { status: 200, body: { items: [], next_cursor: null } };
    });
    renderWithApp(<KeysPage />, signedInClient(fetch));
    const name = await screen.findByLabelText("Name");
    await user.type(name, "alertmanager-prod");
    await user.click(screen.getByRole("button", { name: /Create/ }));
    await waitFor(() => expect(calls.filter((c) => c.method === "POST")).toHaveLength(1));
    expect(calls.find((c) => c.method === "POST")?.body).toMatchObject({ scopes: ["alerts:write"] });
    const senders = await screen.findByRole("list", { name: "Where alerts go" });
    expect(within(senders).getByText(/\/api\/v1\/integrations\/alertmanager$/)).toBeInTheDocument();
    expect(within(senders).getByText(/\/api\/v1\/integrations\/pagerduty\/v2\/enqueue$/)).toBeInTheDocument();
  });
});
