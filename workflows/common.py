"""What every loan workflow shares: activity options, refusals, business refusals from
activities, the loan's stage and its resting state (which updates answer with).

Deterministic code only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.applications import ApplicationActivities
    from domain import calendar
    from domain.identifiers import BUSINESS_REFUSAL, render_queue_of
    from domain.lifecycle import Stage
    from domain.policy import LoanPolicy
    from models.shapes import Refusal, StageInput

STAGE_ATTR = SearchAttributeKey.for_keyword("LoanStage")
# How long an update waits for the workflow to act on it and rest again before answering
# (decisions on loans that started before decision-answers-when-recorded-v1).
SETTLE_WAIT = timedelta(seconds=20)
# A decision answers once its task is closed and audited, with the stage the loan is moving to
# (``LoanProgress.moving_to``), not after the next stage's work: no wait, no timer.
ANSWER_PATCH = "decision-answers-when-recorded-v1"

# ---- activity timeout classes ------------------------------------------------------------------
# Every ``execute_activity*`` call uses the class that fits what its activity does (checked by
# tests/workflows/test_activity_timeouts.py). A timeout here is a property of the
# ScheduleActivityTask command that replay does not compare: changing one needs no patch.
# Retries never give up on a defect by default (a stopped database is waited out); a business
# refusal is never retried.
_RETRY_FOREVER = RetryPolicy(
    maximum_interval=timedelta(minutes=1), non_retryable_error_types=[BUSINESS_REFUSAL]
)

# DB_WRITE: a few rows read or written in one transaction (or one call to our own Temporal);
# it takes milliseconds, so 30 s per try means a hung connection, and the try is retried (with
# back-off up to a minute) until the database answers again.
DB_WRITE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": _RETRY_FOREVER,
}
# EXTERNAL_HTTP: one request to the bank or the bureau through adapters/. The adapters bound
# connect, send and each read by 3-5 s (adapters/*.py DEFAULT_TIMEOUT), so a try that is still
# running after 20 s is stuck and is retried; a call site that must stop asking (the bureau, a
# payment order) sets its own maximum_attempts with ``with_retry``.
EXTERNAL_HTTP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=20),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=[BUSINESS_REFUSAL],
    ),
}
# POLL: an activity that waits on an outside system, asking every few seconds (the bank's
# answer to a payment order); it heartbeats after each ask, so a dead worker is noticed in
# 10 s instead of at the end of its wait.
POLL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": _RETRY_FOREVER,
}
# RENDER: a PDF (or an archive of them) built in seconds of CPU on the render queue; a busy
# worker needs minutes, so the bound per try is 5 min, and a render that hangs is noticed by
# the heartbeat it sends between stages (data loaded, rendered, stored).
RENDER: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": _RETRY_FOREVER,
}
# SWEEP: a department job over the whole book or ledger (classification, snapshot,
# reconciliation): it grows with the book, so its try may take half an hour, and it heartbeats
# after every loan (or batch), so a stuck one is retried after 2 min, not 30.
SWEEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(minutes=2),
    "retry_policy": _RETRY_FOREVER,
}
TIMEOUT_CLASSES: dict[str, dict[str, Any]] = {
    "DB_WRITE": DB_WRITE,
    "EXTERNAL_HTTP": EXTERNAL_HTTP,
    "POLL": POLL,
    "RENDER": RENDER,
    "SWEEP": SWEEP,
}


def with_retry(timeout_class: dict[str, Any], retry_policy: RetryPolicy) -> dict[str, Any]:
    """``timeout_class`` with a call site's own retry policy (its timeouts unchanged)."""
    return {**timeout_class, "retry_policy": retry_policy}


def on_render_queue(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for a rendering activity: on the render queue of this workflow's own task
    queue (``domain.identifiers.render_queue_of``), served by the render worker.

    No ``workflow.patched`` guard: the task queue is an attribute of the ScheduleActivityTask
    command that replay does not compare (the recorded histories replay unchanged, see
    tests/workflows/test_replay.py). A render scheduled on the loans' queue before this change
    still runs there: the loans' worker keeps every rendering activity registered."""
    return {**options, "task_queue": render_queue_of(workflow.info().task_queue)}


class Ended(Exception):
    """Raised inside a workflow to end the loan early (rejected, withdrawn, expired)."""

    def __init__(self, stage: Stage, reason: str, actor: str = "system") -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.actor = actor


def refuse(kind: str, message: str) -> NoReturn:
    """Reject an update in its validator, before anything is written; the API maps ``kind``
    to an HTTP status (api/workflow_calls.py)."""
    raise ApplicationError(message, type=kind, non_retryable=True)


def business_refusal(exc: ActivityError) -> Refusal | None:
    """The refusal an activity reported, or None when ``exc`` is not a business refusal (then
    it is a defect and the caller re-raises it)."""
    cause = exc.cause
    if not isinstance(cause, ApplicationError) or cause.type != BUSINESS_REFUSAL:
        return None
    reasons = tuple(str(r) for r in cause.details) if cause.details else (cause.message,)
    return Refusal(what=cause.message, reasons=reasons)


class LoanProgress:
    """The loan's stage and whether the workflow rests (waits for a person, a payment or a
    timer). Updates answer with the stage the loan is moving to once they are recorded
    (``heading``); before decision-answers-when-recorded-v1, with the stage it rests in."""

    def __init__(self, application_no: str, policy: LoanPolicy, stage: Stage, seq: int) -> None:
        self.application_no = application_no
        self.policy = policy
        self.stage = stage
        self.seq = seq
        self.resting = False
        # The stage a decision has fixed while work comes before ``enter`` records it (the
        # offer is recorded, then OFFER_CONFIRMATION); in memory only, cleared by ``enter``.
        self.moving_to: Stage | None = None

    def today(self) -> date:
        return calendar.business_date(workflow.now(), self.policy.business_timezone)

    async def enter(
        self, stage: Stage, *, actor: str = "system", reason: str | None = None
    ) -> None:
        """Move to ``stage``: in memory first (so waiting updates see it), then the search
        attribute, then the database row and the audit trail."""
        self.stage = stage
        self.moving_to = None
        self.seq += 1
        workflow.upsert_search_attributes([STAGE_ATTR.value_set(stage.value)])
        await workflow.execute_activity_method(
            ApplicationActivities.record_stage,
            StageInput(
                self.application_no,
                stage,
                self.seq,
                workflow.now(),
                actor,
                reason,
                policy_version=self.policy.version,
            ),
            **DB_WRITE,
        )

    async def rest(self, condition: Callable[[], bool], *, at_most: timedelta | None) -> None:
        """Wait for ``condition`` (TimeoutError after ``at_most``); the loan rests meanwhile."""
        self.resting = True
        try:
            await workflow.wait_condition(condition, timeout=at_most)
        finally:
            self.resting = False

    def heading(self) -> str:
        """The stage the loan is moving to, as an update answers it once recorded. A decision's
        handler reads it after the workflow has run on from the closed task to its next wait
        (an activity, a timer or a person): ``enter`` has moved the stage by then, or the code
        that acts on the decision has set ``moving_to``."""
        return (self.moving_to or self.stage).value

    async def settled_stage(self) -> str:
        """The stage once the workflow has acted on an update and waits again (bounded, so a
        slow activity never holds the caller for long)."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.resting, timeout=SETTLE_WAIT)
        return self.stage
