"""`sre-copilot up --reload`: restart a service when its code changes (watchfiles).

A change under `runtime/` or `contracts/` restarts every service (they all import them); a change
under a service's own package (`auth/`, `gateway/`, ...) restarts that service. Only Python files
count. Migrations are not applied by a reload: run `sre-copilot migrate` (or restart `up`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from sre_copilot.supervisor import Platform

log = structlog.get_logger("reload")

# The checkout: `up` runs the services from it (the editable install puts it on sys.path).
SOURCE_ROOT = Path(__file__).resolve().parent.parent
SHARED = ("runtime", "contracts")


def services_for(changed: Iterable[Path], root: Path, services: Collection[str]) -> set[str]:
    """Which of `services` a change of these files calls for restarting."""
    root = root.resolve()
    affected: set[str] = set()
    for path in changed:
        try:
            top = path.resolve().relative_to(root).parts[0]
        except (ValueError, IndexError):
            continue
        if top in SHARED:
            return set(services)
        if top in services:
            affected.add(top)
    return affected


class _Stopping:
    """What watchfiles polls to know when to give up (a threading.Event's interface)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def is_set(self) -> bool:
        return self.platform.stopping


def supervise_with_reload(platform: Platform, root: Path | None = None, step_ms: int = 250) -> None:
    """Supervise `platform`'s children (as `run_forever` does) and restart those whose code
    changed under `root`, until the platform is stopping."""
    import watchfiles

    root = (root or SOURCE_ROOT).resolve()
    names = [child.name for child in platform.children]
    watched = [root / name for name in (*SHARED, *names) if (root / name).is_dir()]
    log.info("reload_watching", root=str(root), directories=[p.name for p in watched])
    for changes in watchfiles.watch(
        *watched,
        watch_filter=watchfiles.PythonFilter(),
        rust_timeout=step_ms,
        yield_on_timeout=True,
        stop_event=_Stopping(platform),
        raise_interrupt=False,
    ):
        if platform.stopping:
            return
        affected = services_for((Path(path) for _change, path in changes), root, names)
        if affected:
            log.info(
                "reload_restarting",
                services=sorted(affected),
                changed=sorted({Path(path).relative_to(root).as_posix() for _change, path in changes}),
            )
            platform.restart(affected)
        platform.supervise_once()
