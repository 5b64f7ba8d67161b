import { describe, expect, it } from "vitest";
import type { EventEnvelope } from "../api/types";
import { fillDays } from "../components/Chart";
import { safeNext, validateRegistration } from "../pages/AuthPages";
import { filtersToQuery } from "../pages/IncidentsPage";
import { describeEvent, staleKeys } from "./events";
import { duration, relativeTime } from "./format";
import { rememberIncidents } from "./incidentKeys";

const envelope = (type: string, data: Record<string, unknown>): EventEnvelope => ({
  kind: "event",
  seq: 1,
  id: "e1",
  type,
  version: 1,
  occurred_at: "2026-11-25T10:00:00Z",
  tenant_id: "t_1",
  aggregate_id: "i-1",
  actor: "u_1",
  data,
});

describe("live events", () => {
  it("reads as a line of the ticker, with the incident's key", () => {
    rememberIncidents([{ id: "i-1", key: "INC-7" }]);
    expect(
      describeEvent(envelope("incident.created", { incident_id: "i-1", key: "INC-7", severity: "high", title: "CPU" })),
    ).toBe("INC-7 opened (high): CPU");
    // Event version 2: the incident's fields are its snapshot.
    expect(
      describeEvent(
        envelope("incident.created", {
          incident_id: "i-2",
          incident: { id: "i-2", key: "INC-8", severity: "low", title: "Disk" },
        }),
      ),
    ).toBe("INC-8 opened (low): Disk");
    expect(
      describeEvent(
        envelope("incident.state_changed", { incident_id: "i-1", from_state: "detected", to_state: "resolved" }),
      ),
    ).toBe("INC-7 moved detected → resolved");
    expect(
      describeEvent(envelope("hypothesis.generated", { incident_id: "i-1", hypotheses: [1, 2, 3], generation: 2 })),
    ).toBe("INC-7: 3 hypotheses ready (generation 2)");
    expect(describeEvent(envelope("something.new", {}))).toBe("something new");
  });

  it("makes the right queries stale", () => {
    expect(staleKeys(envelope("incident.note_added", { incident_id: "i-1" }))).toEqual([
      ["incidents"],
      ["incident", "i-1"],
      ["timeline", "i-1"],
      ["metrics"],
    ]);
    expect(staleKeys(envelope("hypothesis.generated", { incident_id: "i-1" }))).toEqual([
      ["hypotheses", "i-1"],
      ["timeline", "i-1"],
    ]);
    expect(staleKeys(envelope("postmortem.published", { incident_id: "i-1" }))).toEqual([["postmortem", "i-1"]]);
    expect(staleKeys(envelope("follow_up.updated", { incident_id: "i-1" }))).toEqual([
      ["follow-ups", "i-1"],
      ["follow-ups", "all"],
    ]);
    expect(staleKeys(envelope("user.role_changed", {}))).toEqual([["users"], ["me"]]);
    expect(staleKeys(envelope("integration_key.revoked", {}))).toEqual([["keys"]]);
  });
});

describe("the incident list's URL", () => {
  it("becomes the API's filters", () => {
    const query = filtersToQuery(
      new URLSearchParams(
        "q=cpu&state=detected,acknowledged&severity=high&service=api&assignee=me&order=oldest&cursor=abc",
      ),
    );
    expect(query).toMatchObject({
      q: "cpu",
      state: ["detected", "acknowledged"],
      severity: ["high"],
      service: "api",
      assignee: "me",
      order: "oldest",
      cursor: "abc",
      limit: 25,
    });
    const dated = filtersToQuery(new URLSearchParams("created_from=2026-11-01T10:00"));
    expect(dated.created_from).toBe(new Date("2026-11-01T10:00").toISOString());
    expect(filtersToQuery(new URLSearchParams("")).state).toEqual([]);
  });
});

describe("helpers", () => {
  it("fills the chart's days, oldest first, with zeros", () => {
    const days = fillDays([{ day: "2026-11-24", count: 3 }], 3, new Date("2026-11-25T12:00:00Z"));
    expect(days).toEqual([
      { day: "2026-11-23", count: 0 },
      { day: "2026-11-24", count: 3 },
      { day: "2026-11-25", count: 0 },
    ]);
  });

  it("formats durations and relative times", () => {
    expect(duration(null)).toBe("—");
    expect(duration(42)).toBe("42 s");
    expect(duration(7 * 60)).toBe("7 min");
    expect(duration(3 * 3600 + 12 * 60)).toBe("3 h 12 min");
    expect(duration(2 * 86400 + 4 * 3600)).toBe("2 d 4 h");
    const now = Date.parse("2026-11-25T12:00:00Z");
    expect(relativeTime("2026-11-25T11:59:50Z", now)).toBe("just now");
    expect(relativeTime("2026-11-25T11:30:00Z", now)).toBe("30 min ago");
    expect(relativeTime("2026-11-25T09:00:00Z", now)).toBe("3 h ago");
  });

  it("sends people back only to a page of this site after signing in", () => {
    expect(safeNext("/incidents/1?x=2")).toBe("/incidents/1?x=2");
    expect(safeNext("//evil.example")).toBe("/");
    expect(safeNext("https://evil.example")).toBe("/");
    expect(safeNext("/\\evil.example")).toBe("/");
    expect(safeNext(null)).toBe("/");
  });

  it("checks a registration before sending it", () => {
    expect(
      validateRegistration({ tenant_name: "Acme", full_name: "Jo", email: "jo@acme.io", password: "long-enough" }),
    ).toEqual({});
    expect(validateRegistration({ tenant_name: "", full_name: "", email: "nope", password: "short" })).toEqual({
      tenant_name: "Name your organisation.",
      full_name: "Your name, as your team knows it.",
      email: "A valid email address.",
      password: "At least 8 characters.",
    });
  });
});
