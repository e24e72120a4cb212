"""The reviews before an offer (seed §3.1-3.2): the intake review with its supplement rounds, and
the risk review within the risk manager's approval authority (above it the department manager
approves too). Composed into the origination workflow.

Deterministic code only.
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.assessment import ReportActivities
    from domain import calendar
    from domain.lifecycle import Stage
    from domain.tasks import TaskKind
    from models.shapes import AssessmentSummary, RiskReportInput
    from workflows.assessment import ASSESSMENT_PATCH, assess, assessment_context
    from workflows.common import RENDER, Ended, LoanProgress, on_render_queue
    from workflows.human_tasks import Abort, HumanTasks

# workflow.patched ids of the changes made after loans had started.
AUTHORITY_PATCH = "risk-approval-authority-v1"
SUPPLEMENT_PATCH = "supplement-business-days-v1"
REPORT_PATCH = "risk-report-v1"
# The end of the working day a supplement is due on (local time).
SUPPLEMENT_DUE_AT = time(18, 0)
GRADES = "ABCDE"


class Reviews:
    def __init__(
        self, progress: LoanProgress, tasks: HumanTasks, abort: Abort, requested: Decimal
    ) -> None:
        self._p = progress
        self._tasks = tasks
        self._abort = abort
        self._requested = requested
        self._round = 0
        self.assessment: AssessmentSummary | None = None
        # The department manager approved the application above the risk manager's authority.
        self.manager_approved = False
        # The risk manager's questions when they asked for more information.
        self._questions: str | None = None

    async def intake(self) -> None:
        """Intake review, looping through supplements until approved; each round is assessed
        first (bureau, checks, score) and the reviewer's task shows the result."""
        while True:
            self._round += 1
            context: dict[str, Any] | None = None
            if workflow.patched(ASSESSMENT_PATCH):
                self.assessment = await assess(self._p, self._tasks, self._round, self._abort)
                context = assessment_context(self.assessment)
            if self._questions is not None:
                context = {**(context or {}), "questions": self._questions}
                self._questions = None
            review = await self._tasks.decide(
                TaskKind.INTAKE_REVIEW, abort=self._abort, context=context
            )
            if review.decision == "approve":
                return
            if review.decision == "reject":
                raise Ended(
                    Stage.REJECTED, review.comment or "rejected at intake review", review.user
                )
            await self._supplement(review.comment, (review.data or {}).get("items"))

    async def _supplement(self, note: str | None, items: Any) -> None:
        """The officer supplies what the reviewer named, by a deadline in working days."""
        policy = self._p.policy
        if workflow.patched(SUPPLEMENT_PATCH):
            due_on = calendar.add_business_days(self._p.today(), policy.supplement_business_days)
            due = calendar.local_instant(due_on, SUPPLEMENT_DUE_AT, policy.business_timezone)
            expires_after = max(due - workflow.now(), timedelta(minutes=1))
            context: dict[str, Any] | None = {
                "items": [str(i) for i in items] if isinstance(items, list) else [],
                "note": note,
                "due": due.isoformat(),
            }
        else:
            expires_after = timedelta(days=policy.supplement_deadline_days)
            context = None
        await self._tasks.decide(
            TaskKind.SUPPLEMENT_DOCUMENTS,
            abort=self._abort,
            expires_after=expires_after,
            context=context,
        )

    async def risk(self) -> bool:
        """The risk decision; False when the risk manager asks for more information (the
        application goes back to intake review with the questions)."""
        await self._p.enter(Stage.RISK_REVIEW)
        context = assessment_context(self.assessment) if self.assessment else None
        if self.assessment is not None and workflow.patched(REPORT_PATCH):
            await workflow.execute_activity_method(
                ReportActivities.render_risk_report,
                RiskReportInput(
                    application_no=self._p.application_no,
                    seq=self.assessment.seq,
                    at=workflow.now(),
                    business_timezone=self._p.policy.business_timezone,
                    beyond_authority=tuple(self._beyond_authority()),
                ),
                **on_render_queue(RENDER),
            )
            report = f"/api/v1/applications/{self._p.application_no}/risk-report.pdf"
            context = {**(context or {}), "risk_report": report}
        risk = await self._tasks.decide(TaskKind.RISK_REVIEW, abort=self._abort, context=context)
        if risk.decision == "reject":
            raise Ended(Stage.REJECTED, risk.comment or "rejected at risk review", risk.user)
        if risk.decision == "more_information":
            self._questions = risk.comment or "the risk manager asks for more information"
            await self._p.enter(Stage.INTAKE_REVIEW, actor=risk.user, reason=self._questions)
            return False
        if workflow.patched(AUTHORITY_PATCH):
            beyond = self._beyond_authority()
            if beyond:
                second = await self._tasks.decide(
                    TaskKind.RISK_APPROVAL,
                    abort=self._abort,
                    context={**(context or {}), "beyond_authority": beyond},
                )
                if second.decision == "reject":
                    raise Ended(
                        Stage.REJECTED, second.comment or "rejected above authority", second.user
                    )
                self.manager_approved = True
        return True

    def _beyond_authority(self) -> list[str]:
        """Why the risk manager's approval is not enough (empty when it is)."""
        policy = self._p.policy
        reasons = []
        if self._requested > policy.risk_approval_limit:
            reasons.append(f"amount {self._requested} above {policy.risk_approval_limit}")
        worst = GRADES.index(policy.risk_approval_worst_grade)
        if self.assessment is not None and GRADES.index(self.assessment.grade) > worst:
            reasons.append(
                f"grade {self.assessment.grade} below {policy.risk_approval_worst_grade}"
            )
        return reasons
