"""The evidence catalogue as data: error strings and alert names that point at a cause.

The catalogue shipped with the package is `signatures.yaml` beside this module (its header documents
the format). A deployment extends it without code: with `AI_SIGNATURES_DIR` set, `common.yaml` in that
directory applies to every tenant and `<tenant_id>.yaml` to one tenant. An entry whose cause and
pattern (or alert) equal a shipped one replaces it, so `weight: 0` silences a shipped entry. Files are
re-read when they change; a file that does not parse is logged and skipped, never fatal (a typo in a
tenant's file must not stop its hypotheses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import structlog
import yaml

log = structlog.get_logger(__name__)

DEFAULT_PATH = Path(__file__).with_name("signatures.yaml")
# The failure modes of the rules engine (ai_worker/engines/rules.py CATALOGUE has one of each).
CAUSES = (
    "bad_deploy",
    "config_change",
    "cpu_saturation",
    "memory_leak",
    "resource_exhaustion",
    "slow_dependency",
    "disk_full",
    "certificate_expiry",
    "traffic_spike",
    "dns_network",
)
MAX_WEIGHT = 5.0
TENANT_FILE = re.compile(r"^[A-Za-z0-9_.-]+$")


class SignatureError(ValueError):
    """An entry or a file that does not have the documented shape."""


@dataclass(frozen=True)
class Signature:
    cause: str
    weight: float
    source: str
    # Exactly one of the two: text to search, or an alert name to match whole.
    pattern: re.Pattern[str] | None = None
    alert: re.Pattern[str] | None = None
    labels: tuple[tuple[str, re.Pattern[str]], ...] = ()
    origin: str = "shipped"

    @property
    def key(self) -> tuple[str, str, str]:
        if self.pattern is not None:
            return (self.cause, "pattern", self.pattern.pattern)
        assert self.alert is not None
        return (self.cause, "alert", self.alert.pattern)

    @property
    def label(self) -> str:
        """How the evidence line names it."""
        if self.alert is not None:
            wanted = ", ".join(f"{k}={v.pattern}" for k, v in self.labels)
            return f"alert {self.alert.pattern}" + (f" ({wanted})" if wanted else "")
        assert self.pattern is not None
        return f"/{self.pattern.pattern}/"

    def matches_alert(self, alertname: str, labels: Mapping[str, str]) -> bool:
        if self.alert is None or not self.alert.fullmatch(alertname):
            return False
        return all(p.fullmatch(labels.get(k, "")) for k, p in self.labels)


def _compile(text: object, what: str, flags: int) -> re.Pattern[str]:
    if not isinstance(text, str) or not text:
        raise SignatureError(f"{what} must be a non-empty string")
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise SignatureError(f"{what} {text!r} is not a valid regular expression: {exc}") from exc


def parse_entry(raw: object, origin: str = "shipped") -> Signature:
    """One entry, validated: a known cause, exactly one of pattern/alert, a weight, a source."""
    if not isinstance(raw, dict):
        raise SignatureError(f"an entry must be a mapping, not {raw!r}")
    unknown = set(raw) - {"cause", "pattern", "alert", "labels", "weight", "source"}
    if unknown:
        raise SignatureError(f"unknown field(s) {', '.join(sorted(unknown))} in {raw!r}")
    cause = raw.get("cause")
    if cause not in CAUSES:
        raise SignatureError(f"cause must be one of {', '.join(CAUSES)}, not {cause!r}")
    if ("pattern" in raw) == ("alert" in raw):
        raise SignatureError(f"an entry has exactly one of pattern and alert: {raw!r}")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or abs(weight) > MAX_WEIGHT:
        raise SignatureError(f"weight must be a number between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g}: {raw!r}")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise SignatureError(f"every entry needs a source (a URL or 'common knowledge: ...'): {raw!r}")
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or ("pattern" in raw and labels):
        raise SignatureError(f"labels is a mapping, and only for an alert entry: {raw!r}")
    return Signature(
        cause=cause,
        weight=float(weight),
        source=source.strip(),
        pattern=_compile(raw["pattern"], "pattern", re.IGNORECASE) if "pattern" in raw else None,
        # Alert names are CamelCase identifiers: case matters ("OOM" is not "room").
        alert=_compile(raw["alert"], "alert", 0) if "alert" in raw else None,
        labels=tuple(
            (str(k), _compile(str(v), f"label {k}", re.IGNORECASE)) for k, v in sorted(labels.items())
        ),
        origin=origin,
    )


def parse(text: str, origin: str) -> list[Signature]:
    """A catalogue file's entries (`signatures:` then a list)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SignatureError(f"not valid YAML: {exc}") from exc
    if raw is None:
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("signatures"), list):
        raise SignatureError("a catalogue file is a mapping with a `signatures:` list")
    return [parse_entry(entry, origin) for entry in raw["signatures"]]


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[Signature, ...]

    # Computed once per catalogue: the engine asks for them for every clause of every report.
    @cached_property
    def patterns(self) -> tuple[Signature, ...]:
        return tuple(s for s in self.entries if s.pattern is not None and s.weight)

    @cached_property
    def patterns_by_cause(self) -> dict[str, tuple[Signature, ...]]:
        """`patterns` grouped by the failure mode they point at, each group in catalogue order."""
        grouped: dict[str, list[Signature]] = {}
        for signature in self.patterns:
            grouped.setdefault(signature.cause, []).append(signature)
        return {cause: tuple(group) for cause, group in grouped.items()}

    @cached_property
    def alerts(self) -> tuple[Signature, ...]:
        return tuple(s for s in self.entries if s.alert is not None and s.weight)

    def extended(self, extra: Sequence[Signature]) -> Catalogue:
        """These entries plus `extra`; an extra entry with the same key replaces the one here."""
        replaced = {s.key: s for s in extra}
        kept = [replaced.pop(s.key, s) for s in self.entries]
        return Catalogue((*kept, *(s for s in extra if s.key in replaced)))


@lru_cache(maxsize=1)
def shipped() -> Catalogue:
    return Catalogue(tuple(parse(DEFAULT_PATH.read_text(), "shipped")))


@lru_cache(maxsize=256)
def _file(path: str, mtime_ns: int) -> tuple[Signature, ...]:
    # Keyed by modification time, so an edited file is read again and an unchanged one is not.
    return tuple(parse(Path(path).read_text(), Path(path).name))


def _overlay(path: Path) -> tuple[Signature, ...]:
    try:
        return _file(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return ()
    except (OSError, SignatureError) as exc:
        log.warning("signature_file_skipped", path=str(path), error=str(exc))
        return ()


def for_tenant(directory: Path | None, tenant_id: str) -> Catalogue:
    """The shipped catalogue, then the directory's common.yaml, then the tenant's own file."""
    catalogue = shipped()
    if directory is None:
        return catalogue
    catalogue = catalogue.extended(_overlay(directory / "common.yaml"))
    if TENANT_FILE.match(tenant_id):
        catalogue = catalogue.extended(_overlay(directory / f"{tenant_id}.yaml"))
    return catalogue


def describe(catalogue: Catalogue) -> list[dict[str, Any]]:
    """The entries as JSON-able rows (for `sre-copilot ai signatures`)."""
    return [
        {
            "cause": s.cause,
            "kind": "pattern" if s.pattern is not None else "alert",
            "match": s.label,
            "weight": s.weight,
            "source": s.source,
            "origin": s.origin,
        }
        for s in catalogue.entries
    ]
