"""The API's calls into loan workflows (start, update, query), with Temporal errors mapped to HTTP.

Workflows are addressed by id and by the names in ``domain.identifiers``: the API imports no
workflow or activity code (nor WeasyPrint through it), whichever workflow type runs the loan now.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import HTTPException, status
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import QUERY_TIMEOUT, TemporalGateway
from api.errors import DependencyUnavailable, service_unavailable, unprocessable_from
from domain.identifiers import ORIGINATION_WORKFLOW, STATE_QUERY, workflow_id
from models.shapes import LoanInput, LoanView

T = TypeVar("T")

# ApplicationError types raised by the workflow's validators → HTTP status.
REFUSAL_STATUS = {
    "Forbidden": status.HTTP_403_FORBIDDEN,
    "TaskNotPending": status.HTTP_409_CONFLICT,
    "MakerChecker": status.HTTP_409_CONFLICT,
    "WrongStage": status.HTTP_409_CONFLICT,
    "WrongDocument": status.HTTP_409_CONFLICT,
    # The stored contract no longer matches the sha256 recorded when it was issued.
    "DocumentChanged": status.HTTP_409_CONFLICT,
    "InvalidDecision": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "InvalidData": status.HTTP_422_UNPROCESSABLE_CONTENT,
    # A payment already reversed, or one the loan's ledger cannot reverse.
    "AlreadyReversed": status.HTTP_409_CONFLICT,
    "WrongPayment": status.HTTP_409_CONFLICT,
    # A collection conduct rule (contact window, daily limit) refuses the attempt, named.
    "ConductRule": status.HTTP_409_CONFLICT,
    # The loan is between two workflow runs (origination handing over to servicing).
    "Retry": status.HTTP_409_CONFLICT,
}


class WorkflowRefusal(HTTPException):
    """A workflow validator's refusal as an HTTP error, keeping the refusal type
    (``Forbidden``, ``MakerChecker``...) for the caller to audit attempted violations."""

    def __init__(self, refusal: str, status_code: int, detail: str) -> None:
        super().__init__(status_code, detail=detail)
        self.refusal = refusal
        self.reason = detail


def start_loan(temporal: TemporalGateway, inp: LoanInput, *, task_queue: str) -> None:
    async def start(client: Client) -> None:
        await client.start_workflow(
            ORIGINATION_WORKFLOW,
            inp,
            id=workflow_id(inp.application_no),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )

    temporal.run(start)


def query_loan(temporal: TemporalGateway, application_no: str) -> LoanView:
    """The loan's live state, answered by a worker within ``QUERY_TIMEOUT``. When no answer
    comes the workflow is described: still running means no worker is answering (503 with
    Retry-After: a worker down, or all busy), closed or unknown means the loan's workflow ended
    (409) — the two are told apart, never guessed."""

    async def query(client: Client) -> LoanView:
        handle = client.get_workflow_handle(workflow_id(application_no))
        return await handle.query(STATE_QUERY, result_type=LoanView, rpc_timeout=QUERY_TIMEOUT)

    try:
        return temporal.run(query)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            if not workflow_running(temporal, workflow_id(application_no)):
                raise _not_running(exc) from exc
        elif exc.status == RPCStatusCode.UNAVAILABLE:
            raise _not_running(exc) from exc
        if workflow_running(temporal, workflow_id(application_no)):
            raise DependencyUnavailable(
                "the worker",
                f"loan {application_no} is running but no worker answered within "
                f"{QUERY_TIMEOUT.total_seconds():.0f} s",
            ) from exc
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="this loan's workflow is no longer running"
        ) from exc


def workflow_running(temporal: TemporalGateway, wf_id: str) -> bool:
    """Whether the workflow ``wf_id`` is running (False when it ended or never existed);
    Temporal itself unreachable is a ``DependencyUnavailable``."""

    async def describe(client: Client) -> bool:
        desc = await client.get_workflow_handle(wf_id).describe(rpc_timeout=QUERY_TIMEOUT)
        return desc.status == WorkflowExecutionStatus.RUNNING

    try:
        return temporal.run(describe)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise DependencyUnavailable("Temporal", exc.message or exc.status.name) from exc


def update_loan(
    temporal: TemporalGateway,
    application_no: str,
    update: str,
    arg: Any,
    result_type: type[T],
    *,
    update_id: str | None = None,
    workflow: str | None = None,
) -> T:
    """Send a workflow update by name; a validator's refusal becomes a 4xx naming the reason.
    ``workflow`` addresses another workflow than the loan's (a task's own, e.g. a collections
    episode)."""

    async def call(client: Client) -> T:
        handle = client.get_workflow_handle(workflow or workflow_id(application_no))
        result: T = await handle.execute_update(update, arg, id=update_id, result_type=result_type)
        return result

    try:
        return temporal.run(call)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type in REFUSAL_STATUS:
            code = REFUSAL_STATUS[cause.type]
            if code == status.HTTP_422_UNPROCESSABLE_CONTENT:
                raise unprocessable_from(cause.message) from exc
            raise WorkflowRefusal(cause.type, code, cause.message) from exc
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=str(cause)) from exc
    except RPCError as exc:
        raise _not_running(exc) from exc


def _not_running(exc: RPCError) -> HTTPException:
    if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
        return HTTPException(
            status.HTTP_409_CONFLICT, detail="this loan's workflow is no longer running"
        )
    return service_unavailable(f"Temporal is unavailable: {exc.message}")
