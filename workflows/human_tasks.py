"""The one human-task mechanism every loan workflow composes: any number of open tasks, keyed by
task id, carried across continue-as-new; SLA escalation that ends (after the policy's last level
the task's kind says what happens: the application expires, the department manager gets it once,
or the task closes); decisions validated against the declaration in ``domain.tasks``.

Deterministic code only. An activity opens, escalates and closes each task row (the inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.tasks import TaskActivities
    from domain.identifiers import task_id_for
    from domain.lifecycle import Role, Stage
    from domain.permissions import Action, is_allowed, refusal
    from domain.tasks import (
        MAX_PRIORITY,
        TASK_RULES,
        Exhausted,
        Party,
        TaskKind,
        TaskStatus,
        escalated_priority,
    )
    from models.shapes import (
        CloseTaskInput,
        DecisionRequest,
        DecisionResult,
        EscalateTaskInput,
        OpenTask,
        OpenTaskInput,
        TasksState,
    )
    from workflows.common import ANSWER_PATCH, DB_WRITE, Ended, LoanProgress, refuse

_PARTIES = {p.value for p in Party}
ONE_DECISION_PATCH = "one-decision-per-task-v1"
Abort = Callable[[], Ended | None]
# Extra checks a workflow makes on a decision's data (product terms priced against the ceiling).
DataCheck = Callable[[OpenTask, DecisionRequest], None]
# What a watched task's owner does with its decision once the task closed (None: closed
# undecided): aftercare's answers, a reversal's approval.
Then = Callable[[DecisionRequest | None], Awaitable[None]]


def _never() -> Ended | None:
    return None


class HumanTasks:
    def __init__(
        self, progress: LoanProgress, state: TasksState, *, workflow_id: str | None = None
    ) -> None:
        self._p = progress
        # Set when the tasks belong to a workflow other than the loan's (a child workflow, a
        # department job): each task row names it, so the inbox routes decisions there.
        self._workflow_id = workflow_id
        self._open: dict[str, OpenTask] = {t.task_id: t for t in state.open}
        self._seq = state.seq
        self.deciders: dict[str, str] = dict(state.deciders)
        self._received: dict[str, DecisionRequest] = {}
        # Tasks a decision handler took (the first of simultaneous decisions wins).
        self._taken: set[str] = set()
        self._closed: set[str] = set()
        self._watchers: dict[str, asyncio.Task[None]] = {}
        # Task activities under way: continue-as-new waits until there are none.
        self.busy = 0

    # ---- state -------------------------------------------------------------------------------

    def snapshot(self) -> TasksState:
        return TasksState(
            open=tuple(self._open.values()), seq=self._seq, deciders=dict(self.deciders)
        )

    def visible(self) -> tuple[OpenTask, ...]:
        """Open tasks whose rows exist, most urgent first."""
        shown = [t for t in self._open.values() if t.recorded]
        return tuple(sorted(shown, key=lambda t: (-t.priority, t.due_at)))

    @contextlib.asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1

    # ---- opening, waiting, closing -------------------------------------------------------------

    async def open(
        self,
        kind: TaskKind,
        *,
        expires_after: timedelta | None = None,
        context: dict[str, Any] | None = None,
    ) -> str:
        """Open a task of ``kind``; returns its id. It counts as open before its row exists, so
        a decision that races a retried open_task is accepted, not refused; views show it once
        its row surely exists."""
        rule = TASK_RULES[kind]
        policy = self._p.policy
        self._seq += 1
        now = workflow.now()
        task = OpenTask(
            task_id=task_id_for(self._p.application_no, self._seq, kind.value),
            kind=kind,
            candidate_role=rule.candidate_role,
            decisions=rule.decisions,
            excluded=tuple(sorted({self.deciders[p] for p in rule.checks if p in self.deciders})),
            priority=rule.base_priority,
            due_at=now + policy.sla(kind.value),
            created_at=now,
            expires_at=now + expires_after if expires_after is not None else None,
            context=context,
        )
        self._open[task.task_id] = task
        async with self._working():
            await workflow.execute_activity_method(
                TaskActivities.open_task,
                OpenTaskInput(
                    task_id=task.task_id,
                    application_no=self._p.application_no,
                    kind=kind,
                    candidate_role=task.candidate_role,
                    excluded=task.excluded,
                    priority=task.priority,
                    created_at=now,
                    due_at=task.due_at,
                    expires_at=task.expires_at,
                    context=context,
                    policy_version=policy.version,
                    workflow_id=self._workflow_id,
                ),
                **DB_WRITE,
            )
        self._update(task.task_id, recorded=True)
        return task.task_id

    async def decide(
        self,
        kind: TaskKind,
        *,
        abort: Abort = _never,
        expires_after: timedelta | None = None,
        context: dict[str, Any] | None = None,
    ) -> DecisionRequest:
        """Open a task and wait for its decision, resting meanwhile (origination's steps)."""
        task_id = await self.open(kind, expires_after=expires_after, context=context)
        decision = await self.wait(task_id, abort=abort, resting=True)
        if decision is None:  # only CLOSE_TASK kinds close undecided; origination has none
            raise Ended(Stage.EXPIRED, f"nobody decided the {kind.value} task")
        return decision

    async def wait(
        self, task_id: str, *, abort: Abort = _never, resting: bool = False
    ) -> DecisionRequest | None:
        """Wait for the task's decision, escalating at each SLA, then close it. None when the
        task closed undecided (its kind's exhaustion rule); raises Ended when the application
        ends (expiry, or ``abort`` says so)."""
        while task_id not in self._received:
            end = abort()
            if end is not None:
                raise end
            task = self._open[task_id]
            now = workflow.now()
            wake_at = min(t for t in (task.due_at, task.expires_at, self._abandon_at(task)) if t)

            def ready() -> bool:
                return task_id in self._received or abort() is not None

            try:
                timeout = max(wake_at - now, timedelta(seconds=1))
                if resting:
                    await self._p.rest(ready, at_most=timeout)
                else:
                    await workflow.wait_condition(ready, timeout=timeout)
            except TimeoutError:
                if await self._timed_out(task_id):
                    return None
        decision = self._received.pop(task_id)
        kind = self._open[task_id].kind
        await self.close(task_id, TaskStatus.COMPLETED, decision)
        if kind.value in _PARTIES:
            self.deciders[kind.value] = decision.user
        return decision

    def watch(self, task_id: str, then: Then | None = None) -> None:
        """Let the task run beside the workflow's main loop until it is decided or closes
        (servicing's calls: the decision is recorded, nothing waits on it); ``then`` acts on
        the decision (None: the task closed undecided) once the task is closed."""

        async def run() -> None:
            decision = await self.wait(task_id)
            self._watchers.pop(task_id, None)
            if then is not None:
                await then(decision)

        self._watchers[task_id] = asyncio.create_task(run())

    def watch_all(self) -> None:
        """After continue-as-new: resume watching every carried task."""
        for task_id in list(self._open):
            if task_id not in self._watchers:
                self.watch(task_id)

    async def close(
        self, task_id: str, status: TaskStatus, decision: DecisionRequest | None = None
    ) -> None:
        task = self._open[task_id]
        async with self._working():
            await workflow.execute_activity_method(
                TaskActivities.close_task,
                CloseTaskInput(
                    task_id=task_id,
                    application_no=self._p.application_no,
                    kind=task.kind,
                    status=status,
                    closed_at=workflow.now(),
                    decision=decision.decision if decision else None,
                    decided_by=decision.user if decision else None,
                    comment=decision.comment if decision else None,
                    data=decision.data if decision else None,
                    policy_version=self._p.policy.version,
                ),
                **DB_WRITE,
            )
        del self._open[task_id]
        self._closed.add(task_id)

    async def cancel(self, task_id: str) -> None:
        """Close one watched task undecided (what it asked no longer applies)."""
        watcher = self._watchers.pop(task_id, None)
        if watcher is not None:
            watcher.cancel()
        if task_id in self._open:
            await self.close(task_id, TaskStatus.CANCELLED)

    async def close_all(self, status: TaskStatus) -> None:
        """Close every open task (the loan ended, or settled)."""
        for task_id in list(self._open):
            watcher = self._watchers.pop(task_id, None)
            if watcher is not None:
                watcher.cancel()
            await self.close(task_id, status)

    # ---- escalation ----------------------------------------------------------------------------

    def _abandon_at(self, task: OpenTask) -> datetime:
        return task.created_at + timedelta(days=self._p.policy.task_abandon_days)

    async def _timed_out(self, task_id: str) -> bool:
        """A wake-up: expire, escalate, hand over or close. True when the task closed."""
        task = self._open[task_id]
        rule = TASK_RULES[task.kind]
        policy = self._p.policy
        now = workflow.now()
        if task.expires_at is not None and now >= task.expires_at:
            raise Ended(Stage.EXPIRED, f"{task.kind.value} passed its deadline")
        if now >= self._abandon_at(task):
            if rule.exhausted == Exhausted.CLOSE_TASK:
                await self.close(task_id, TaskStatus.EXPIRED)
                return True
            raise Ended(
                Stage.EXPIRED,
                f"nobody decided the {task.kind.value} task within {policy.task_abandon_days} days",
            )
        if now < task.due_at:
            return False  # woken early (a deadline moved); nothing is due
        if task.level < policy.max_escalations:
            await self._escalate(
                task,
                level=task.level + 1,
                priority=escalated_priority(task.priority),
                due_at=now + policy.sla(task.kind.value),
            )
        elif rule.exhausted == Exhausted.HAND_TO_MANAGER and not task.handed_over:
            # Once, to the department manager, with no more escalations: next comes the end.
            await self._escalate(
                task,
                level=task.level + 1,
                priority=MAX_PRIORITY,
                due_at=self._abandon_at(task),
                handed_to=Role.DEPARTMENT_MANAGER,
            )
        elif rule.exhausted == Exhausted.CLOSE_TASK:
            await self.close(task_id, TaskStatus.EXPIRED)
            return True
        else:  # escalations exhausted: wait for the deadline, with no more timers before it
            ends = [t for t in (task.expires_at, self._abandon_at(task)) if t is not None]
            self._update(task_id, due_at=min(ends))
        return False

    async def _escalate(
        self,
        task: OpenTask,
        *,
        level: int,
        priority: int,
        due_at: datetime,
        handed_to: Role | None = None,
    ) -> None:
        self._update(
            task.task_id,
            level=level,
            priority=priority,
            due_at=due_at,
            handed_over=task.handed_over or handed_to is not None,
            candidate_role=handed_to or task.candidate_role,
        )
        async with self._working():
            await workflow.execute_activity_method(
                TaskActivities.escalate_task,
                EscalateTaskInput(
                    task_id=task.task_id,
                    application_no=self._p.application_no,
                    kind=task.kind,
                    level=level,
                    priority=priority,
                    escalated_at=workflow.now(),
                    next_due_at=due_at,
                    handed_to=handed_to,
                ),
                **DB_WRITE,
            )

    def _update(self, task_id: str, **changes: Any) -> None:
        if task_id in self._open:
            self._open[task_id] = replace(self._open[task_id], **changes)

    # ---- decisions (called from the workflows' update handlers) ---------------------------------

    def validate(self, req: DecisionRequest, check: DataCheck | None = None) -> None:
        """Refuse a decision before anything is written: unknown or already decided task, a
        role that may not decide it, an unknown decision, maker = checker, invalid data."""
        task = self._open.get(req.task_id)
        if task is None or req.task_id in self._received:
            refuse("TaskNotPending", f"task {req.task_id} is not an open task of this loan")
        if not is_allowed(req.roles, Action.DECIDE_TASK) or task.candidate_role not in req.roles:
            refuse(
                "Forbidden",
                f"a {task.kind.value} task is decided by a {task.candidate_role.value}",
            )
        action = TASK_RULES[task.kind].action
        if action is not None and not is_allowed(req.roles, action):
            refuse("Forbidden", f"a {task.kind.value} task is decided by: {refusal(action)}")
        if req.decision not in task.decisions:
            refuse(
                "InvalidDecision",
                f"decision: must be one of {', '.join(task.decisions)} for {task.kind.value}",
            )
        if req.user in task.excluded:
            refuse(
                "MakerChecker",
                f"{req.user} made the step this {task.kind.value} checks; "
                "another person must decide",
            )
        try:
            # Validators never run on replay: the strict check refuses only new decisions.
            TASK_RULES[task.kind].check_data(task.kind.value, req.decision, req.data)
            if check is not None:
                check(task, req)
        except (ValueError, ArithmeticError) as exc:
            refuse("InvalidData", str(exc))

    async def handle(self, req: DecisionRequest) -> DecisionResult:
        """The body of every workflow's ``decide`` update: hand the decision to the waiting
        task, then answer once the task is closed (its row and the audit entry written) with
        the stage the loan is moving to (decision-answers-when-recorded-v1: no wait for the
        next stage's work, no timer). Loans from before the patch answer, as they did, with
        the stage the loan rests in once the workflow has acted on it (a bounded wait).

        The answer is read when the condition below is next checked: after the workflow's
        code has run on from the closed task to its next wait (the SDK checks conditions once
        nothing else is ready), so ``enter`` or ``moving_to`` already says where it goes.

        Decisions on one task that arrive together all pass the validator (it runs before any
        handler); the first handler takes the task and the others are refused here
        (TaskNotPending, 409) instead of overwriting it (one-decision-per-task-v1)."""
        if workflow.patched(ONE_DECISION_PATCH):
            if req.task_id in self._taken or req.task_id not in self._open:
                refuse("TaskNotPending", f"task {req.task_id} was decided by someone else")
            self._taken.add(req.task_id)
        self._received[req.task_id] = req
        await workflow.wait_condition(lambda: req.task_id in self._closed)
        if workflow.patched(ANSWER_PATCH):
            return DecisionResult(task_id=req.task_id, stage=self._p.heading())
        return DecisionResult(task_id=req.task_id, stage=await self._p.settled_stage())
