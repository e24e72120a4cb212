"""The collections ladder (issue 10 §1): one child workflow of servicing per overdue episode
(``collections-<application_no>-<n>``); servicing's side of it is ``workflows.collections_link``.

Servicing starts an episode where an installment falls overdue (patch ``collections-ladder-v1``)
with the parent close policy ABANDON, so the episode outlives servicing's continue-as-new; the
new run finds it again by id (the episode number is carried in ``ServicingInput``). Servicing
tells the episode how the loan stands (a signal, whenever the oldest overdue due date or the
amount paid changes); the episode computes the days past due itself from that date.

**How an episode ends** (decided: by the parent's signal, not by cancellation): when servicing
says the loan is current again (nothing overdue, or settled) the episode logs it, closes its
open tasks as cancelled and completes ("cured"); when the write-off is approved it tells
servicing and completes ("written_off"). Cancelling the child would interrupt an activity or a
decision half-way; a signal lets the episode close its own tasks in order.

The steps, thresholds, outcomes and conduct rules are in ``domain.collections`` (policy data:
``LoanPolicy.collection_ladder``, ``collection_max_contacts_per_day``, the contact window).

Deterministic code only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.collections import CollectionsActivities
    from domain import calendar
    from domain.collections import (
        CONTACT_STEPS,
        RULE_CONTACT_WINDOW,
        RULE_DAILY_LIMIT,
        ContactOutcomeData,
        LadderStep,
        Outcome,
    )
    from domain.identifiers import (
        COLLECTIONS_ACCELERATE_SIGNAL,
        COLLECTIONS_STATUS_SIGNAL,
        COLLECTIONS_WORKFLOW,
        DECIDE_UPDATE,
        STATE_QUERY,
        WRITE_OFF_APPROVED_SIGNAL,
        collections_workflow_id,
    )
    from domain.lifecycle import Stage
    from domain.tasks import TASK_RULES, Party, TaskKind, TaskStatus
    from models.shapes import (
        CollectionsAcceleration,
        CollectionsInput,
        CollectionsStatus,
        CollectionStepInput,
        DecisionRequest,
        DecisionResult,
        LoanView,
        OpenTask,
        PromiseState,
        WriteOffApproved,
    )
    from workflows.common import DB_WRITE, LoanProgress, refuse
    from workflows.human_tasks import HumanTasks

# Task ids are numbered per workflow (``task_id_for(application_no, seq, kind)``), and every
# episode numbered its tasks from 1: a second episode's reminder call got the id of the first
# episode's, its row was never written (the id existed, decided) and nobody saw it in the inbox.
# From this patch on an episode after the first numbers its tasks from
# (episode - 1) × EPISODE_TASK_SEQ_SPAN, so its task ids are new; the first episode's are as
# they were (found by the portfolio simulator, loanops/simulate.py).
EPISODE_TASK_IDS_PATCH = "collections-episode-task-ids-v1"
EPISODE_TASK_SEQ_SPAN = 10_000
# Ladder steps fire just after local midnight of the day their DPD is reached (a task waits in
# the inbox; an SMS waits in the outbox for the contact window).
STEP_AT = time(0, 5)

_STEP_TASK = {
    LadderStep.REMINDER_CALL: TaskKind.REMINDER_CALL,
    LadderStep.COLLECTION_CALL: TaskKind.COLLECTION_CALL,
    LadderStep.FIELD_VISIT: TaskKind.FIELD_VISIT,
    LadderStep.LEGAL_REVIEW: TaskKind.LEGAL_REVIEW,
    LadderStep.WRITE_OFF_PROPOSAL: TaskKind.WRITE_OFF_PROPOSAL,
}
_CONTACT_KINDS = {_STEP_TASK[s]: s for s in CONTACT_STEPS}


@workflow.defn(name=COLLECTIONS_WORKFLOW)
class CollectionsWorkflow:
    @workflow.init
    def __init__(self, inp: CollectionsInput) -> None:
        self._inp = inp
        self._id = collections_workflow_id(inp.application_no, inp.episode)
        self._p = LoanProgress(inp.application_no, inp.policy, Stage.SERVICING, 0)
        tasks = inp.tasks
        if (
            inp.episode > 1
            and tasks.seq == 0
            and not tasks.open
            and workflow.patched(EPISODE_TASK_IDS_PATCH)
        ):
            tasks = replace(tasks, seq=(inp.episode - 1) * EPISODE_TASK_SEQ_SPAN)
        self._tasks = HumanTasks(self._p, tasks, workflow_id=self._id)
        self._status = inp.status
        self._done = list(inp.done)
        self._calls = dict(inp.calls)
        self._dispute = inp.dispute_task
        self._promise = inp.promise
        self._attempts = dict(inp.attempts)
        self._write_off_requested = inp.write_off_requested
        self._seq = inp.seq
        self._accelerated = inp.accelerated
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._working = 0
        self._changed = 0

    # ---- the ladder ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CollectionsInput) -> str:
        for task in inp.tasks.open:
            self._watch(task.task_id, task.kind)
        while True:
            if self._status.overdue_since is None:
                return await self._end("cured", "the loan is current again")
            if self._write_off_requested:
                return await self._end("written_off", "the write-off was approved")
            if self._history_is_long():
                self._p.resting = True
                await workflow.wait_condition(
                    lambda: (
                        workflow.all_handlers_finished()
                        and self._tasks.busy == 0
                        and self._working == 0
                    )
                )
                workflow.continue_as_new(self._carry_over())
            today = self._p.today()
            if self._promise is not None and today > self._promise.due_on:
                await self._check_promise(kept=self._promise_kept())
                continue
            step = self._due_step(today)
            if step is not None and self._promise is None and self._dispute is None:
                if self._dpd(today) < self._policy_dpd(step):
                    self._accelerated -= 1  # a rung a post-loan review brought forward
                await self._fire(step, today)
                continue
            seen = self._changed
            wake_at = self._wake_at()
            now = workflow.now()
            with contextlib.suppress(TimeoutError):
                await self._p.rest(
                    lambda seen=seen: self._changed != seen,  # type: ignore[misc]
                    at_most=max(wake_at - now, timedelta(seconds=1)) if wake_at else None,
                )

    def _dpd(self, today: date) -> int:
        since = self._status.overdue_since
        return 0 if since is None else (today - since).days

    def _ladder(self) -> list[tuple[LadderStep, int]]:
        ladder = self._p.policy.collection_ladder
        return [(s, ladder[s.value]) for s in LadderStep if s.value in ladder]

    def _due_step(self, today: date) -> LadderStep | None:
        """The first step not taken yet whose DPD is reached, or which a post-loan review
        brought forward (one at a time, in order)."""
        dpd = self._dpd(today)
        for step, at in self._ladder():
            if step.value not in self._done:
                return step if dpd >= at or self._accelerated > 0 else None
        return None

    def _policy_dpd(self, step: LadderStep) -> int:
        return dict(self._ladder())[step]

    def _wake_at(self) -> datetime | None:
        tz = self._p.policy.business_timezone
        if self._promise is not None:  # checked once the promised day is over
            return calendar.local_instant(self._promise.due_on + timedelta(days=1), STEP_AT, tz)
        if self._dispute is not None or self._status.overdue_since is None:
            return None
        for step, at in self._ladder():
            if step.value not in self._done:
                day = self._status.overdue_since + timedelta(days=at)
                return calendar.local_instant(day, STEP_AT, tz)
        return None

    def _rule(self, step: LadderStep) -> str:
        policy = self._p.policy
        at = policy.collection_ladder[step.value]
        return (
            f"collection_ladder.{step.value}: at {at} days past due (loan policy v{policy.version})"
        )

    async def _fire(self, step: LadderStep, today: date) -> None:
        self._done.append(step.value)
        dpd = self._dpd(today)
        if step == LadderStep.SMS_NOTICE:
            await self._log(
                step.value,
                "sms",
                "queued",
                self._rule(step),
                sms_template="collections_notice",
                overdue_amount=self._status.overdue_amount,
            )
            return
        if step in CONTACT_STEPS:
            for task_id in list(self._calls):  # one collector at a time: the newer step
                await self._close(task_id, "superseded by " + step.value)
        task_id = await self._open(step, dpd)
        await self._log(step.value, "task", "opened", self._rule(step), task_id=task_id)

    async def _open(self, step: LadderStep, dpd: int, attempt: int = 1) -> str:
        kind = _STEP_TASK[step]
        context: dict[str, Any] = {
            "episode": self._inp.episode,
            "step": step.value,
            "days_past_due": dpd,
            "overdue_since": str(self._status.overdue_since),
            "overdue_amount": str(self._status.overdue_amount),
            "attempt": attempt,
            "rule": self._rule(step),
        }
        task_id = await self._tasks.open(kind, context=context)
        if step in CONTACT_STEPS:
            self._calls[task_id] = step.value
        self._watch(task_id, kind)
        return task_id

    async def _close(self, task_id: str, why: str) -> None:
        watcher = self._watchers.pop(task_id, None)
        if watcher is not None:
            watcher.cancel()
        step = self._calls.pop(task_id, "")
        await self._tasks.close(task_id, TaskStatus.CANCELLED)
        await self._log(step or "task", "task", "cancelled", why, task_id=task_id)

    def _watch(self, task_id: str, kind: TaskKind) -> None:
        async def run() -> None:
            decision = await self._tasks.wait(task_id)
            self._watchers.pop(task_id, None)
            self._working += 1
            try:
                await self._decided(task_id, kind, decision)
            finally:
                self._working -= 1
                self._changed += 1

        self._watchers[task_id] = asyncio.create_task(run())

    # ---- outcomes ------------------------------------------------------------------------------

    async def _decided(self, task_id: str, kind: TaskKind, req: DecisionRequest | None) -> None:
        today = self._p.today()
        if kind in _CONTACT_KINDS:
            step = LadderStep(self._calls.pop(task_id, _CONTACT_KINDS[kind].value))
            if req is None:
                await self._log(step.value, "task", "expired", "nobody made the call", task_id)
                return
            await self._contact(step, task_id, req, today)
        elif kind == TaskKind.COLLECTION_DISPUTE:
            self._dispute = None
            await self._log(
                "dispute",
                "task",
                req.decision if req else "expired",
                "a dispute pauses the ladder until customer service answers it",
                task_id,
                actor=req.user if req else "system",
                note=req.comment if req else None,
            )
        elif kind == TaskKind.LEGAL_REVIEW:
            await self._log(
                LadderStep.LEGAL_REVIEW.value,
                "legal",
                req.decision if req else "expired",
                self._rule(LadderStep.LEGAL_REVIEW),
                task_id,
                actor=req.user if req else "system",
                note=req.comment if req else None,
            )
        elif kind == TaskKind.WRITE_OFF_PROPOSAL:
            decision = req.decision if req else "expired"
            await self._log(
                LadderStep.WRITE_OFF_PROPOSAL.value,
                "write_off",
                decision,
                self._rule(LadderStep.WRITE_OFF_PROPOSAL),
                task_id,
                actor=req.user if req else "system",
                note=req.comment if req else None,
            )
            if decision == "propose":
                approval = await self._tasks.open(
                    TaskKind.WRITE_OFF_APPROVAL,
                    context={"episode": self._inp.episode, "proposed_by": req.user if req else ""},
                )
                self._watch(approval, TaskKind.WRITE_OFF_APPROVAL)
        elif kind == TaskKind.WRITE_OFF_APPROVAL:
            decision = req.decision if req else "expired"
            await self._log(
                "write_off_approval",
                "write_off",
                decision,
                "maker-checker: the risk manager proposes, the department manager approves",
                task_id,
                actor=req.user if req else "system",
                note=req.comment if req else None,
            )
            if req is not None and decision == "approve":
                await workflow.get_external_workflow_handle(self._inp.parent_workflow_id).signal(
                    WRITE_OFF_APPROVED_SIGNAL,
                    WriteOffApproved(
                        episode=self._inp.episode,
                        proposed_by=self._tasks.deciders.get(Party.WRITE_OFF_PROPOSER.value, ""),
                        approved_by=req.user,
                        approved_at=workflow.now(),
                        reason=req.comment,
                    ),
                )
                self._write_off_requested = True

    async def _contact(
        self, step: LadderStep, task_id: str, req: DecisionRequest, today: date
    ) -> None:
        data: ContactOutcomeData = TASK_RULES[_STEP_TASK[step]].parse_data(req.decision, req.data)
        await self._log(
            step.value,
            "visit" if step == LadderStep.FIELD_VISIT else "phone",
            data.outcome.value,
            self._rule(step),
            task_id,
            actor=req.user,
            promise_amount=data.promise_amount,
            promise_date=data.promise_date,
            note="\n".join(x for x in (data.report, data.note, req.comment) if x) or None,
        )
        if data.outcome == Outcome.UNREACHABLE:  # another attempt (the daily limit bounds it)
            attempt = self._attempts_today(today) + 1
            await self._open(step, self._dpd(today), attempt=attempt)
        elif data.outcome == Outcome.PROMISE_TO_PAY:
            assert data.promise_amount is not None and data.promise_date is not None
            self._promise = PromiseState(
                task_id=task_id,
                amount=data.promise_amount,
                due_on=data.promise_date,
                paid_total_at_promise=self._status.paid_total,
                step=step.value,
            )
        elif data.outcome == Outcome.DISPUTE:
            self._dispute = await self._tasks.open(
                TaskKind.COLLECTION_DISPUTE,
                context={
                    "episode": self._inp.episode,
                    "raised_on": step.value,
                    "what": req.comment or data.note or "",
                },
            )
            self._watch(self._dispute, TaskKind.COLLECTION_DISPUTE)

    def _promise_kept(self) -> bool:
        p = self._promise
        assert p is not None
        return self._status.paid_total - p.paid_total_at_promise >= p.amount

    async def _check_promise(self, *, kept: bool) -> None:
        p = self._promise
        assert p is not None
        self._promise = None
        await self._log(
            p.step,
            "promise",
            "promise_kept" if kept else "promise_broken",
            f"promise_to_pay: kept when {p.amount} is received by {p.due_on.isoformat()}",
            p.task_id,
            promise_amount=p.amount,
            promise_date=p.due_on,
        )

    async def _end(self, outcome: str, why: str) -> str:
        if self._promise is not None and outcome == "cured":
            await self._check_promise(kept=True)
        for watcher in self._watchers.values():
            watcher.cancel()
        self._watchers.clear()
        await self._tasks.close_all(TaskStatus.CANCELLED)
        await self._log("episode", "system", outcome, why)
        self._p.resting = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    # ---- the log -------------------------------------------------------------------------------

    async def _log(
        self,
        step: str,
        channel: str,
        outcome: str,
        rule: str,
        task_id: str | None = None,
        *,
        actor: str = "system",
        **extra: Any,
    ) -> None:
        self._seq += 1
        policy = self._p.policy
        self._working += 1
        try:
            await workflow.execute_activity_method(
                CollectionsActivities.record_collection_step,
                CollectionStepInput(
                    key=f"{self._id}/{self._seq}",
                    application_no=self._inp.application_no,
                    episode=self._inp.episode,
                    workflow_id=self._id,
                    step=step,
                    channel=channel,
                    outcome=outcome,
                    rule=rule,
                    at=workflow.now(),
                    days_past_due=self._dpd(self._p.today()),
                    actor=actor,
                    task_id=task_id,
                    policy_version=policy.version,
                    business_timezone=policy.business_timezone,
                    contact_hours=(policy.contact_hours_start, policy.contact_hours_end),
                    **extra,
                ),
                **DB_WRITE,
            )
        finally:
            self._working -= 1

    # ---- continue-as-new -----------------------------------------------------------------------

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._p.policy.continue_as_new_after_events
        )

    def _carry_over(self) -> CollectionsInput:
        return replace(
            self._inp,
            status=self._status,
            tasks=self._tasks.snapshot(),
            done=tuple(self._done),
            calls=dict(self._calls),
            dispute_task=self._dispute,
            promise=self._promise,
            attempts={d: n for d, n in self._attempts.items() if d >= str(self._p.today())},
            write_off_requested=self._write_off_requested,
            seq=self._seq,
            accelerated=self._accelerated,
        )

    # ---- signals, updates and the query ---------------------------------------------------------

    @workflow.signal(name=COLLECTIONS_ACCELERATE_SIGNAL)
    def on_accelerate(self, request: CollectionsAcceleration) -> None:
        """A post-loan review asked to collect sooner: the next rung is taken now instead of
        at its DPD (after a promise's date or a dispute's answer, if one is pending)."""
        self._accelerated += 1
        self._changed += 1

    @workflow.signal(name=COLLECTIONS_STATUS_SIGNAL)
    def on_status(self, status: CollectionsStatus) -> None:
        self._status = status
        self._changed += 1

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        task = self._open_task(req.task_id)
        if task is not None and task.kind in _CONTACT_KINDS:
            day = self._p.today().isoformat()
            self._attempts[day] = self._attempts.get(day, 0) + 1  # counted as it is accepted
        return await self._tasks.handle(req)

    @decide.validator
    def _validate_decision(self, req: DecisionRequest) -> None:
        self._tasks.validate(req, self._conduct)

    def _open_task(self, task_id: str) -> OpenTask | None:
        return next((t for t in self._tasks.snapshot().open if t.task_id == task_id), None)

    def _attempts_today(self, today: date) -> int:
        return self._attempts.get(today.isoformat(), 0)

    def _conduct(self, task: OpenTask, req: DecisionRequest) -> None:
        """The conduct rules on a contact attempt (its outcome recorded now), and a promise's
        date. A rule broken is refused naming it; nothing is recorded."""
        if task.kind not in _CONTACT_KINDS:
            return
        policy = self._p.policy
        now = workflow.now()
        local = now.astimezone(calendar.zone(policy.business_timezone))
        opens, closes = policy.contact_hours_start, policy.contact_hours_end
        if not opens <= local.time() < closes:
            refuse(
                "ConductRule",
                f"conduct rule {RULE_CONTACT_WINDOW}: borrowers are contacted only between "
                f"{opens:%H:%M} and {closes:%H:%M} {policy.business_timezone} "
                f"(it is {local:%H:%M} there)",
            )
        today = local.date()
        limit = policy.collection_max_contacts_per_day
        if self._attempts_today(today) >= limit:
            refuse(
                "ConductRule",
                f"conduct rule {RULE_DAILY_LIMIT}: at most {limit} contact attempts a day per "
                f"loan; today's {limit} have been made",
            )
        data = TASK_RULES[task.kind].parse_data(req.decision, req.data)
        if data.promise_date is not None:
            latest = today + timedelta(days=policy.collection_promise_max_days)
            if not today <= data.promise_date <= latest:
                raise ValueError(
                    f"data.promise_date: must be between today and {latest.isoformat()} "
                    f"(collection_promise_max_days {policy.collection_promise_max_days})"
                )

    @workflow.query(name=STATE_QUERY)
    def state(self) -> LoanView:
        return LoanView(
            application_no=self._inp.application_no,
            stage=self._p.stage,
            policy=self._p.policy,
            open_tasks=self._tasks.visible(),
        )
