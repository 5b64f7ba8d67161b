import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import type { TimelineEntryRead } from "../api/types";
import { describeEntry } from "../components/Timeline";
import {
  checkPolicy,
  checkSchedule,
  dayTicks,
  describeRule,
  draftToLayer,
  errorsByPath,
  labelsToText,
  layerToDraft,
  matchersToText,
  newLayer,
  pagingOf,
  parseLabels,
  parseRuleMatchers,
  placeShifts,
  shiftsOf,
  timelineWindow,
  toLocalInput,
  truncated,
} from "./oncall";

describe("the two-week timeline", () => {
  it("starts at local midnight and runs fourteen calendar days", () => {
    const { start, end } = timelineWindow(new Date(2026, 11, 2, 15, 30));
    expect(start).toEqual(new Date(2026, 11, 2));
    expect(end).toEqual(new Date(2026, 11, 16));
    expect(dayTicks(start, end)).toHaveLength(14);
    expect(dayTicks(start, end)[0].left).toBe(0);
  });

  it("clips shifts to the window and drops the ones outside it", () => {
    const start = new Date("2026-12-01T00:00:00Z");
    const end = new Date("2026-12-03T00:00:00Z");
    const shifts = [
      { user_id: "a", start: "2026-11-30T12:00:00Z", end: "2026-12-01T12:00:00Z", layer: 0 },
      { user_id: "b", start: "2026-12-01T12:00:00Z", end: "2026-12-02T12:00:00Z", override_id: "o1" },
      { user_id: "c", start: "2026-12-04T00:00:00Z", end: "2026-12-05T00:00:00Z", layer: 0 },
    ];
    const placed = placeShifts(shifts, start, end);
    expect(placed.map((s) => [s.shift.user_id, s.left, s.width])).toEqual([
      ["a", 0, 25],
      ["b", 25, 50],
    ]);
  });

  it("says when the shifts asked for end before the window does", () => {
    const end = new Date("2026-12-15T00:00:00Z");
    const one = [{ user_id: "a", start: "2026-12-01T00:00:00Z", end: "2026-12-01T01:00:00Z" }];
    expect(truncated(one, 1, end)).toBe(true);
    expect(truncated(one, 2, end)).toBe(false);
  });

  it("writes a datetime-local value in local time", () => {
    expect(toLocalInput(new Date(2026, 0, 5, 7, 3))).toBe("2026-01-05T07:03");
  });
});

describe("a schedule's drafts", () => {
  it("checks participants, zone, handoff, length and restriction days by the API's paths", () => {
    const layer = {
      ...newLayer(new Date(2026, 11, 2)),
      time_zone: "Mars/Olympus",
      rotation: "hours" as const,
      length: "0",
    };
    layer.restrictions = [{ days: [], start: "09:00", end: "17:00" }];
    expect(checkSchedule(" ", [layer])).toEqual({
      name: "Name the schedule.",
      "layers.0.participants": "Pick at least one participant.",
      "layers.0.time_zone": "An IANA time zone, e.g. Europe/Berlin or UTC.",
      "layers.0.length": "Whole hours or days, at least 1.",
      "layers.0.restrictions.0.days": "Pick at least one day.",
    });
    expect(
      checkSchedule("Primary", [
        { ...layer, participants: ["u_1"], time_zone: "Europe/Berlin", length: "8", restrictions: [] },
      ]),
    ).toEqual({});
  });

  it("round-trips a layer, sending a length only for counted rotations", () => {
    const spec = {
      name: "Primary",
      participants: ["u_1", "u_2"],
      rotation: "days" as const,
      length: 3,
      start_date: "2026-12-01",
      handoff_time: "10:00",
      time_zone: "Europe/Berlin" as const,
      restrictions: [{ days: ["mon" as const], start: "09:00", end: "17:00" }],
    };
    expect(draftToLayer(layerToDraft(spec))).toEqual(spec);
    expect(draftToLayer({ ...layerToDraft(spec), rotation: "weekly" }).length).toBe(1);
  });
});

describe("the API's 422s", () => {
  it("are keyed by their path without the body, long enum messages cut short", () => {
    const err = new ApiError(422, "validation_error", "invalid", [
      { loc: ["body", "layers", 0, "restrictions", 1], msg: "a window's start and end differ" },
      { loc: ["body", "layers", 1, "time_zone"], msg: `Input should be ${"'Africa/Abidjan', ".repeat(40)}` },
      { loc: ["body", "name"], msg: "first" },
      { loc: ["body", "name"], msg: "second" },
    ]);
    const found = errorsByPath(err);
    expect(found["layers.0.restrictions.1"]).toBe("a window's start and end differ");
    expect(found["layers.1.time_zone"].length).toBe(158);
    expect(found.name).toBe("first");
    expect(errorsByPath(new ApiError(409, "conflict", "deactivated"))).toEqual({});
  });
});

describe("my shifts", () => {
  it("keeps one person's shifts of every schedule, soonest first", () => {
    const mine = shiftsOf("me", [
      {
        schedule: { id: "s1", name: "Primary" },
        shifts: [
          { user_id: "me", start: "2026-12-09T09:00:00Z", end: "2026-12-10T09:00:00Z" },
          { user_id: "other", start: "2026-12-02T09:00:00Z", end: "2026-12-09T09:00:00Z" },
        ],
      },
      {
        schedule: { id: "s2", name: "DB" },
        shifts: [{ user_id: "me", start: "2026-12-03T00:00:00Z", end: "2026-12-04T00:00:00Z" }],
      },
    ]);
    expect(mine.map((s) => [s.schedule.name, s.start])).toEqual([
      ["DB", "2026-12-03T00:00:00Z"],
      ["Primary", "2026-12-09T09:00:00Z"],
    ]);
  });
});

describe("a policy's drafts", () => {
  it("needs a name, targets on every step, waits in range and a repeat of 0 to 10", () => {
    expect(checkPolicy("", [{ targets: [], wait: "-1" }], "11")).toEqual({
      name: "Name the policy.",
      "steps.0.targets": "Whom does this step notify?",
      "steps.0.wait_minutes": "Minutes, 0 to 10080.",
      repeat: "0 to 10 times.",
    });
    expect(checkPolicy("Web", [{ targets: [{ kind: "user", id: "u_1" }], wait: "0.5" }], "2")).toEqual({});
  });
});

describe("an incident's paging", () => {
  const at = "2026-12-02T10:00:00Z";
  it("follows the timeline's escalation and page events to how it ended", () => {
    const entries = [
      { kind: "incident.created", at, data: {} },
      { kind: "escalation.started", at, data: { policy_name: "Web", policy_id: "p" } },
      { kind: "escalation.step_reached", at, data: { step: 0, round: 0, user_ids: ["u_1"] } },
      { kind: "page.notified", at, data: { user_id: "u_1", channel: "email", delivered: false, error: "refused" } },
      { kind: "escalation.step_reached", at, data: { step: 1, round: 0, user_ids: ["u_2"] } },
      { kind: "page.notified", at, data: { user_id: "u_2", channel: "webhook", delivered: true } },
      { kind: "page.acknowledged", at, data: { user_id: "u_2" } },
      { kind: "escalation.stopped", at, data: { reason: "acknowledged" } },
    ];
    const paging = pagingOf(entries);
    expect(paging).toMatchObject({
      policyName: "Web",
      status: "acknowledged",
      step: 2,
      round: 1,
      paged: ["u_1", "u_2"],
      acknowledgedBy: "u_2",
    });
    expect(paging?.notifications.map((n) => [n.userId, n.delivered, n.error])).toEqual([
      ["u_1", false, "refused"],
      ["u_2", true, null],
    ]);
    expect(pagingOf(entries.slice(0, 1))).toBeNull();
    expect(pagingOf(entries.slice(0, 3))?.status).toBe("running");
  });
});

describe("escalation events on an incident's timeline", () => {
  const entry = (kind: string, data: Record<string, unknown>) =>
    ({ id: "e", seq: 1, kind, actor: "system", at: "2026-12-02T10:00:00Z", data }) as TimelineEntryRead;
  const person = (id: string | null | undefined) => (id === "u_2" ? "Ada" : String(id));

  it("name who was paged, by what, and whether it reached them", () => {
    expect(
      describeEntry(entry("escalation.step_reached", { step: 1, round: 0, user_ids: ["u_2"], last: true }), person),
    ).toEqual({
      title: "Paged (step 2, round 1, last step)",
      body: "Ada",
    });
    expect(
      describeEntry(
        entry("page.notified", { user_id: "u_2", channel: "email", delivered: false, error: "550" }),
        person,
      ),
    ).toEqual({
      title: "Ada not reached by email",
      body: "550",
    });
    expect(describeEntry(entry("escalation.stopped", { reason: "exhausted" }), person).title).toBe(
      "Escalation stopped: exhausted",
    );
  });
});

describe("routing rules' label conditions", () => {
  it("reads labels as name=value lines and refuses a matcher among them", () => {
    expect(parseLabels("cluster=prod-eu\n\n tier = 1 ")).toEqual({
      labels: { cluster: "prod-eu", tier: "1" },
      bad: null,
    });
    expect(parseLabels("cluster=prod\nenv!=staging").bad).toBe("env!=staging");
    expect(parseLabels("team=~db").bad).toBe("team=~db");
    expect(labelsToText({ cluster: "prod-eu", tier: "1" })).toBe("cluster=prod-eu\ntier=1");
  });

  it("reads matchers with all four operators and writes them back the same", () => {
    const text = "team=~db|storage\nenv!=staging\ncanary!~true\nregion=eu";
    const { matchers, bad } = parseRuleMatchers(text);
    expect(bad).toBeNull();
    expect(matchers).toEqual([
      { label: "team", op: "=~", value: "db|storage" },
      { label: "env", op: "!=", value: "staging" },
      { label: "canary", op: "!~", value: "true" },
      { label: "region", op: "=", value: "eu" },
    ]);
    expect(matchersToText(matchers)).toBe(text);
    expect(parseRuleMatchers("nonsense").bad).toBe("nonsense");
  });

  it("describes a rule for readers", () => {
    expect(
      describeRule({
        policy_id: "p",
        service_name: null,
        severities: ["critical"],
        labels: { cluster: "prod" },
        matchers: [{ label: "team", op: "!~", value: "web" }],
      }),
    ).toBe("Any service (critical) where cluster=prod, team!~web");
  });

  it("reads a 409's details by path only when asked", () => {
    const err = new ApiError(409, "conflict", "a deactivated person cannot be paged", [
      { loc: ["body", "members", 1], msg: "u_2 is deactivated", type: "value_error" },
    ]);
    expect(errorsByPath(err)).toEqual({});
    expect(errorsByPath(err, [404, 409, 422])).toEqual({ "members.1": "u_2 is deactivated" });
  });
});
