"""The evidence catalogue of the rules engine, as it applies to the caller's organisation."""

from __future__ import annotations

from fastapi import APIRouter

from contracts.commands import HypothesisSignatures, ListHypothesisSignatures
from gateway.auth.dependencies import CallerDep
from gateway.errors import declare
from gateway.incident_metrics.schemas import HypothesisSignaturesRead
from gateway.state import GatewayDep

router = APIRouter(prefix="/api/v1/hypothesis-signatures", tags=["hypotheses"])


@router.get("", response_model=HypothesisSignaturesRead, responses=declare(504))
async def list_hypothesis_signatures(gw: GatewayDep, caller: CallerDep) -> HypothesisSignaturesRead:
    """The error strings and alert names the rules engine turns into evidence for each cause, with
    the source of each: the catalogue shipped with the product, then the operator's extensions for
    every organisation (`common.yaml`) and for this one (`<tenant_id>.yaml` in `AI_SIGNATURES_DIR`).
    `extensible` says whether that directory is configured. Read-only: see README "The evidence
    catalogue" for how to extend it."""
    reply = await gw.commands.call(
        ListHypothesisSignatures, {"caller": caller.model_dump()}, HypothesisSignatures
    )
    return HypothesisSignaturesRead.model_validate(reply.model_dump())
