"""`Idempotency-Key` on the POSTs that create or move something (IETF httpapi draft "The
Idempotency-Key HTTP Header Field").

A client that sends the header may retry the same request as often as it likes: the first answer is
kept, and a retry with the same key and the same request gets that answer again (same status, same
body, `Idempotent-Replayed: true`) without anything being done a second time. The same key with
another request is a 422; a retry while the first is still being worked on is a 409.

Two cooperating halves, used together through `idempotent(...)` on a route:
- a dependency (after the route's own authentication, whose principal scopes the key) reserves the
  key in the gateway's table `idempotency_keys`, or answers a replay / 409 / 422 straight away;
- `IdempotencyRecorder`, an ASGI middleware, holds the reserved request's response back until it has
  been stored (so an answer the client never received can still be replayed), then sends it. Answers
  that a retry might change (5xx, 401/403/408/425/429) are not stored: the key is released, so the
  retry is tried for real.

The table is operational state, not a projection: it is not in `projection.tables.metadata`, so rebuilds
and replays leave it alone (its metadata is this module's)."""

# Without `from __future__ import annotations`: the dependency made by `idempotent()` names the
# route's principal dependency in its signature, and FastAPI reads that annotation at run time,
# where a string could not see the closure's variable.

import asyncio
import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args, get_origin

import structlog
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    case,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.commands import Caller, ErrorCode
from gateway.auth.dependencies import KeyCaller
from gateway.errors import ApiError
from gateway.projection import tables
from gateway.state import gateway_of

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[ -~]*[!#-~][ -~]*$"
# Answers are small JSON documents; anything bigger is answered but not kept.
MAX_STORED_BODY = 256 * 1024
# 4xx answers that a retry may well change (credentials renewed, a rate limit lifted): not kept.
RETRYABLE_4XX = frozenset({401, 403, 408, 425, 429})
STATE_KEY = "idempotency"

metadata = MetaData(schema=tables.SCHEMA)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    # Who sent it: a user id or an integration key id (two callers of one tenant never collide).
    Column("subject", String(64), primary_key=True),
    Column("key", String(MAX_KEY_LENGTH), primary_key=True),
    # SHA-256 of method, path, query and (canonical JSON) body: "the same request".
    Column("fingerprint", String(64), nullable=False),
    # Set while the first request is being answered; a retry meanwhile is a 409. Past
    # `locked_until` (the gateway died mid-request) a retry of the same request takes it over.
    Column("lock_token", Uuid),
    Column("locked_until", DateTime(timezone=True)),
    Column("status_code", Integer),
    Column("content_type", String(128)),
    Column("body", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_gw_idempotency_keys_expires_at", "expires_at"),
)

KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        # Printable ASCII with at least one character that is neither a space nor a quote, so that
        # neither HTTP's trimming of spaces nor the draft's quotes leave an empty key.
        pattern=KEY_PATTERN,
        description=(
            "Makes retrying this request safe (IETF httpapi Idempotency-Key draft): a unique value per "
            "request (a UUID), sent again with every retry. A retry with the same key and body gets the "
            f"first answer again, with `{REPLAYED_HEADER}: true`, and does nothing more; the same key "
            "with another body is a 422; a retry while the first is still in progress is a 409. Kept "
            "24 hours (`IDEMPOTENCY_KEY_TTL_SECONDS`), per organisation and caller. 1 to 255 printable "
            'ASCII characters; the quoted form (`"..."`) is accepted.'
        ),
    ),
]


@dataclass
class Reservation:
    """A key this request holds until its answer is stored (or released)."""

    store: "IdempotencyStore"
    tenant_id: str
    subject: str
    key: str
    token: uuid.UUID
    # When the key was first taken (kept across takeovers and retries after an answer that was not
    # kept): what a create derives its new object's id from, so a retry after a lost or failed answer
    # names the same object and the service makes it once (`derived_id`).
    created_at: datetime
    done: bool = field(default=False)

    def derived_id(self, namespace: uuid.UUID) -> uuid.UUID:
        name = "\x00".join((self.tenant_id, self.subject, self.key, self.created_at.isoformat()))
        return uuid.uuid5(namespace, name)


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    content_type: str | None
    body: bytes


class Replayed(Exception):
    """Raised by the dependency to answer with a stored answer (see `install`)."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__("replayed")
        self.answer = answer


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests "the same": method, path, query and body. A JSON body counts by its
    content (key order and white space aside), anything else byte for byte."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def unquote(raw: str) -> str:
    """The draft's field is a structured-field string (`"abc"`); the bare form is accepted too."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def storable(status: int) -> bool:
    """Final answers are kept; those a retry might change are not."""
    return 200 <= status < 300 or (400 <= status < 500 and status not in RETRYABLE_4XX)


class IdempotencyStore:
    def __init__(self, engine: AsyncEngine, ttl_seconds: float, lock_seconds: float) -> None:
        self.engine = engine
        self.ttl = timedelta(seconds=ttl_seconds)
        self.lock = timedelta(seconds=lock_seconds)

    def _row(self, tenant_id: str, subject: str, key: str) -> Any:
        t = idempotency_keys
        return and_(t.c.tenant_id == tenant_id, t.c.subject == subject, t.c.key == key)

    async def reserve(
        self, tenant_id: str, subject: str, key: str, print_: str
    ) -> Reservation | StoredAnswer:
        """The key for this request, or the answer it already has; ApiError 422 (another request
        used it) or 409 (the first is still in progress)."""
        t = idempotency_keys
        for _ in range(3):
            now = datetime.now(UTC)
            token = uuid.uuid4()
            values = {
                "fingerprint": print_,
                "lock_token": token,
                "locked_until": now + self.lock,
                "status_code": None,
                "content_type": None,
                "body": None,
                "created_at": now,
                "expires_at": now + self.ttl,
            }
            # An expired key is as good as absent (pruning runs only now and then); an abandoned
            # reservation of the same request (its gateway died) may be taken over.
            takeover = or_(
                t.c.expires_at <= now,
                and_(t.c.status_code.is_(None), t.c.locked_until <= now, t.c.fingerprint == print_),
            )
            # The conflicting row stays locked until this commits, so the read that follows sees it.
            # Taking over the same request keeps its first `created_at` (see Reservation.created_at);
            # an expired key starts afresh.
            kept = {**values, "created_at": case((t.c.expires_at <= now, now), else_=t.c.created_at)}
            statement = (
                insert(t)
                .values(tenant_id=tenant_id, subject=subject, key=key, **values)
                .on_conflict_do_update(
                    index_elements=[t.c.tenant_id, t.c.subject, t.c.key], set_=kept, where=takeover
                )
                .returning(t.c.lock_token, t.c.created_at)
            )
            async with self.engine.begin() as conn:
                taken = (await conn.execute(statement)).first()
                won = taken.lock_token if taken is not None else None
                existing = select(t).where(self._row(tenant_id, subject, key))
                row = None if won == token else (await conn.execute(existing)).first()
            if taken is not None and won == token:
                return Reservation(self, tenant_id, subject, key, token, taken.created_at)
            if row is None:
                continue  # released between the two statements: try again
            if row.fingerprint != print_:
                raise ApiError(
                    422,
                    ErrorCode.VALIDATION.value,
                    f"this {HEADER} was used for a different request; use a new key for a new request",
                    [{"loc": ["header", HEADER], "msg": "key reused with another body", "type": "conflict"}],
                )
            if row.status_code is None:
                break
            return StoredAnswer(row.status_code, row.content_type, bytes(row.body or b""))
        raise ApiError(
            409,
            ErrorCode.CONFLICT.value,
            f"a request with this {HEADER} is still in progress; retry once it has been answered",
        )

    async def complete(self, reservation: Reservation, answer: StoredAnswer) -> None:
        t = idempotency_keys
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t)
                .where(
                    self._row(reservation.tenant_id, reservation.subject, reservation.key),
                    t.c.lock_token == reservation.token,
                )
                .values(
                    status_code=answer.status_code,
                    content_type=answer.content_type,
                    body=answer.body,
                    lock_token=None,
                    locked_until=None,
                )
            )

    async def release(self, reservation: Reservation) -> None:
        """Unlock without an answer: a retry of the same request takes the key over at once (and a
        create names the same object again: a command that did commit before a 504 is not done
        twice); another request with the key is still a different request."""
        t = idempotency_keys
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t)
                .where(
                    self._row(reservation.tenant_id, reservation.subject, reservation.key),
                    t.c.lock_token == reservation.token,
                )
                .values(lock_token=None, locked_until=datetime.now(UTC))
            )

    async def prune(self) -> int:
        """Forget keys past their time; returns how many."""
        t = idempotency_keys
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(t).where(t.c.expires_at <= datetime.now(UTC)))
        return int(result.rowcount or 0)

    async def prune_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                pruned = await self.prune()
                if pruned:
                    log.info("idempotency_keys_pruned", count=pruned)
            except Exception as exc:  # the database may be down for a while: next round
                log.warning("idempotency_prune_failed", error=str(exc))


def _principal(who: Any) -> tuple[str, str]:
    if isinstance(who, Caller):
        return who.tenant_id, who.user_id
    if isinstance(who, KeyCaller):
        return who.tenant_id, who.key_id
    raise TypeError(f"idempotent() needs a Caller or KeyCaller dependency, not {type(who).__name__}")


def idempotent(principal: Any) -> Any:
    """`dependencies=[idempotent(CallerDep)]` (or an integration-key annotation): the route honours
    `Idempotency-Key`, scoped to the organisation and the caller that `principal` authenticates."""
    dependency = get_args(principal)[1] if get_origin(principal) is Annotated else principal

    async def reserve(request: Request, who: Annotated[Any, dependency], key: KeyHeader = None) -> None:
        if key is None:
            return
        value = unquote(key)
        if not value:
            raise ApiError(422, ErrorCode.VALIDATION.value, f"{HEADER} must not be empty")
        tenant_id, subject = _principal(who)
        print_ = fingerprint(request.method, request.url.path, request.url.query, await request.body())
        store: IdempotencyStore = gateway_of(request).idempotency
        held = await store.reserve(tenant_id, subject, value, print_)
        if isinstance(held, StoredAnswer):
            raise Replayed(held)
        setattr(request.state, STATE_KEY, held)

    return Depends(reserve)


def reservation_of(request: Request) -> Reservation | None:
    """The key this request holds, when it came with one."""
    held = getattr(request.state, STATE_KEY, None)
    return held if isinstance(held, Reservation) else None


class IdempotencyRecorder:
    """ASGI middleware: the response of a request holding a reservation is stored before it is sent
    (or the reservation released when the answer is not final, or nothing was answered)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        start: Any = None
        chunks: list[bytes] = []

        async def hold(message: Any) -> None:
            nonlocal start
            reservation: Reservation | None = state.get(STATE_KEY)
            if reservation is None or reservation.done:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            await _finish(reservation, start, body)
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        try:
            await self.app(scope, receive, hold)
        finally:
            reservation = state.get(STATE_KEY)
            if reservation is not None and not reservation.done:
                # No answer went out (an exception, a cancelled request): let a retry try again.
                reservation.done = True
                with contextlib.suppress(Exception):
                    await asyncio.shield(reservation.store.release(reservation))


async def _finish(reservation: Reservation, start: Any, body: bytes) -> None:
    reservation.done = True
    status = int(start["status"])
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    try:
        if storable(status) and len(body) <= MAX_STORED_BODY:
            answer = StoredAnswer(status, headers.get("content-type"), body)
            await reservation.store.complete(reservation, answer)
        else:
            await reservation.store.release(reservation)
    except Exception as exc:
        # The answer still goes out; the key stays held until its lock lapses, then a retry redoes it.
        log.warning("idempotency_record_failed", error=str(exc), status=status)


def install(app: FastAPI) -> None:
    app.add_middleware(IdempotencyRecorder)

    @app.exception_handler(Replayed)
    async def replay(request: Request, exc: Replayed) -> Response:
        answer = exc.answer
        headers = {REPLAYED_HEADER: "true"}
        if answer.content_type:
            headers["Content-Type"] = answer.content_type
        return Response(content=answer.body, status_code=answer.status_code, headers=headers)
