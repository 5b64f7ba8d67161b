from __future__ import annotations

from runtime.settings import ServiceSettings


class IncidentsSettings(ServiceSettings):
    pass
