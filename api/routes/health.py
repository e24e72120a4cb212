"""Liveness and readiness, apart: ``/healthz`` says the API process answers (a load balancer
restarts it when it does not) and checks nothing else, so it answers even with the database
down; ``/readyz`` says whether requests can be served: the database answers, Temporal answers,
and a worker polls the loans' task queue. Each check is bounded (a few seconds): a dependency
that hangs is reported, not waited for.

A worker is counted as polling when the task queue saw a poll from it in the last
``POLLER_FRESHNESS`` (an idle worker re-polls about every minute, so a worker that died is
reported within that bound). Temporal servers that cannot describe a task queue (the
time-skipping test server) report ``unknown`` for the worker, which does not fail readiness.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio.to_thread
from fastapi import APIRouter, Request, Response, status
from sqlalchemy import Engine, text
from sqlmodel import Session
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import TemporalGateway, public
from api.errors import RETRY_AFTER_SECONDS
from api.schemas import HealthOut, LivenessOut
from domain.permissions import Action
from loanops.settings import Settings

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = timedelta(seconds=3)
POLLER_FRESHNESS = timedelta(seconds=90)


@router.get("/healthz", response_model=LivenessOut, dependencies=[public(Action.HEALTH)])
async def healthz() -> LivenessOut:
    """Open to all. 200 while the process answers; no dependency is checked. ``async``: it
    answers on the event loop even while every thread of the blocking routes is taken."""
    return LivenessOut(status="ok")


def _database_state(engine: Engine) -> str:
    try:
        with Session(engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@router.get(
    "/readyz",
    response_model=HealthOut,
    dependencies=[public(Action.READINESS)],
    responses={503: {"model": HealthOut, "description": "a dependency is down (named)"}},
)
async def readyz(request: Request, response: Response) -> HealthOut:
    """Open to all. 200 when the database, Temporal and a worker answer; 503 with Retry-After
    naming the one that does not. ``async``, its database check on two threads of its own: it
    answers while the blocking routes' threads are all taken by slow calls."""
    settings: Settings = request.app.state.settings
    temporal: TemporalGateway = request.app.state.temporal
    database = await anyio.to_thread.run_sync(
        _database_state, request.app.state.engine, limiter=request.app.state.health_threads
    )

    async def pollers(client: Client) -> list[datetime]:
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=CHECK_TIMEOUT,
        )
        return [p.last_access_time.ToDatetime(tzinfo=UTC) for p in answer.pollers]

    worker = "error: not checked (Temporal is down)"
    client: Client | None = None
    try:
        client = await temporal.client()
        await client.service_client.check_health(timeout=CHECK_TIMEOUT)
        temporal_state = "ok"
    except Exception as exc:
        temporal_state = f"error: {type(exc).__name__}"
    if temporal_state == "ok" and client is not None:
        try:
            seen = await pollers(client)
            fresh = [t for t in seen if datetime.now(UTC) - t <= POLLER_FRESHNESS]
            worker = (
                "ok"
                if fresh
                else f"error: no worker polling task queue {settings.temporal_task_queue}"
            )
        except RPCError as exc:
            worker = (
                "unknown"
                if exc.status == RPCStatusCode.UNIMPLEMENTED
                else (f"error: {exc.status.name}")
            )
        except Exception as exc:
            worker = f"error: {type(exc).__name__}"
    healthy = database == "ok" and temporal_state == "ok" and not worker.startswith("error")
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return HealthOut(
        status="ok" if healthy else "degraded",
        database=database,
        temporal=temporal_state,
        worker=worker,
    )
