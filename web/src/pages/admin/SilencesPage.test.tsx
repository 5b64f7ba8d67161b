import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { SilenceRead } from "../../api/types";
import { fakeFetch, renderWithApp, signedInClient } from "../../test/utils";
import { parseMatchers, SilencesPage } from "./SilencesPage";

function silence(id: string, name: string, state: SilenceRead["state"], extra: Partial<SilenceRead> = {}): SilenceRead {
  return {
    id,
    name,
    services: ["checkout"],
    matchers: [],
    starts_at: "2026-11-25T22:00:00Z",
    duration_minutes: 120,
    recurrence: null,
    state,
    next_change_at: state === "expired" ? null : "2026-11-26T00:00:00Z",
    created_by: "u_1",
    created_at: "2026-11-25T10:00:00Z",
    ...extra,
  };
}

const LIST = {
  items: [
    silence("s3", "PG upgrade", "active"),
    silence("s2", "Backups", "upcoming", {
      services: [],
      matchers: [{ label: "instance", op: "=~", value: "db-.*" }],
      recurrence: { weekdays: ["sun"], timezone: "Europe/Paris", until: null },
    }),
    silence("s1", "Old window", "expired"),
  ],
  next_cursor: null,
};

describe("the maintenance windows page", () => {
  it("lists active and upcoming windows, and expired ones on demand", async () => {
    const user = userEvent.setup();
    const { fetch } = fakeFetch((call) =>
      call.url.includes("/api/v1/integrations/silences") ? { status: 200, body: LIST } : { status: 200, body: {} },
    );
    renderWithApp(<SilencesPage />, signedInClient(fetch));
    const table = await screen.findByTestId("silences");
    expect(within(table).getByText("PG upgrade")).toBeInTheDocument();
    expect(within(table).getByText("Backups")).toBeInTheDocument();
    expect(within(table).getByText("instance=~db-.*")).toBeInTheDocument();
    expect(within(table).getByText(/every sun \(Europe\/Paris\)/)).toBeInTheDocument();
    expect(within(table).queryByText("Old window")).toBeNull();
    await user.selectOptions(screen.getByLabelText("Show"), "expired");
    expect(within(screen.getByTestId("silences")).getByText("Old window")).toBeInTheDocument();
  });

  it("sends a window made of services and matchers, and refuses one that names neither", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) =>
      call.method === "POST"
        ? { status: 201, body: LIST.items[0] }
        : { status: 200, body: { items: [], next_cursor: null } },
    );
    renderWithApp(<SilencesPage />, signedInClient(fetch));
    const form = await screen.findByRole("form", { name: "New silence" });
    await user.type(within(form).getByLabelText("Name"), "PG upgrade");
    await user.type(within(form).getByLabelText("Starts"), "2026-11-25T22:00");
    await user.click(within(form).getByRole("button", { name: "Create window" }));
    expect(await within(form).findByText("Name a service or a matcher.")).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);

    await user.type(within(form).getByLabelText("Services"), "checkout, billing");
    await user.type(within(form).getByLabelText("Matchers"), "env=staging");
    await user.click(within(form).getByRole("button", { name: "Create window" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "POST")).toHaveLength(1));
    const post = calls.find((c) => c.method === "POST");
    expect(post?.body).toMatchObject({
      name: "PG upgrade",
      services: ["checkout", "billing"],
      matchers: [{ label: "env", op: "=", value: "staging" }],
      duration_minutes: 60,
      recurrence: null,
    });
    expect(new Date((post?.body as { starts_at: string }).starts_at).getTime()).toBe(
      new Date("2026-11-25T22:00").getTime(),
    );
  });
});

describe("matchers as typed", () => {
  it("reads each operator and names the line it cannot read", () => {
    expect(parseMatchers("env=prod\nteam != db\ninstance=~db-.*\n\ncanary!~true")).toEqual({
      matchers: [
        { label: "env", op: "=", value: "prod" },
        { label: "team", op: "!=", value: "db" },
        { label: "instance", op: "=~", value: "db-.*" },
        { label: "canary", op: "!~", value: "true" },
      ],
      bad: null,
    });
    expect(parseMatchers("env=prod\nnot a matcher").bad).toBe("not a matcher");
  });
});
