import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { CorrelationPreviewRead, CorrelationRuleRead } from "../../api/types";
import { fakeFetch, renderWithApp, signedInClient } from "../../test/utils";
import { CorrelationRulesPage, parseLabels } from "./CorrelationRulesPage";

const RULE: CorrelationRuleRead = {
  id: "r1",
  name: "checkout by cluster",
  labels: ["service", "cluster"],
  window_minutes: 10,
  sources: ["pagerduty"],
  enabled: true,
  created_by: "u_1",
  created_at: "2026-12-01T10:00:00Z",
  updated_at: "2026-12-01T10:00:00Z",
};

const PREVIEW: CorrelationPreviewRead = {
  since: "2026-11-30T10:00:00Z",
  until: "2026-12-01T10:00:00Z",
  alerts_considered: 7,
  truncated: false,
  incidents_before: 5,
  incidents_after: 4,
  clusters: [
    {
      labels: { service: "billing", cluster: "eu-2" },
      groups: 2,
      incident_ids: ["i1", "i2"],
      alerts: [
        {
          delivery_id: "d1",
          received_at: "2026-12-01T09:00:00Z",
          starts_at: "2026-12-01T09:00:00Z",
          source: "alertmanager",
          alertname: "BillingErrors",
          fingerprint: "f1",
          incident_id: "i1",
        },
        {
          delivery_id: "d2",
          received_at: "2026-12-01T09:03:00Z",
          starts_at: "2026-12-01T09:03:00Z",
          source: "json",
          alertname: "BillingProbe",
          fingerprint: "f2",
          incident_id: "i2",
        },
      ],
    },
  ],
};

describe("the correlation rules page", () => {
  it("lists rules and turns one off", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) =>
      call.method === "PATCH"
        ? { status: 200, body: { ...RULE, enabled: false } }
        : { status: 200, body: { items: [RULE], next_cursor: null } },
    );
    renderWithApp(<CorrelationRulesPage />, signedInClient(fetch));
    const table = await screen.findByTestId("correlation-rules");
    expect(within(table).getByText("checkout by cluster")).toBeInTheDocument();
    expect(within(table).getByText("service, cluster")).toBeInTheDocument();
    expect(within(table).getByText("10 min")).toBeInTheDocument();
    expect(within(table).getByText("Events v2")).toBeInTheDocument();
    await user.click(within(table).getByRole("button", { name: "Turn off" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(1));
    const patch = calls.find((c) => c.method === "PATCH");
    expect(patch?.url).toContain("/api/v1/integrations/correlation-rules/r1");
    expect(patch?.body).toEqual({ enabled: false });
  });

  it("previews a rule on the last day's alerts, then creates it; bad input names the field", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) => {
      if (call.url.endsWith("/correlation-rules/preview")) return { status: 200, body: PREVIEW };
      if (call.method === "POST") return { status: 201, body: RULE };
      return { status: 200, body: { items: [], next_cursor: null } };
    });
    renderWithApp(<CorrelationRulesPage />, signedInClient(fetch));
    const form = await screen.findByRole("form", { name: "New rule" });
    await user.type(within(form).getByLabelText("Name"), "billing by cluster");
    await user.type(within(form).getByLabelText("Labels"), "service, bad label!");
    await user.click(within(form).getByRole("button", { name: "Preview on the last day" }));
    expect(await within(form).findByText("Not a label name: label!")).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);

    await user.clear(within(form).getByLabelText("Labels"));
    await user.type(within(form).getByLabelText("Labels"), "service cluster");
    await user.click(within(form).getByLabelText("JSON sources"));
    await user.click(within(form).getByRole("button", { name: "Preview on the last day" }));
    const preview = await within(form).findByTestId("correlation-preview");
    expect(preview).toHaveTextContent("5 incidents, 4 with this rule");
    expect(preview).toHaveTextContent("service=billing, cluster=eu-2");
    expect(preview).toHaveTextContent("BillingErrors, BillingProbe");
    const sent = { name: "billing by cluster", labels: ["service", "cluster"], window_minutes: 10, sources: ["json"] };
    expect(calls.find((c) => c.url.endsWith("/preview"))?.body).toEqual({ ...sent, enabled: false });

    await user.click(within(form).getByLabelText("On"));
    await user.click(within(form).getByRole("button", { name: "Create rule" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "POST")).toHaveLength(2));
    expect(calls.filter((c) => c.method === "POST")[1].body).toEqual({ ...sent, enabled: true });
  });
});

describe("labels as typed", () => {
  it("takes commas or spaces, each name once, and names the first that is not one", () => {
    expect(parseLabels("service, cluster service\n env")).toEqual({ labels: ["service", "cluster", "env"], bad: null });
    expect(parseLabels("service 9lives").bad).toBe("9lives");
  });
});
