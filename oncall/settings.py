from __future__ import annotations

from pydantic import Field

from runtime.settings import ServiceSettings


class OncallSettings(ServiceSettings):
    # How far ahead "the next N shifts" look (a schedule with one person has one shift that long).
    shifts_horizon_days: int = Field(default=366, ge=1, le=3_660)
