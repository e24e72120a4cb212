"""The department's scheduled jobs (started by the Temporal Schedules of ``loanops.schedules``):
the daily classification sweep, the daily portfolio snapshot, the daily reconciliation of the
bank's ledger with the records, and the low-liquidity check.

A schedule starts a job with no business date (``DailyJobInput.as_of`` None): the job takes the
business date of its start. The reconciliation and the low-liquidity alert hold human tasks and
must exist once per business date, so the scheduled run only starts the workflow of the date
(``reconcile-<date>``, ``low-liquidity-<date>``, through an activity) and ends: a second start
the same day finds it already there and does nothing.

Deterministic code only.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.department import DepartmentActivities
    from domain import calendar
    from domain.identifiers import (
        CLASSIFICATION_SWEEP_WORKFLOW,
        DECIDE_UPDATE,
        LIQUIDITY_CHECK_WORKFLOW,
        LOW_LIQUIDITY_WORKFLOW,
        PORTFOLIO_SNAPSHOT_WORKFLOW,
        RECONCILIATION_WORKFLOW,
        low_liquidity_key,
        low_liquidity_workflow_id,
        reconciliation_key,
        reconciliation_workflow_id,
    )
    from domain.lifecycle import Stage
    from domain.policy import DEFAULT_POLICY, LoanPolicy
    from domain.tasks import TaskKind, TaskStatus
    from models.jobs import (
        DailyJobInput,
        DailyJobResult,
        DifferenceSettled,
        DifferenceTask,
        FinishReconciliation,
        FoundDifference,
        LiquidityCheck,
        ReconcileInput,
        ReconcileOutcome,
        StartJob,
    )
    from models.shapes import DecisionRequest, DecisionResult, OpenTask, TasksState
    from workflows.common import (
        DB_WRITE,
        SWEEP,
        Ended,
        LoanProgress,
        refuse,
        with_retry,
    )
    from workflows.human_tasks import HumanTasks

# Reconciliation reads the bank's whole ledger and compares it with the book (a sweep). The
# bank stays down past these attempts (a few minutes of back-off): the run ends recorded as
# bank_unavailable and tomorrow's run compares everything again.
BANK_OPTIONS: dict[str, Any] = with_retry(
    SWEEP, RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=8)
)


def _as_of(inp: DailyJobInput) -> date:
    return inp.as_of or calendar.business_date(workflow.now(), inp.timezone)


async def _start_once(inp: StartJob) -> str | None:
    """Start the job's workflow of the date unless it exists (running or done): its id, or None
    when it was there already."""
    started: str | None = await workflow.execute_activity_method(
        DepartmentActivities.start_job_once, inp, **DB_WRITE
    )
    return started


class DepartmentProgress(LoanProgress):
    """The seam that lets a department job hold human tasks through ``HumanTasks``: a pseudo key
    (``RECON-20261129``) in place of the application number, the default loan policy for the
    SLAs, and no loan stage at all — ``enter`` refuses (no stage row is ever written for a job),
    and a decision is answered with the job's state (``RECONCILING``...)."""

    def __init__(self, key: str, policy: LoanPolicy, state: str) -> None:
        # No LoanProgress.__init__: there is no loan, hence no stage.
        self.application_no = key
        self.policy = policy
        self.seq = 0
        self.resting = False
        self.state = state

    async def enter(
        self, stage: Stage, *, actor: str = "system", reason: str | None = None
    ) -> None:
        raise RuntimeError(f"{self.application_no} is a department job, not a loan: no stage")

    def heading(self) -> str:
        return self.state

    async def settled_stage(self) -> str:
        return self.state


def _comment_required(task: OpenTask, req: DecisionRequest) -> None:
    if not (req.comment or "").strip():
        raise ValueError(
            f"comment: is required to {req.decision} a {task.kind.value} task "
            "(what was found and done)"
        )


@workflow.defn(name=CLASSIFICATION_SWEEP_WORKFLOW)
class ClassificationSweepWorkflow:
    """Re-evaluate every loan's five-category classification for the business date."""

    @workflow.run
    async def run(self, inp: DailyJobInput) -> DailyJobResult:
        as_of = _as_of(inp)
        changed = await workflow.execute_activity_method(
            DepartmentActivities.reclassify_book, as_of, **SWEEP
        )
        return DailyJobResult(as_of=as_of, count=changed)


@workflow.defn(name=PORTFOLIO_SNAPSHOT_WORKFLOW)
class PortfolioSnapshotWorkflow:
    """Store the day's portfolio report. The day's classification runs first (a no-op when the
    sweep has run), so the snapshot never shows yesterday's categories."""

    @workflow.run
    async def run(self, inp: DailyJobInput) -> DailyJobResult:
        as_of = _as_of(inp)
        await workflow.execute_activity_method(DepartmentActivities.reclassify_book, as_of, **SWEEP)
        await workflow.execute_activity_method(
            DepartmentActivities.take_portfolio_snapshot, as_of, **SWEEP
        )
        return DailyJobResult(as_of=as_of, count=1)


@workflow.defn(name=RECONCILIATION_WORKFLOW)
class ReconciliationWorkflow:
    """``reconcile-<date>``: compare the bank's ledger with the records, open one
    reconciliation_difference task per new difference (operations: resolved with a comment, or
    escalate to the department manager, who resolves it), and end when every task is closed —
    decided, or closed after its SLA handling (the difference is then recorded unresolved and
    stays on the run's list; it is not opened again the next day)."""

    def __init__(self) -> None:
        self._p: DepartmentProgress | None = None
        self._tasks: HumanTasks | None = None

    @workflow.run
    async def run(self, inp: DailyJobInput) -> DailyJobResult:
        as_of = _as_of(inp)
        own = reconciliation_workflow_id(as_of)
        if workflow.info().workflow_id != own:  # the schedule's start: the run of the date
            started = await _start_once(
                StartJob(RECONCILIATION_WORKFLOW, own, daily=DailyJobInput(inp.timezone, as_of))
            )
            return DailyJobResult(as_of=as_of, started=started)
        self._p = DepartmentProgress(reconciliation_key(as_of), DEFAULT_POLICY, "RECONCILING")
        self._tasks = HumanTasks(self._p, TasksState(), workflow_id=own)
        try:
            outcome: ReconcileOutcome = await workflow.execute_activity_method(
                DepartmentActivities.reconcile_bank_ledger,
                ReconcileInput(business_date=as_of, workflow_id=own),
                **BANK_OPTIONS,
            )
        except ActivityError as exc:  # the bank stayed down: a recorded ending, not a failure
            await self._finish(as_of, "bank_unavailable", str(exc.cause or exc))
            return DailyJobResult(as_of=as_of)
        opened: list[tuple[FoundDifference, str]] = []
        for d in outcome.to_settle:  # one after the other: task ids follow the same order
            kind = (
                TaskKind.RECONCILIATION_ESCALATED
                if d.status == "escalated"
                else TaskKind.RECONCILIATION_DIFFERENCE
            )
            opened.append((d, await self._open(d, kind, d.context())))
        await asyncio.gather(*(self._settle(d, task_id) for d, task_id in opened))
        self._p.state = "RECONCILED"
        await self._finish(as_of, "completed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return DailyJobResult(as_of=as_of, count=len(opened))

    async def _open(self, d: FoundDifference, kind: TaskKind, context: dict[str, Any]) -> str:
        assert self._tasks is not None
        task_id = await self._tasks.open(kind, context=context)
        await workflow.execute_activity_method(
            DepartmentActivities.note_difference_task,
            DifferenceTask(key=d.key, task_id=task_id),
            **DB_WRITE,
        )
        return task_id

    async def _settle(self, d: FoundDifference, task_id: str) -> None:
        assert self._tasks is not None
        while True:
            try:
                decision = await self._tasks.wait(task_id)
            except Ended:  # nobody settled it, even after the hand-over: close it
                await self._tasks.close(task_id, TaskStatus.EXPIRED)
                decision = None
            if decision is None:
                await self._record(d, "unresolved")
                return
            if decision.decision == "escalate":
                await self._record(d, "escalated", decision)
                task_id = await self._open(
                    d,
                    TaskKind.RECONCILIATION_ESCALATED,
                    {
                        **d.context(),
                        "escalated_by": decision.user,
                        "escalation_comment": decision.comment,
                    },
                )
                continue
            await self._record(d, "resolved", decision)
            return

    async def _record(
        self, d: FoundDifference, status: str, decision: DecisionRequest | None = None
    ) -> None:
        await workflow.execute_activity_method(
            DepartmentActivities.settle_difference,
            DifferenceSettled(
                key=d.key,
                status=status,
                at=workflow.now(),
                decided_by=decision.user if decision else None,
                comment=decision.comment if decision else None,
            ),
            **DB_WRITE,
        )

    async def _finish(self, as_of: date, status: str, reason: str | None = None) -> None:
        await workflow.execute_activity_method(
            DepartmentActivities.finish_reconciliation,
            FinishReconciliation(
                business_date=as_of,
                status=status,
                at=workflow.now(),
                workflow_id=workflow.info().workflow_id,
                reason=reason,
            ),
            **DB_WRITE,
        )

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        assert self._tasks is not None
        return await self._tasks.handle(req)

    @decide.validator
    def _validate_decision(self, req: DecisionRequest) -> None:
        if self._tasks is None:
            refuse("TaskNotPending", f"task {req.task_id} is not an open task of this run")
        self._tasks.validate(req, check=_comment_required)


@workflow.defn(name=LIQUIDITY_CHECK_WORKFLOW)
class LiquidityCheckWorkflow:
    """Compare the pool's available money with its warning line; when it is below, start the
    day's low-liquidity alert (``low-liquidity-<date>``) unless it exists. Hourly from its
    schedule, and started after a reservation (any id: it holds nothing)."""

    @workflow.run
    async def run(self, inp: DailyJobInput) -> DailyJobResult:
        as_of = _as_of(inp)
        check: LiquidityCheck = await workflow.execute_activity_method(
            DepartmentActivities.check_liquidity, as_of, **DB_WRITE
        )
        if not check.low:
            return DailyJobResult(as_of=as_of)
        started = await _start_once(
            StartJob(LOW_LIQUIDITY_WORKFLOW, low_liquidity_workflow_id(as_of), liquidity=check)
        )
        return DailyJobResult(as_of=as_of, count=1 if started else 0, started=started)


@workflow.defn(name=LOW_LIQUIDITY_WORKFLOW)
class LowLiquidityWorkflow:
    """``low-liquidity-<date>``: one low_liquidity task for the department manager with the
    figures (acknowledged / top_up_requested); a top-up itself is requested as a funding
    movement (maker-checker). Undecided past its escalations the task closes; the next day's
    check opens a new one while the pool stays low."""

    def __init__(self) -> None:
        self._p: DepartmentProgress | None = None
        self._tasks: HumanTasks | None = None

    @workflow.run
    async def run(self, check: LiquidityCheck) -> DailyJobResult:
        self._p = DepartmentProgress(low_liquidity_key(check.as_of), DEFAULT_POLICY, "LOW")
        self._tasks = HumanTasks(self._p, TasksState(), workflow_id=workflow.info().workflow_id)
        task_id = await self._tasks.open(TaskKind.LOW_LIQUIDITY, context=check.context())
        decision = await self._tasks.wait(task_id)
        self._p.state = "ACKNOWLEDGED" if decision is not None else "UNANSWERED"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return DailyJobResult(as_of=check.as_of, count=1)

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        assert self._tasks is not None
        return await self._tasks.handle(req)

    @decide.validator
    def _validate_decision(self, req: DecisionRequest) -> None:
        if self._tasks is None:
            refuse("TaskNotPending", f"task {req.task_id} is not an open task of this alert")
        self._tasks.validate(req)


async def check_liquidity_now(timezone: str, key: str) -> DailyJobResult:
    """For a workflow that has just reserved funds (the payout): run the low-liquidity check as
    a child and wait for it. It ends at once; the day's alert, if the pool is now low, runs as
    ``low-liquidity-<date>`` on its own (once a day). ``key`` makes the child's id unique, e.g.
    the reservation's business key. A loan workflow calling this for running loans needs a
    ``workflow.patched`` guard."""
    result: DailyJobResult = await workflow.execute_child_workflow(
        LiquidityCheckWorkflow.run,
        DailyJobInput(timezone=timezone),
        id=f"liquidity-check-{key}",
    )
    return result


DEPARTMENT_WORKFLOWS = [
    ClassificationSweepWorkflow,
    PortfolioSnapshotWorkflow,
    ReconciliationWorkflow,
    LiquidityCheckWorkflow,
    LowLiquidityWorkflow,
]
