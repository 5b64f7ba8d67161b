import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { StateButtons } from "../pages/IncidentPage";

describe("StateButtons", () => {
  it.each([
    ["detected", ["Acknowledge", "Investigate", "Resolve"]],
    ["acknowledged", ["Investigate", "Resolve"]],
    ["investigating", ["Resolve"]],
    ["resolved", ["Reopen"]],
  ] as const)("from %s offers only %j", (state, labels) => {
    render(<StateButtons state={state} onMove={vi.fn()} busy={null} />);
    expect(screen.getAllByRole("button").map((b) => b.textContent)).toEqual(labels);
  });

  it("moves to the chosen state, and holds every button while a move is in flight", async () => {
    const onMove = vi.fn();
    const { rerender } = render(<StateButtons state="acknowledged" onMove={onMove} busy={null} />);
    await userEvent.click(screen.getByRole("button", { name: "Resolve" }));
    expect(onMove).toHaveBeenCalledWith("resolved");
    rerender(<StateButtons state="acknowledged" onMove={onMove} busy="resolved" />);
    expect(screen.getByRole("button", { name: "Moving…" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Investigate" })).toBeDisabled();
  });
});
