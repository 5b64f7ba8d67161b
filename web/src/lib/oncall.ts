// The on-call pages' logic, apart from React: where the API's shifts fall on a two-week timeline,
// the schedule and policy forms' drafts and their checks, and the API's 422s by field path. Who is
// on call when is never computed here: the shifts come from `/api/v1/schedules/{id}/shifts`, the
// final result of layers, restrictions and overrides.
import { ApiError } from "../api/client";
import type {
  LayerSpec,
  RestrictionSpec,
  RotationType,
  RuleSpec,
  ScheduleRead,
  ShiftRead,
  StepSpec,
  TargetSpec,
  TimeZoneName,
  Weekday,
} from "../api/types";
import { TIME_ZONES } from "../api/types";

export const TIMELINE_DAYS = 14;
const ZONES = new Set<string>(TIME_ZONES);

/** Local midnight of `now`'s day, and the midnight `days` later (calendar days, so DST is honoured). */
export function timelineWindow(now: Date, days = TIMELINE_DAYS): { start: Date; end: Date } {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const end = new Date(start.getFullYear(), start.getMonth(), start.getDate() + days);
  return { start, end };
}

export interface Segment {
  shift: ShiftRead;
  /** Where the (clipped) shift starts and how wide it is, in percent of the window. */
  left: number;
  width: number;
}

/** The shifts that fall in the window, clipped to it and placed in percent of its length. */
export function placeShifts(shifts: ShiftRead[], start: Date, end: Date): Segment[] {
  const from = start.getTime();
  const span = end.getTime() - from;
  const out: Segment[] = [];
  for (const shift of shifts) {
    const a = Math.max(new Date(shift.start).getTime(), from);
    const b = Math.min(new Date(shift.end).getTime(), end.getTime());
    if (!(b > a)) continue;
    out.push({ shift, left: ((a - from) / span) * 100, width: ((b - a) / span) * 100 });
  }
  return out;
}

/** Each day of the window: its midnight and where it sits, in percent. */
export function dayTicks(start: Date, end: Date): { day: Date; left: number }[] {
  const span = end.getTime() - start.getTime();
  const out: { day: Date; left: number }[] = [];
  for (let day = new Date(start); day < end; day = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1)) {
    out.push({ day, left: ((day.getTime() - start.getTime()) / span) * 100 });
  }
  return out;
}

/** True when the shifts asked for ran out before the window's end (a fast rotation): say so. */
export function truncated(shifts: ShiftRead[], asked: number, end: Date): boolean {
  if (shifts.length < asked) return false;
  const last = shifts[shifts.length - 1];
  return new Date(last.end).getTime() < end.getTime();
}

/** A datetime-local input's value for a date ("2026-12-02T09:00", local time). */
export function toLocalInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A stable colour per person, so a person's shifts read as one across the timeline. */
export function hueOf(userId: string): number {
  let h = 0;
  for (const ch of userId) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

/**
 * The messages of a 422 by field path without the leading `body` ("layers.0.time_zone", "name");
 * a schema's enum message (which lists every allowed value) is cut short. A 404 or 409 that names
 * fields in its details (a team's unknown or deactivated members) is read the same way when asked.
 */
export function errorsByPath(error: unknown, statuses: number[] = [422]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(error instanceof ApiError) || !statuses.includes(error.status) || !Array.isArray(error.details)) return out;
  for (const item of error.details as { loc?: unknown[]; msg?: string }[]) {
    const loc = (Array.isArray(item?.loc) ? item.loc : []).map(String);
    if (loc[0] === "body") loc.shift();
    const path = loc.join(".");
    let msg = item?.msg ?? "";
    if (msg.length > 160) msg = `${msg.slice(0, 157)}…`;
    if (msg && !(path in out)) out[path] = msg;
  }
  return out;
}

// ---- schedule drafts

export interface RestrictionDraft {
  days: Weekday[];
  start: string;
  end: string;
}

export interface LayerDraft {
  name: string;
  participants: string[];
  rotation: RotationType;
  length: string;
  start_date: string;
  handoff_time: string;
  time_zone: string;
  restrictions: RestrictionDraft[];
}

export function todayIso(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

export function browserZone(): string {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone && ZONES.has(zone) ? zone : "UTC";
}

export function newLayer(now = new Date()): LayerDraft {
  return {
    name: "",
    participants: [],
    rotation: "weekly",
    length: "1",
    start_date: todayIso(now),
    handoff_time: "09:00",
    time_zone: browserZone(),
    restrictions: [],
  };
}

export function layerToDraft(layer: LayerSpec): LayerDraft {
  return {
    name: layer.name ?? "",
    participants: [...layer.participants],
    rotation: layer.rotation,
    length: String(layer.length ?? 1),
    start_date: layer.start_date,
    handoff_time: layer.handoff_time ?? "09:00",
    time_zone: layer.time_zone,
    restrictions: (layer.restrictions ?? []).map((r: RestrictionSpec) => ({ ...r, days: [...r.days] })),
  };
}

export function draftToLayer(draft: LayerDraft): LayerSpec {
  const counted = draft.rotation === "hours" || draft.rotation === "days";
  return {
    name: draft.name.trim(),
    participants: draft.participants,
    rotation: draft.rotation,
    length: counted ? Number(draft.length) : 1,
    start_date: draft.start_date,
    handoff_time: draft.handoff_time,
    time_zone: draft.time_zone.trim() as TimeZoneName,
    restrictions: draft.restrictions.map((r) => ({ days: r.days, start: r.start, end: r.end })),
  };
}

/** What the browser can tell before sending (by the same paths as the API's 422s). */
export function checkSchedule(name: string, layers: LayerDraft[]): Record<string, string> {
  const found: Record<string, string> = {};
  if (!name.trim()) found.name = "Name the schedule.";
  if (!layers.length) found.layers = "A schedule needs a layer.";
  layers.forEach((layer, i) => {
    if (!layer.participants.length) found[`layers.${i}.participants`] = "Pick at least one participant.";
    if (!ZONES.has(layer.time_zone.trim()))
      found[`layers.${i}.time_zone`] = "An IANA time zone, e.g. Europe/Berlin or UTC.";
    if (!/^\d{4}-\d{2}-\d{2}$/.test(layer.start_date)) found[`layers.${i}.start_date`] = "The first handoff's day.";
    if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(layer.handoff_time)) found[`layers.${i}.handoff_time`] = "HH:MM, 24-hour.";
    if (layer.rotation === "hours" || layer.rotation === "days") {
      const n = Number(layer.length);
      if (!Number.isInteger(n) || n < 1) found[`layers.${i}.length`] = "Whole hours or days, at least 1.";
    }
    layer.restrictions.forEach((r, j) => {
      if (!r.days.length) found[`layers.${i}.restrictions.${j}.days`] = "Pick at least one day.";
    });
  });
  return found;
}

export function describeRotation(layer: LayerSpec): string {
  const every =
    layer.rotation === "hours" || layer.rotation === "days"
      ? `every ${layer.length} ${layer.length === 1 ? layer.rotation.slice(0, -1) : layer.rotation}`
      : layer.rotation;
  return `${every}, handoff ${layer.handoff_time ?? "09:00"} ${layer.time_zone}`;
}

// ---- my shifts

export interface MyShift extends ShiftRead {
  schedule: Pick<ScheduleRead, "id" | "name">;
}

/** One person's shifts across schedules (each schedule's final shifts from the API), soonest first. */
export function shiftsOf(
  userId: string,
  bySchedule: { schedule: Pick<ScheduleRead, "id" | "name">; shifts: ShiftRead[] }[],
): MyShift[] {
  const out: MyShift[] = [];
  for (const { schedule, shifts } of bySchedule) {
    for (const shift of shifts) if (shift.user_id === userId) out.push({ ...shift, schedule });
  }
  return out.sort((a, b) => new Date(a.start).getTime() - new Date(b.start).getTime());
}

// ---- escalation policies

export interface StepDraft {
  targets: TargetSpec[];
  wait: string;
}

export function checkPolicy(name: string, steps: StepDraft[], repeat: string): Record<string, string> {
  const found: Record<string, string> = {};
  if (!name.trim()) found.name = "Name the policy.";
  if (!steps.length) found.steps = "A policy needs a step.";
  steps.forEach((step, i) => {
    if (!step.targets.length) found[`steps.${i}.targets`] = "Whom does this step notify?";
    const wait = Number(step.wait);
    if (step.wait.trim() === "" || !Number.isFinite(wait) || wait < 0 || wait > 10080)
      found[`steps.${i}.wait_minutes`] = "Minutes, 0 to 10080.";
  });
  const r = Number(repeat);
  if (!Number.isInteger(r) || r < 0 || r > 10) found.repeat = "0 to 10 times.";
  return found;
}

export function draftToSteps(steps: StepDraft[]): StepSpec[] {
  return steps.map((s) => ({ targets: s.targets, wait_minutes: Number(s.wait) }));
}

// ---- routing rules' label conditions, edited as text (one per line, as silences' matchers)

export type RuleMatcher = NonNullable<RuleSpec["matchers"]>[number];

/** `name=value` per line into a rule's `labels`; the first line that is not one is `bad`. */
export function parseLabels(text: string): { labels: Record<string, string>; bad: string | null } {
  const labels: Record<string, string> = {};
  for (const line of text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)) {
    // `!=` and `=~` are matchers, not equalities: refuse them here rather than store `name!` as a label.
    const found = /^([A-Za-z_][A-Za-z0-9_.:/-]*)\s*=(?!~)\s*(.*)$/.exec(line);
    if (!found) return { labels, bad: line };
    labels[found[1]] = found[2];
  }
  return { labels, bad: null };
}

export function labelsToText(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
}

export function matchersToText(matchers: RuleMatcher[] | undefined): string {
  return (matchers ?? []).map((m) => `${m.label}${m.op ?? "="}${m.value}`).join("\n");
}

/** `label op value` per line (=, !=, =~, !~); the first line that is not one is `bad`. */
export function parseRuleMatchers(text: string): { matchers: RuleMatcher[]; bad: string | null } {
  const matchers: RuleMatcher[] = [];
  for (const line of text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)) {
    const found = /^([A-Za-z_][A-Za-z0-9_.:/-]*)\s*(=~|!~|!=|=)\s*(.*)$/.exec(line);
    if (!found) return { matchers, bad: line };
    matchers.push({ label: found[1], op: found[2], value: found[3] } as RuleMatcher);
  }
  return { matchers, bad: null };
}

/** A rule's conditions in words, for those who only read the routing. */
export function describeRule(rule: RuleSpec): string {
  const parts = [rule.service_name ?? "Any service"];
  if (rule.severities?.length) parts.push(`(${rule.severities.join(", ")})`);
  const conditions = [
    ...Object.entries(rule.labels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(rule.matchers ?? []).map((m) => `${m.label}${m.op ?? "="}${m.value}`),
  ];
  if (conditions.length) parts.push(`where ${conditions.join(", ")}`);
  return parts.join(" ");
}

// ---- an incident's paging, from its timeline's escalation and page events

export interface Paging {
  policyName: string;
  /** `running` until an acknowledgement, the resolution or the last step's wait ends it. */
  status: "running" | "acknowledged" | "resolved" | "exhausted" | string;
  /** The last step reached (1-based) and its round (1-based). */
  step: number | null;
  round: number | null;
  paged: string[];
  notifications: { userId: string; channel: string; delivered: boolean; error: string | null; at: string }[];
  acknowledgedBy: string | null;
}

interface EntryLike {
  kind: string;
  at: string;
  data: Record<string, unknown>;
}

/** The incident's latest escalation as its timeline tells it, or null when none started. */
export function pagingOf(entries: EntryLike[]): Paging | null {
  let paging: Paging | null = null;
  for (const entry of entries) {
    const d = entry.data ?? {};
    if (entry.kind === "escalation.started") {
      paging = {
        policyName: String(d.policy_name ?? ""),
        status: "running",
        step: null,
        round: null,
        paged: [],
        notifications: [],
        acknowledgedBy: null,
      };
    } else if (!paging) {
      continue;
    } else if (entry.kind === "escalation.step_reached") {
      paging.step = Number(d.step ?? 0) + 1;
      paging.round = Number(d.round ?? 0) + 1;
      for (const id of (d.user_ids as string[] | undefined) ?? [])
        if (!paging.paged.includes(id)) paging.paged.push(id);
    } else if (entry.kind === "page.notified") {
      paging.notifications.push({
        userId: String(d.user_id ?? ""),
        channel: String(d.channel ?? ""),
        delivered: Boolean(d.delivered),
        error: typeof d.error === "string" ? d.error : null,
        at: entry.at,
      });
    } else if (entry.kind === "page.acknowledged") {
      paging.acknowledgedBy = String(d.user_id ?? "");
    } else if (entry.kind === "escalation.stopped") {
      paging.status = String(d.reason ?? "stopped");
    }
  }
  return paging;
}
