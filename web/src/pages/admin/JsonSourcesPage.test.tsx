import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { fakeFetch, renderWithApp, signedInClient } from "../../test/utils";
import { JsonSourcesPage, mappingOf } from "./JsonSourcesPage";

const ALERT = {
  title: "checkout-api is down",
  severity: "critical",
  dedup_key: "17",
  status: "firing",
  service: "checkout",
  labels: {},
};

describe("the JSON sources page", () => {
  it("previews a mapping on a pasted sample, then saves it", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) => {
      if (call.url.endsWith("/json-sources/preview")) return { status: 200, body: { alert: ALERT, problem: null } };
      if (call.method === "POST") return { status: 201, body: {} };
      return { status: 200, body: { items: [], next_cursor: null } };
    });
    renderWithApp(<JsonSourcesPage />, signedInClient(fetch));
    const form = await screen.findByRole("form", { name: "New JSON source" });
    await user.type(within(form).getByLabelText("Name"), "uptime");
    await user.type(within(form).getByLabelText("Mapping: title"), "monitor.name");
    await user.type(within(form).getByLabelText("Mapping: dedup_key"), "monitor.id");
    await user.click(within(form).getByLabelText("Sample payload"));
    await user.paste('{"monitor": {"name": "checkout-api is down", "id": 17}}');
    await user.click(within(form).getByRole("button", { name: "Preview" }));
    expect(await within(form).findByTestId("preview")).toHaveTextContent("checkout-api is down");
    const preview = calls.find((c) => c.url.endsWith("/preview"));
    expect(preview?.body).toEqual({
      mapping: { title: "monitor.name", dedup_key: "monitor.id" },
      sample: { monitor: { name: "checkout-api is down", id: 17 } },
    });

    await user.click(within(form).getByRole("button", { name: "Save source" }));
    await waitFor(() => expect(calls.filter((c) => c.method === "POST")).toHaveLength(2));
    expect(calls.find((c) => c.method === "POST" && c.url.endsWith("/json-sources"))?.body).toEqual({
      name: "uptime",
      mapping: { title: "monitor.name", dedup_key: "monitor.id" },
    });
  });

  it("shows the API's 422 next to the expression that does not compile", async () => {
    const user = userEvent.setup();
    const { fetch } = fakeFetch((call) =>
      call.method === "POST"
        ? {
            status: 422,
            body: {
              error: {
                code: "validation_error",
                message: "severity: `a..b` is not a JMESPath expression (...)",
                details: [
                  { loc: ["body", "mapping", "severity"], msg: "severity: `a..b` is not a JMESPath expression" },
                ],
              },
            },
          }
        : { status: 200, body: { items: [], next_cursor: null } },
    );
    renderWithApp(<JsonSourcesPage />, signedInClient(fetch));
    const form = await screen.findByRole("form", { name: "New JSON source" });
    await user.type(within(form).getByLabelText("Name"), "x");
    await user.type(within(form).getByLabelText("Mapping: title"), "a");
    await user.type(within(form).getByLabelText("Mapping: severity"), "a..b");
    await user.click(within(form).getByRole("button", { name: "Save source" }));
    expect(await within(form).findByText("severity: `a..b` is not a JMESPath expression")).toBeInTheDocument();
    expect(within(form).getByLabelText("Mapping: severity")).toHaveAttribute("aria-invalid", "true");
  });
});

describe("a mapping as typed", () => {
  it("leaves out the fields left empty", () => {
    expect(mappingOf({ title: " a.b ", severity: "", dedup_key: "id", status: " ", service: "", labels: "" })).toEqual({
      title: "a.b",
      dedup_key: "id",
    });
  });
});
