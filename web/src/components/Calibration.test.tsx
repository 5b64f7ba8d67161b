import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { EngineAccuracyRead } from "../api/types";
import { HypothesisAccuracy } from "./Calibration";

const bucket = (i: number, hypotheses: number, mean: number | null, hit: number | null) => ({
  low: i / 10,
  high: (i + 1) / 10,
  hypotheses,
  mean_confidence: mean,
  hit_rate: hit,
  rank: null,
});

const RULES: EngineAccuracyRead = {
  engine: "rules",
  incidents: 12,
  top1: 0.75,
  top3: 0.9167,
  brier: 0.0841,
  median_seconds_to_correct_top1: 3.2,
  calibration: [
    bucket(0, 20, 0.03, 0.05),
    ...[1, 2, 3, 4, 5, 6].map((i) => bucket(i, 0, null, null)),
    bucket(7, 10, 0.72, 0.7),
    bucket(8, 0, null, null),
    bucket(9, 6, 0.94, 1),
  ],
  by_rank: [],
};

describe("HypothesisAccuracy", () => {
  it("shows how often a hypothesis at each confidence was right, skipping empty buckets", () => {
    render(<HypothesisAccuracy engines={[RULES]} days={90} />);
    expect(screen.getByText(/12 incidents judged/)).toBeInTheDocument();
    expect(screen.getByText("75 %")).toBeInTheDocument(); // top-1
    expect(screen.getByText("0.084")).toBeInTheDocument(); // Brier
    const table = screen.getByRole("table", { name: "Calibration of the rules engine" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => within(r).getByRole("rowheader").textContent)).toEqual(["0–10 %", "70–80 %", "90–100 %"]);
    // "How often a 70 % hypothesis was right".
    expect(screen.getByTestId("hit-70")).toHaveTextContent("70 %");
    expect(within(rows[1]).getByText("72 %")).toBeInTheDocument();
    expect(screen.getByTestId("hit-90")).toHaveTextContent("100 %");
  });

  it("says what to do when nothing has been judged yet", () => {
    render(<HypothesisAccuracy engines={[{ ...RULES, incidents: 0, calibration: [] }]} days={30} />);
    expect(screen.getByText(/No incident resolved in the last 30 days/)).toBeInTheDocument();
    expect(screen.queryByRole("table")).not.toBeInTheDocument();
  });

  it("copes with a gateway that sends no calibration", () => {
    const older = { ...RULES, calibration: undefined } as unknown as EngineAccuracyRead;
    render(<HypothesisAccuracy engines={[older]} days={90} />);
    expect(screen.getByText(/No judged hypotheses yet/)).toBeInTheDocument();
  });
});
