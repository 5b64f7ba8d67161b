from __future__ import annotations

from fastapi import APIRouter, Request

from contracts.commands import TokenGrant
from gateway.schemas import LoginCreate, RegisterCreate, SessionRead

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=SessionRead)
async def register(body: RegisterCreate, request: Request) -> SessionRead:
    """Create an organisation and its owner; the owner is logged in at once."""
    state = request.app.state
    grant = await state.commands.call("cmd.auth.register", body.model_dump(mode="json"), TokenGrant)
    await state.projector.wait_for(grant.seq, state.settings.read_your_writes_timeout_seconds)
    return SessionRead.model_validate(grant.model_dump(exclude={"seq"}))


@router.post("/login", response_model=SessionRead)
async def login(body: LoginCreate, request: Request) -> SessionRead:
    grant = await request.app.state.commands.call("cmd.auth.login", body.model_dump(mode="json"), TokenGrant)
    return SessionRead.model_validate(grant.model_dump(exclude={"seq"}))
