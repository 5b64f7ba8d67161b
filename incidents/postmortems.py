"""An incident's postmortem and follow-up actions as pure rules: versions, edits against the version
they started from, publishing; each change gives the event carrying the snapshot after it. No I/O."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime

from contracts.commands import PostmortemText
from contracts.envelope import EventEnvelope
from contracts.events import (
    CURRENT_VERSION,
    MODEL_TYPE,
    Citation,
    FieldChange,
    FollowUpAdded,
    FollowUpSnapshot,
    FollowUpUpdated,
    PostmortemDrafted,
    PostmortemEdited,
    PostmortemPublished,
    PostmortemSnapshot,
    PostmortemStatus,
)

CITATION = re.compile(r"\[#(\d+)\]\(#event-([0-9a-fA-F-]{36})\)")


class StaleVersion(ValueError):
    def __init__(self, current: int, expected: int) -> None:
        self.current, self.expected = current, expected
        super().__init__(f"the postmortem is at version {current}, not {expected}: reload and edit again")


def citations_in(markdown: str) -> list[Citation]:
    """The events an edited text cites, once each, in the order first cited."""
    seen: dict[str, Citation] = {}
    for seq, event_id in CITATION.findall(markdown):
        if int(seq) >= 1:
            seen.setdefault(event_id.lower(), Citation(event_id=event_id.lower(), seq=int(seq)))
    return list(seen.values())


def drafted(
    current: PostmortemSnapshot | None, incident_id: str, text: PostmortemText, by: str, now: datetime
) -> PostmortemDrafted:
    """A generated draft becomes the next version (a published postmortem stays published at its
    version until this draft is published in turn)."""
    return PostmortemDrafted(
        incident_id=incident_id,
        postmortem=PostmortemSnapshot(
            incident_id=incident_id,
            version=(current.version + 1) if current else 1,
            status=PostmortemStatus.DRAFT,
            markdown=text.markdown,
            citations=text.citations,
            engine=text.engine,
            fallback_reason=text.fallback_reason,
            updated_by=by,
            updated_at=now,
            published_at=current.published_at if current else None,
            published_version=current.published_version if current else None,
        ),
    )


def edited(
    current: PostmortemSnapshot, expected_version: int, markdown: str, by: str, now: datetime
) -> PostmortemEdited | None:
    """The edit of `expected_version`; StaleVersion when someone saved another version since; None
    when the text is unchanged."""
    if current.version != expected_version:
        raise StaleVersion(current.version, expected_version)
    if markdown == current.markdown:
        return None
    return PostmortemEdited(
        incident_id=current.incident_id,
        postmortem=current.model_copy(
            update={
                "version": current.version + 1,
                "status": PostmortemStatus.DRAFT,
                "markdown": markdown,
                "citations": citations_in(markdown),
                "updated_by": by,
                "updated_at": now,
            }
        ),
    )


def published(
    current: PostmortemSnapshot, expected_version: int | None, by: str, now: datetime
) -> PostmortemPublished | None:
    """Publish the current version (None when it already is the published one)."""
    if expected_version is not None and current.version != expected_version:
        raise StaleVersion(current.version, expected_version)
    if current.status is PostmortemStatus.PUBLISHED:
        return None
    # Publishing is a version of its own, so that a view keeps it over the draft before it.
    snapshot = current.model_copy(
        update={
            "version": current.version + 1,
            "status": PostmortemStatus.PUBLISHED,
            "updated_by": by,
            "updated_at": now,
            "published_at": now,
            "published_version": current.version + 1,
        }
    )
    return PostmortemPublished(
        incident_id=current.incident_id, published_version=snapshot.version, postmortem=snapshot
    )


def new_follow_up(
    *,
    incident_id: str,
    title: str,
    owner: str | None,
    due_date: date | None,
    by: str,
    now: datetime,
    follow_up_id: str | None = None,
) -> FollowUpAdded:
    return FollowUpAdded(
        incident_id=incident_id,
        follow_up=FollowUpSnapshot(
            id=follow_up_id or str(uuid.uuid4()),
            incident_id=incident_id,
            title=title,
            owner=owner,
            due_date=due_date,
            done=False,
            version=1,
            created_by=by,
            created_at=now,
            updated_at=now,
        ),
    )


FOLLOW_UP_FIELDS = ("title", "owner", "due_date", "done")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def changed_follow_up(
    current: FollowUpSnapshot, requested: dict[str, object], now: datetime
) -> FollowUpUpdated | None:
    """Change the requested fields; None when nothing would change. `done` sets or clears `done_at`."""
    changes = {
        field: FieldChange(old=_text(getattr(current, field)), new=_text(value))
        for field, value in requested.items()
        if field in FOLLOW_UP_FIELDS and getattr(current, field) != value
    }
    if not changes:
        return None
    values: dict[str, object] = {f: requested[f] for f in changes}
    if "done" in values:
        values["done_at"] = now if values["done"] else None
    return FollowUpUpdated(
        incident_id=current.incident_id,
        changes=changes,
        follow_up=current.model_copy(update={**values, "version": current.version + 1, "updated_at": now}),
    )


PostmortemEvent = PostmortemDrafted | PostmortemEdited | PostmortemPublished
FollowUpEvent = FollowUpAdded | FollowUpUpdated


def envelope(
    data: PostmortemEvent | FollowUpEvent, *, tenant_id: str, actor: str, correlation_id: str
) -> EventEnvelope:
    """Postmortem events are versions of the postmortem (aggregate: the incident's postmortem, keyed
    by the incident id); follow-up events of the follow-up."""
    event_type = MODEL_TYPE[type(data)]
    if isinstance(data, FollowUpAdded | FollowUpUpdated):
        aggregate_id, version = data.follow_up.id, data.follow_up.version
    else:
        aggregate_id, version = data.postmortem.incident_id, data.postmortem.version
    return EventEnvelope(
        type=event_type,
        version=CURRENT_VERSION[event_type],
        tenant_id=tenant_id,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        actor=actor,
        correlation_id=correlation_id,
        data=data.model_dump(mode="json"),
    )
