from __future__ import annotations

from pydantic import Field

from runtime.settings import ServiceSettings


class IncidentsSettings(ServiceSettings):
    # Commands handled at once by one replica (COMMAND_WORKERS); one incident's commands still run
    # one after another, in the order they came. 1: one command at a time, as before.
    command_workers: int = Field(default=16, ge=1, le=64)
