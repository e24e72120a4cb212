"""Aftercare in servicing (issue 10 §3-§4), composed into the servicing workflow: periodic
follow-up calls (回访) whose answers may raise risk flags, and post-loan reviews (贷后检查) opened
by the daily review sweep or at once when a flag is raised. The rules are domain.aftercare's.

Guarded by ``workflow.patched(FOLLOW_UP_PATCH)``: a loan whose servicing run started before it
keeps its one follow-up call with no answers read; the review signal works on every loan (it
adds commands only when it arrives). A review never fails the loan: a bureau that stays down is
noted in the review's context and the review goes on.

Deterministic code only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.aftercare import AftercareActivities
    from activities.assessment import AssessmentActivities
    from domain.aftercare import (
        FollowUpAnswers,
        ReviewDecisionData,
        ReviewOutcome,
        flag_review_key,
    )
    from domain.bureau import BureauReport
    from domain.identifiers import BUSINESS_REFUSAL
    from domain.lifecycle import Stage
    from domain.tasks import TASK_RULES, TaskKind
    from models.shapes import (
        BureauRequest,
        DecisionRequest,
        FollowUpAnsweredInput,
        ReviewContextInput,
        ReviewDecidedInput,
        ReviewOpenedInput,
        ReviewRequest,
        ServicingInput,
    )
    from workflows.common import (
        ANSWER_PATCH,
        DB_WRITE,
        EXTERNAL_HTTP,
        SETTLE_WAIT,
        LoanProgress,
        with_retry,
    )
    from workflows.human_tasks import HumanTasks

FOLLOW_UP_PATCH = "follow-up-answers-v1"
# The review asks the bureau this many times (1 + 2 s apart), then goes on without it.
REVIEW_BUREAU_ATTEMPTS = 3
REVIEW_BUREAU_OPTIONS: dict[str, Any] = with_retry(
    EXTERNAL_HTTP,
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_attempts=REVIEW_BUREAU_ATTEMPTS,
        non_retryable_error_types=[BUSINESS_REFUSAL],
    ),
)
# Review period keys remembered across continue-as-new (older ones have their rows: the sweep
# never asks for them again).
KEEP_REVIEW_KEYS = 24

# What servicing does when a reviewer asks to accelerate collection: (period key, reason, by).
Accelerate = Callable[[str, str, str], Awaitable[None]]


def bureau_summary(report: BureauReport | None, status: str) -> dict[str, Any]:
    """The refreshed bureau report as the reviewer's task shows it (JSON values)."""
    if report is None:
        return {"status": status}
    return {
        "status": status,
        "report_id": report.report_id,
        "reported_at": report.reported_at.isoformat(),
        "overdue_count_24m": report.overdue_count_24m,
        "overdue_amount": str(report.overdue_amount),
        "max_days_past_due_24m": report.max_days_past_due_24m,
        "months_since_last_delinquency": report.months_since_last_delinquency,
        "enquiries_6m": report.enquiries_6m,
        "other_platform_loans": report.other_platform_loans,
        "total_monthly_payments": str(report.total_monthly_payments),
    }


class Aftercare:
    """The loan's follow-up calls and post-loan reviews, beside servicing's main loop."""

    def __init__(
        self,
        progress: LoanProgress,
        tasks: HumanTasks,
        inp: ServicingInput,
        accelerate: Accelerate,
    ) -> None:
        self._p = progress
        self._tasks = tasks
        self._accelerate = accelerate
        # An earlier run opened the one unpatched call: it counts as the first.
        self.calls = max(inp.follow_up_calls, 1 if inp.follow_up_opened else 0)
        self._reviews: list[str] = list(inp.reviews_opened)
        self.enabled = False
        # Aftercare activities under way: continue-as-new waits until there are none.
        self.busy = 0

    def start(self) -> None:
        """At the start of each run: take the patch, and act again on the carried tasks."""
        self.enabled = workflow.patched(FOLLOW_UP_PATCH)
        for task in self._tasks.snapshot().open:
            if task.kind == TaskKind.FOLLOW_UP_CALL and self.enabled:
                self._tasks.watch(
                    task.task_id, then=functools.partial(self._answered, task.task_id)
                )
            elif task.kind == TaskKind.POST_LOAN_REVIEW and task.context:
                key = str(task.context.get("review"))
                self._tasks.watch(task.task_id, then=functools.partial(self._reviewed, key))

    def carried(self) -> tuple[str, ...]:
        return tuple(self._reviews[-KEEP_REVIEW_KEYS:])

    @contextlib.asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1

    async def settled(self) -> None:
        """Wait (bounded) until what a decision set off is done, so that the decision's answer
        comes once its flags and review are on record. Adds nothing when nothing is under way."""
        if self.busy:
            if workflow.patched(ANSWER_PATCH):  # no timer: the wait ends with the activities
                await workflow.wait_condition(lambda: self.busy == 0)
                return
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self.busy == 0, timeout=SETTLE_WAIT)

    # ---- follow-up calls ---------------------------------------------------------------------

    def next_call_on(self, start_date: date) -> date | None:
        """The day of the next call: ``follow_up_call_after_days`` after disbursement, then
        every ``follow_up_call_interval_days`` (None: no more calls)."""
        policy = self._p.policy
        first = start_date + timedelta(days=policy.follow_up_call_after_days)
        if self.calls == 0:
            return first
        if policy.follow_up_call_interval_days <= 0:
            return None
        return first + timedelta(days=self.calls * policy.follow_up_call_interval_days)

    async def open_call(self) -> None:
        """Customer service calls the borrower: use of funds, income, repayment plan."""
        self.calls += 1
        task_id = await self._tasks.open(TaskKind.FOLLOW_UP_CALL, context={"call": self.calls})
        self._tasks.watch(task_id, then=functools.partial(self._answered, task_id))

    async def _answered(self, task_id: str, decision: DecisionRequest | None) -> None:
        if decision is None or decision.decision != "reached":
            return
        async with self._working():
            answers = FollowUpAnswers.parse(decision.data)  # validated before it was accepted
            flags = answers.flags()
            await workflow.execute_activity_method(
                AftercareActivities.record_follow_up,
                FollowUpAnsweredInput(
                    application_no=self._p.application_no,
                    task_id=task_id,
                    answered_by=decision.user,
                    at=workflow.now(),
                    answers=dict(decision.data or {}),
                    flags=tuple((kind.value, detail) for kind, detail in flags),
                ),
                **DB_WRITE,
            )
            if flags:
                kinds = ", ".join(kind.value for kind, _ in flags)
                await self.open_review(
                    ReviewRequest(flag_review_key(task_id), f"risk flag raised: {kinds}")
                )

    # ---- post-loan reviews -------------------------------------------------------------------

    async def open_review(self, req: ReviewRequest) -> None:
        """Open the risk manager's review for ``req.period_key`` unless it was opened already
        (or the loan has left servicing)."""
        if self._p.stage != Stage.SERVICING or req.period_key in self._reviews:
            return
        self._reviews.append(req.period_key)
        no = self._p.application_no
        async with self._working():
            today = self._p.today()
            context: dict[str, Any] = await workflow.execute_activity_method(
                AftercareActivities.review_context,
                ReviewContextInput(no, today),
                **DB_WRITE,
            )
            try:
                answer = await workflow.execute_activity_method(
                    AssessmentActivities.fetch_bureau_report,
                    BureauRequest(no, f"{no}/review/{req.period_key}"),
                    **REVIEW_BUREAU_OPTIONS,
                )
                bureau = bureau_summary(answer.report, answer.status)
            except ActivityError as exc:
                bureau = {
                    "status": "unavailable",
                    "note": f"the credit bureau did not answer ({exc.cause or exc}); "
                    "the review goes on without a refreshed report",
                }
            task_context = {"review": req.period_key, "reason": req.reason, **context}
            task_context["bureau"] = bureau
            task_id = await self._tasks.open(TaskKind.POST_LOAN_REVIEW, context=task_context)
            await workflow.execute_activity_method(
                AftercareActivities.record_review_opened,
                ReviewOpenedInput(
                    application_no=no,
                    period_key=req.period_key,
                    reason=req.reason,
                    task_id=task_id,
                    at=workflow.now(),
                    business_date=today,
                    bureau_status=str(bureau["status"]),
                    context=task_context,
                ),
                **DB_WRITE,
            )
        self._tasks.watch(task_id, then=functools.partial(self._reviewed, req.period_key))

    async def _reviewed(self, period_key: str, decision: DecisionRequest | None) -> None:
        outcome = decision.decision if decision is not None else "expired"
        reason: str | None = None
        if decision is not None:
            parsed = TASK_RULES[TaskKind.POST_LOAN_REVIEW].parse_data(outcome, decision.data)
            reason = parsed.reason if isinstance(parsed, ReviewDecisionData) else decision.comment
        by = decision.user if decision is not None else None
        async with self._working():
            await workflow.execute_activity_method(
                AftercareActivities.record_review_decided,
                ReviewDecidedInput(
                    application_no=self._p.application_no,
                    period_key=period_key,
                    outcome=outcome,
                    at=workflow.now(),
                    business_date=self._p.today(),
                    business_timezone=self._p.policy.business_timezone,
                    decided_by=by,
                    reason=reason,
                ),
                **DB_WRITE,
            )
            if outcome == ReviewOutcome.ACCELERATE_COLLECTION.value:
                await self._accelerate(period_key, reason or "", by or "system")
