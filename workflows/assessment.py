"""The assessment before each intake review round: the credit bureau's report (retried; when it
stays down the specialist decides: retry, or go on without it), then the automatic checks and
the score, stored by an activity. A business refusal never fails the workflow.

Deterministic code only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.assessment import AssessmentActivities
    from domain.bureau import BureauReport
    from domain.identifiers import BUSINESS_REFUSAL
    from domain.tasks import TaskKind
    from models.shapes import AssessInput, AssessmentSummary, BureauRequest
    from workflows.common import (
        DB_WRITE,
        EXTERNAL_HTTP,
        LoanProgress,
        business_refusal,
        with_retry,
    )
    from workflows.human_tasks import Abort, HumanTasks

# workflow.patched id: loans started before the assessment existed skip it on replay.
ASSESSMENT_PATCH = "intake-assessment-v1"
# The bureau is asked this many times (0.5 + 1 + 2 s apart) before the specialist is.
BUREAU_ATTEMPTS = 4
BUREAU_OPTIONS: dict[str, Any] = with_retry(
    EXTERNAL_HTTP,
    RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_attempts=BUREAU_ATTEMPTS,
        non_retryable_error_types=[BUSINESS_REFUSAL],
    ),
)


async def assess(
    progress: LoanProgress, tasks: HumanTasks, round_: int, abort: Abort
) -> AssessmentSummary:
    status, report = await _bureau_report(progress, tasks, round_, abort)
    policy = progress.policy
    return await workflow.execute_activity_method(
        AssessmentActivities.assess_application,
        AssessInput(
            application_no=progress.application_no,
            seq=round_,
            at=workflow.now(),
            business_date=progress.today(),
            bureau_status=status,
            bureau=report,
            lpr_multiple=policy.lpr_multiple,
            absolute_rate_cap=policy.absolute_rate_cap,
        ),
        **DB_WRITE,
    )


async def _bureau_report(
    progress: LoanProgress, tasks: HumanTasks, round_: int, abort: Abort
) -> tuple[str, BureauReport | None]:
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = await workflow.execute_activity_method(
                AssessmentActivities.fetch_bureau_report,
                BureauRequest(
                    progress.application_no, f"{progress.application_no}/{round_}/{attempt}"
                ),
                **BUREAU_OPTIONS,
            )
            return answer.status, answer.report
        except ActivityError as exc:
            refusal = business_refusal(exc)
            reason = (
                refusal.what
                if refusal is not None
                else f"the credit bureau did not answer after {BUREAU_ATTEMPTS} attempts"
            )
            choice = await tasks.decide(
                TaskKind.BUREAU_UNAVAILABLE, abort=abort, context={"reason": reason}
            )
            if choice.decision == "proceed_without":
                return "unavailable", None


def assessment_context(summary: AssessmentSummary) -> dict[str, Any]:
    """What the reviewer's task shows (the full assessment is on the application's page)."""
    return {
        "assessment": summary.seq,
        "grade": summary.grade,
        "score": summary.score,
        "recommendation": summary.recommendation,
        "knock_outs": list(summary.knock_outs),
        "attention": list(summary.attention),
        "bureau": summary.bureau_status,
    }
