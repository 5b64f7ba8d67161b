"""The statistics' reads over the incident read models (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.projection.tables import hypotheses, hypothesis_feedback, incidents


async def incident_metrics(
    conn: AsyncConnection, tenant_id: str, created_from: datetime, created_to: datetime
) -> dict[str, Any]:
    """Counts by state and severity, and time to acknowledge / resolve (seconds), over the incidents
    created in [created_from, created_to)."""
    window = and_(
        incidents.c.tenant_id == tenant_id,
        incidents.c.created_at >= created_from,
        incidents.c.created_at < created_to,
    )
    by_state = {
        r.state: r.n
        for r in await conn.execute(
            select(incidents.c.state, func.count().label("n")).where(window).group_by(incidents.c.state)
        )
    }
    by_severity = {
        r.severity: r.n
        for r in await conn.execute(
            select(incidents.c.severity, func.count().label("n")).where(window).group_by(incidents.c.severity)
        )
    }

    async def durations(end: Any) -> dict[str, float | int | None]:
        seconds = func.extract("epoch", end - incidents.c.created_at)
        row = (
            await conn.execute(
                select(
                    func.count(end).label("n"),
                    func.avg(seconds).label("mean"),
                    func.percentile_cont(0.5).within_group(seconds).label("p50"),
                    func.percentile_cont(0.9).within_group(seconds).label("p90"),
                ).where(window, end.is_not(None))
            )
        ).one()
        return {
            "count": int(row.n),
            "mean_seconds": None if row.mean is None else round(float(row.mean), 3),
            "p50_seconds": None if row.p50 is None else round(float(row.p50), 3),
            "p90_seconds": None if row.p90 is None else round(float(row.p90), 3),
        }

    # Open now, whatever their age (the window does not apply), and the window's incidents per UTC day.
    open_now = and_(incidents.c.tenant_id == tenant_id, incidents.c.state != "resolved")
    open_by: dict[str, dict[str, int]] = {}
    for name, column in (("by_state", incidents.c.state), ("by_severity", incidents.c.severity)):
        counted = select(column.label("k"), func.count().label("n")).where(open_now).group_by(column)
        open_by[name] = {r.k: r.n for r in await conn.execute(counted)}
    day = func.to_char(func.timezone("UTC", incidents.c.created_at), "YYYY-MM-DD")
    per_day = await conn.execute(
        select(day.label("day"), func.count().label("n")).where(window).group_by(day).order_by(day)
    )

    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_severity": by_severity,
        "time_to_acknowledge": await durations(incidents.c.acknowledged_at),
        "time_to_resolve": await durations(incidents.c.resolved_at),
        "open": {"total": sum(open_by["by_state"].values()), **open_by},
        "created_per_day": [{"day": r.day, "count": r.n} for r in per_day],
    }


async def accuracy_inputs(
    conn: AsyncConnection, tenant_id: str, resolved_from: datetime, resolved_to: datetime
) -> tuple[list[Any], list[Any], list[Any]]:
    """The incidents resolved in the window, their hypothesis generations and confirmations."""
    resolved = list(
        (
            await conn.execute(
                select(incidents.c.id, incidents.c.created_at, incidents.c.resolved_at).where(
                    incidents.c.tenant_id == tenant_id,
                    incidents.c.state == "resolved",
                    incidents.c.resolved_at >= resolved_from,
                    incidents.c.resolved_at < resolved_to,
                )
            )
        ).all()
    )
    ids = [r.id for r in resolved]
    if not ids:
        return resolved, [], []
    generations = list(
        (
            await conn.execute(
                select(
                    hypotheses.c.incident_id,
                    hypotheses.c.engine,
                    hypotheses.c.generated_at,
                    hypotheses.c["items"],  # `.c.items` is the collection's own method
                ).where(hypotheses.c.tenant_id == tenant_id, hypotheses.c.incident_id.in_(ids))
            )
        ).all()
    )
    f = hypothesis_feedback
    confirmations = list(
        (
            await conn.execute(
                select(f.c.incident_id, f.c.claim, f.c.given_at).where(
                    f.c.tenant_id == tenant_id, f.c.incident_id.in_(ids), f.c.verdict == "confirmed"
                )
            )
        ).all()
    )
    return resolved, generations, confirmations
