import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { HypothesesRead } from "../api/types";
import { Hypotheses, matchEvidence } from "./Hypotheses";

const READY: HypothesesRead = {
  status: "ready",
  engine: "rules",
  generation: 2,
  trigger: "alert.attached",
  generated_at: "2026-11-25T10:00:00Z",
  items: [
    {
      rank: 2,
      claim: "A bad deploy",
      description: "Compare the deploy with the start.",
      confidence: 0.25,
      evidence: ["Deploy payment-api 1.4.2 at 10:28 [deploy d-1]"],
      engine: "rules",
    },
    {
      rank: 1,
      claim: "CPU saturation",
      description: "Profile the hot path.",
      confidence: 0.6,
      evidence: ["HighCPU firing [alert HighCPU]", "Sneaky [alert Evil]"],
      engine: "rules",
      feedback: { confirmed: 2, rejected: 0 },
    },
  ],
  evidence: [
    {
      kind: "alert",
      summary: "HighCPU firing",
      source: "alert HighCPU",
      link: "https://prometheus.example/graph?g0=cpu",
    },
    { kind: "alert", summary: "Sneaky", source: "alert Evil", link: "javascript:alert(1)" },
    { kind: "deploy", summary: "Deploy payment-api 1.4.2 at 10:28", source: "deploy d-1", link: null },
  ],
};

describe("Hypotheses", () => {
  it("says they are on their way while pending", () => {
    render(<Hypotheses data={{ status: "pending", items: [], evidence: [] }} />);
    expect(screen.getByTestId("hypotheses-pending")).toHaveTextContent("hypotheses appear here by themselves");
  });

  it("ranks them, with a confidence meter each and their evidence linked where it has a safe link", () => {
    render(<Hypotheses data={READY} />);
    const cards = screen.getAllByTestId("hypothesis");
    expect(cards.map((c) => within(c).getByRole("heading").textContent)).toEqual(["CPU saturation", "A bad deploy"]);
    const meters = screen.getAllByRole("meter", { name: "Confidence" });
    expect(meters.map((m) => m.getAttribute("aria-valuenow"))).toEqual(["60", "25"]);
    const link = within(cards[0]).getByRole("link", { name: /HighCPU firing/ });
    expect(link).toHaveAttribute("href", "https://prometheus.example/graph?g0=cpu");
    expect(link).toHaveAttribute("rel", "noopener noreferrer");
    // A javascript: link from outside is shown as text, never as a link.
    expect(within(cards[0]).queryByRole("link", { name: /Sneaky/ })).toBeNull();
    expect(within(cards[0]).getByText("Sneaky [alert Evil]")).toBeInTheDocument();
    expect(screen.getByText(/Generation 2 · rules engine/)).toBeInTheDocument();
    // No feedback buttons without the capability.
    expect(screen.queryByRole("button", { name: /This is it/ })).toBeNull();
    expect(screen.queryByRole("button", { name: /Regenerate/ })).toBeNull();
  });

  it("sends feedback for the right rank and asks for a new generation", async () => {
    const user = userEvent.setup();
    const onFeedback = vi.fn(async () => undefined);
    const onRegenerate = vi.fn(async () => undefined);
    render(
      <Hypotheses data={READY} onFeedback={onFeedback} onRegenerate={onRegenerate} feedback={{ 1: "confirmed" }} />,
    );
    const [first, second] = screen.getAllByTestId("hypothesis");
    expect(within(first).getByRole("button", { name: /This is it/ })).toHaveAttribute("aria-pressed", "true");
    expect(within(first).getByRole("button", { name: /This is it/ })).toHaveTextContent("· 2");
    await user.click(within(second).getByRole("button", { name: /Not it/ }));
    expect(onFeedback).toHaveBeenCalledWith(2, "rejected");
    await user.click(screen.getByRole("button", { name: /Regenerate/ }));
    expect(onRegenerate).toHaveBeenCalledOnce();
  });

  it("matches an evidence line to the item it quotes", () => {
    expect(matchEvidence("Deploy payment-api 1.4.2 at 10:28 [deploy d-1]", READY.evidence!)?.kind).toBe("deploy");
    expect(matchEvidence("Confidence 0.6 (score 3)", READY.evidence!)).toBeUndefined();
  });
});
