"""oncall's pure rules beside the schedule itself (oncall/schedule.py): turning what the API states
into what the rules compute with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

from contracts.oncall import WEEKDAYS, LayerSpec, RestrictionSpec
from oncall.schedule import Layer, Override, RotationType, Schedule, Window


def clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def window_of(spec: RestrictionSpec) -> Window:
    return Window(frozenset(WEEKDAYS.index(d) for d in spec.days), clock(spec.start), clock(spec.end))


def layer_of(spec: LayerSpec) -> Layer:
    return Layer(
        participants=tuple(spec.participants),
        rotation=RotationType(spec.rotation.value),
        start_date=spec.start_date,
        handoff_time=clock(spec.handoff_time),
        time_zone=spec.time_zone,
        length=spec.length,
        restrictions=tuple(window_of(r) for r in spec.restrictions),
    )


@dataclass(frozen=True)
class StoredOverride:
    id: str
    user_id: str
    start: datetime
    end: datetime


def schedule_of(layers: Sequence[LayerSpec], overrides: Sequence[StoredOverride]) -> Schedule:
    """The schedule the rules compute with; overrides in creation order (the later wins)."""
    return Schedule(
        tuple(layer_of(spec) for spec in layers),
        tuple(Override(o.user_id, o.start, o.end) for o in overrides),
    )
