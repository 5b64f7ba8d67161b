import { describe, expect, it } from "vitest";
import { STATES } from "../api/types";
import { allowedMoves, assignableRoles, atLeast, moveLabel, safeLink, validateIncident } from "./incidents";

describe("the lifecycle", () => {
  it("offers exactly the moves the API allows", () => {
    const moves = Object.fromEntries(STATES.map((s) => [s, allowedMoves(s)]));
    expect(moves).toEqual({
      detected: ["acknowledged", "investigating", "resolved"],
      acknowledged: ["investigating", "resolved"],
      investigating: ["resolved"],
      resolved: ["investigating"],
    });
    expect(moveLabel("resolved", "investigating")).toBe("Reopen");
    expect(moveLabel("detected", "investigating")).toBe("Investigate");
  });
});

describe("roles", () => {
  it("orders roles and limits what each may hand out", () => {
    expect(atLeast("admin", "responder")).toBe(true);
    expect(atLeast("viewer", "responder")).toBe(false);
    expect(atLeast(null, "viewer")).toBe(false);
    expect(assignableRoles("admin")).toEqual(["responder", "viewer"]);
    expect(assignableRoles("owner")).toContain("owner");
    expect(assignableRoles("responder")).toEqual([]);
  });
});

describe("validateIncident", () => {
  const ok = { title: "High CPU", description: "", service_name: "payment-api", severity: "high" };
  it("accepts a good incident", () => {
    expect(validateIncident(ok)).toEqual({});
  });
  it("names each problem", () => {
    expect(
      validateIncident({ title: "  ", description: "x".repeat(10_001), service_name: "a b", severity: "" }),
    ).toEqual({
      title: "A title is required.",
      description: "At most 10,000 characters.",
      service_name: "Letters, digits and . _ : / - only (no spaces).",
      severity: "Pick a severity.",
    });
    expect(validateIncident({ ...ok, title: "x".repeat(201) }).title).toBe("At most 200 characters.");
  });
});

describe("safeLink", () => {
  it("follows only http and https", () => {
    expect(safeLink("https://grafana.example/d/abc?x=1")).toBe("https://grafana.example/d/abc?x=1");
    expect(safeLink("javascript:alert(1)")).toBeNull();
    expect(safeLink("data:text/html,hi")).toBeNull();
    expect(safeLink("not a url")).toBeNull();
    expect(safeLink(null)).toBeNull();
  });
});
