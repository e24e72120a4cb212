"""Liveness for load balancers and the dev supervisor: the database and Temporal answer."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import text
from temporalio.client import Client

from api.deps import SessionDep, TemporalDep, public
from api.schemas import HealthOut
from domain.permissions import Action

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, dependencies=[public(Action.HEALTH)])
def healthz(session: SessionDep, temporal: TemporalDep, response: Response) -> HealthOut:
    """Open to all. 200 when both answer, 503 naming the one that does not."""
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        database = "ok"
    except Exception as exc:
        database = f"error: {type(exc).__name__}"

    async def ping(client: Client) -> None:
        await client.service_client.check_health()

    try:
        temporal.run(ping)
        temporal_state = "ok"
    except Exception as exc:
        temporal_state = f"error: {type(exc).__name__}"
    healthy = database == "ok" and temporal_state == "ok"
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthOut(
        status="ok" if healthy else "degraded", database=database, temporal=temporal_state
    )
