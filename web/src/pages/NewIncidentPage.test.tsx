import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { fakeFetch, renderWithApp, signedInClient } from "../test/utils";
import { NewIncidentForm } from "./NewIncidentPage";

const CREATED = {
  id: "0190-1",
  key: "INC-1",
  number: 1,
  title: "High CPU",
  description: "",
  service_name: "payment-api",
  severity: "high",
  state: "detected",
  version: 1,
  created_by: "u_1",
  created_at: "2026-11-25T10:00:00Z",
  updated_at: "2026-11-25T10:00:00Z",
};

describe("the new incident form", () => {
  it("shows every problem at once and sends nothing until they are fixed", async () => {
    const user = userEvent.setup();
    const { fetch, calls } = fakeFetch((call) =>
      call.url.endsWith("/api/v1/incidents") && call.method === "POST"
        ? { status: 201, body: CREATED }
        : { status: 200, body: {} },
    );
    const onCreated = vi.fn();
    renderWithApp(<NewIncidentForm onCreated={onCreated} />, signedInClient(fetch));

    await user.type(screen.getByLabelText("Title"), "High CPU");
    await user.type(screen.getByLabelText("Service"), "payment api");
    await user.click(screen.getByRole("button", { name: "Open incident" }));

    expect(await screen.findByText("Letters, digits and . _ : / - only (no spaces).")).toBeInTheDocument();
    expect(screen.getByText("Pick a severity.")).toBeInTheDocument();
    expect(screen.getByLabelText("Service")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("Service")).toHaveFocus();
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);

    await user.clear(screen.getByLabelText("Service"));
    await user.type(screen.getByLabelText("Service"), "payment-api");
    await user.selectOptions(screen.getByLabelText("Severity"), "high");
    await user.type(screen.getByLabelText("Description"), "CPU at 90%{Control>}{Enter}{/Control}");

    await waitFor(() => expect(onCreated).toHaveBeenCalledWith(CREATED));
    const post = calls.find((c) => c.method === "POST");
    expect(post?.body).toEqual({
      title: "High CPU",
      description: "CPU at 90%",
      service_name: "payment-api",
      severity: "high",
    });
    expect(post?.auth).toBe("Bearer access-1");
    // Submitted: the draft is gone.
    expect(sessionStorage.getItem("sre-copilot.draft.new-incident")).toBeNull();
  });

  it("keeps what was typed in the tab's drafts, and shows the API's own field errors", async () => {
    const user = userEvent.setup();
    const { fetch } = fakeFetch(() => ({
      status: 422,
      body: {
        error: {
          code: "validation_error",
          message: "invalid request",
          details: [{ loc: ["body", "title"], msg: "String should have at most 200 characters" }],
        },
      },
    }));
    const first = renderWithApp(<NewIncidentForm onCreated={vi.fn()} />, signedInClient(fetch));
    await user.type(screen.getByLabelText("Title"), "Disk full");
    first.unmount();

    // A new page (e.g. after signing in again) finds the draft where it was left.
    renderWithApp(<NewIncidentForm onCreated={vi.fn()} />, signedInClient(fetch));
    expect(screen.getByLabelText("Title")).toHaveValue("Disk full");
    await user.type(screen.getByLabelText("Service"), "db");
    await user.selectOptions(screen.getByLabelText("Severity"), "low");
    await user.click(screen.getByRole("button", { name: "Open incident" }));
    expect(await screen.findByText("String should have at most 200 characters")).toBeInTheDocument();
    expect(screen.getByLabelText("Title")).toHaveValue("Disk full");
  });
});
