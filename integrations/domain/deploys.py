"""A deploy's identity: the same report sent again is the same deploy."""

from __future__ import annotations

import uuid

from contracts.integrations import DeployReport

# ---- deploys and deliveries, as the commands about them decide

DEPLOY_NAMESPACE = uuid.UUID("0b6f3f0e-61a4-4a39-9a5e-7d2c84e1f5b3")


def deploy_identity(tenant_id: str, report: DeployReport) -> str | None:
    """The id a deploy report with its own time always gets (CI retrying a request sends the same
    deploy twice); None for one without a time, which is a new deploy each time."""
    if report.deployed_at is None:
        return None
    parts = (tenant_id, report.service_name, report.environment, report.version)
    identity = "\x00".join((*parts, report.commit or "", report.deployed_at.isoformat()))
    return str(uuid.uuid5(DEPLOY_NAMESPACE, identity))
