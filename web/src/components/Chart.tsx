import type { DayCount } from "../api/types";

/** Days from `from` to `to` (UTC dates, inclusive), each with its count (0 when absent). */
export function fillDays(counts: DayCount[], days: number, today: Date = new Date()): DayCount[] {
  const byDay = new Map(counts.map((c) => [c.day.slice(0, 10), c.count]));
  const out: DayCount[] = [];
  const end = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  for (let i = days - 1; i >= 0; i -= 1) {
    const day = new Date(end - i * 86_400_000).toISOString().slice(0, 10);
    out.push({ day, count: byDay.get(day) ?? 0 });
  }
  return out;
}

/** A small hand-rolled SVG bar chart of incidents opened per day. */
export function IncidentsChart({ data, label }: { data: DayCount[]; label: string }) {
  const width = 900;
  const height = 190;
  const pad = { top: 12, right: 8, bottom: 24, left: 28 };
  const max = Math.max(1, ...data.map((d) => d.count));
  const ticks = max <= 4 ? Array.from({ length: max + 1 }, (_, i) => i) : [0, Math.round(max / 2), max];
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const step = innerW / Math.max(1, data.length);
  const barW = Math.max(2, step * 0.68);
  const total = data.reduce((sum, d) => sum + d.count, 0);
  const y = (v: number) => pad.top + innerH - (v / max) * innerH;
  const fmt = (day: string) =>
    new Date(`${day}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${label}: ${total} in ${data.length} days`}>
        {ticks.map((t) => (
          <g key={t}>
            <line x1={pad.left} x2={width - pad.right} y1={y(t)} y2={y(t)} className="grid" />
            <text x={pad.left - 6} y={y(t) + 4} textAnchor="end" className="axis">
              {t}
            </text>
          </g>
        ))}
        {data.map((d, i) => {
          const h = (d.count / max) * innerH;
          return (
            <rect
              key={d.day}
              x={pad.left + i * step + (step - barW) / 2}
              y={pad.top + innerH - h}
              width={barW}
              height={Math.max(0, h)}
              rx={2}
              className="bar"
            >
              <title>{`${fmt(d.day)}: ${d.count}`}</title>
            </rect>
          );
        })}
        {data.length > 0
          ? [0, Math.floor((data.length - 1) / 2), data.length - 1].map((i) => (
              <text
                key={i}
                x={i === 0 ? pad.left : i === data.length - 1 ? width - pad.right : pad.left + i * step + step / 2}
                y={height - 6}
                textAnchor={i === 0 ? "start" : i === data.length - 1 ? "end" : "middle"}
                className="axis"
              >
                {fmt(data[i].day)}
              </text>
            ))
          : null}
      </svg>
      <figcaption className="sr-only">
        {data
          .filter((d) => d.count)
          .map((d) => `${fmt(d.day)}: ${d.count}`)
          .join(", ") || "No incidents"}
      </figcaption>
    </figure>
  );
}

/** Horizontal bars for counts by category. */
export function BarList({
  items,
  label,
  classFor,
}: {
  items: { key: string; label: string; count: number }[];
  label: string;
  classFor: (key: string) => string;
}) {
  const max = Math.max(1, ...items.map((i) => i.count));
  return (
    <ul className="barlist" aria-label={label}>
      {items.map((item) => (
        <li key={item.key} data-testid={`${label}-${item.key}`}>
          <span className="barlist-label">{item.label}</span>
          <span className="barlist-track" aria-hidden="true">
            <span className={`barlist-fill ${classFor(item.key)}`} style={{ width: `${(item.count / max) * 100}%` }} />
          </span>
          <span className="barlist-count">{item.count}</span>
        </li>
      ))}
    </ul>
  );
}
