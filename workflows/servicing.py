"""Servicing (seed §3.6-3.7): repayments, reminders before due dates, overdue marking and the
daily penalty refresh, customer service's calls, settlement. Continues as new on the same
workflow id when its history grows, carrying the ledger and every open task.

Seams for what follows: the collections ladder becomes a child workflow started where an
installment falls overdue (``_mark_overdue``); periodic post-loan reviews are started by Temporal
Schedules and reach the loan through its updates.

Deterministic code only.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.archive import ArchiveActivities
    from activities.servicing import ServicingActivities
    from activities.settlement import SettlementActivities
    from domain import calendar
    from domain.allocation import InstallmentBalance
    from domain.identifiers import (
        DECIDE_UPDATE,
        PAYMENT_UPDATE,
        REVERSAL_UPDATE,
        REVIEW_SIGNAL,
        SERVICING_WORKFLOW,
        SIGN_UPDATE,
        STATE_QUERY,
        WITHDRAW_UPDATE,
        WRITE_OFF_APPROVED_SIGNAL,
    )
    from domain.lifecycle import Stage
    from domain.refund import REFUND_PATCH
    from domain.tasks import TaskKind, TaskStatus
    from models.shapes import (
        ArchiveInput,
        CollectionsAcceleration,
        DecisionRequest,
        DecisionResult,
        LoanView,
        OpenTask,
        PaymentRequest,
        PaymentResult,
        ReversalRequest,
        ReversalTicket,
        ReviewRequest,
        ServicingEventInput,
        ServicingInput,
        SettleInput,
        SettlementCertificateInput,
        SignRequest,
        WithdrawRequest,
        WriteOffApproved,
    )
    from workflows.aftercare import Aftercare
    from workflows.collections_link import ACCELERATE_PATCH, COLLECTIONS_PATCH, CollectionsLink
    from workflows.common import DB_WRITE, RENDER, LoanProgress, on_render_queue, refuse
    from workflows.human_tasks import HumanTasks
    from workflows.ledger import LoanLedger
    from workflows.refund import SettlementRefund
    from workflows.reversal import PaymentReversals
    from workflows.settlement_confirmation import SettlementConfirmation
    from workflows.write_off import WriteOff

# A payment whose handler gets the ledger lock once the loan stopped taking payments (its
# settlement confirmed, or SETTLED) is refused and books nothing (issue 12 §2).
SETTLED_REFUSES_PATCH = "settled-refuses-payments-v1"

# Customer service calls in office hours (local time), inside the contact window.
CALL_AT = time(10, 0)
# The daily overdue refresh runs just after local midnight.
REFRESH_AT = time(0, 5)

Event = tuple[datetime, Callable[[], Awaitable[None]]]


@workflow.defn(name=SERVICING_WORKFLOW)
class ServicingWorkflow:
    @workflow.init
    def __init__(self, inp: ServicingInput) -> None:
        self._inp = inp
        stage = Stage.WRITTEN_OFF if inp.write_off is not None else Stage.SERVICING
        self._p = LoanProgress(inp.application_no, inp.policy, stage, inp.stage_seq)
        self._ledger = LoanLedger(
            inp.application_no, inp.policy, inp.offer, inp.start_date, inp.ledger
        )
        self._tasks = HumanTasks(self._p, inp.tasks)
        self._reminded = set(inp.reminded)
        self._overdue_marked = set(inp.overdue_marked)
        self._follow_up_opened = inp.follow_up_opened
        self._reversals = PaymentReversals(self._p, self._tasks, self._ledger, inp.reversals)
        self._settlement = SettlementConfirmation(
            self._p, self._tasks, self._ledger, self._reversals
        )
        self._aftercare = Aftercare(self._p, self._tasks, inp, self.accelerate_collection)
        self._collections = CollectionsLink(
            inp.application_no, inp.policy, inp.collections_episode, inp.collections_open
        )
        self._write_off = WriteOff(self._p, self._ledger, inp.write_off, inp.write_off_pending)
        self._refund = SettlementRefund(self._p, self._tasks)

    @workflow.run
    async def run(self, inp: ServicingInput) -> str:
        self._reversals.resume()
        self._aftercare.start()
        self._tasks.watch_all()
        while not self._ledger.paid_off or not await self._settlement_confirmed():
            if self._history_is_long():
                # Keep each run's history small: carry the ledger and the open tasks over.
                self._p.resting = True
                await workflow.wait_condition(
                    lambda: (
                        workflow.all_handlers_finished()
                        and self._tasks.busy == 0
                        and self._aftercare.busy == 0
                    )
                )
                workflow.continue_as_new(self._carry_over())
            await self._collections_and_write_off()
            now = workflow.now()
            wake_at, handler = self._next_event(now)
            seen = self._ledger.version
            if wake_at > now:
                try:
                    await self._p.rest(
                        lambda seen=seen: (  # type: ignore[misc]
                            self._ledger.version != seen or self._write_off.pending is not None
                        ),
                        at_most=wake_at - now,
                    )
                    continue
                except TimeoutError:
                    pass
            async with self._ledger.lock:
                await handler()
        await self._collections_and_write_off()  # paid off: the episode ends
        refund = Decimal("0")
        async with self._ledger.lock:
            # A credit left at settlement is refunded through the refund tasks and the bank
            # (workflows/refund.py); loans settled before keep the inbox notice.
            if self._ledger.credit > 0 and workflow.patched(REFUND_PATCH):
                refund = self._ledger.credit
            await workflow.execute_activity_method(
                ServicingActivities.settle_loan,
                SettleInput(
                    inp.application_no, workflow.now(), self._ledger.credit, refund_task=refund > 0
                ),
                **DB_WRITE,
            )
            if workflow.patched("settlement-certificate-v1"):
                # The loan's papers are complete before its status says SETTLED (seed §3.7).
                await workflow.execute_activity_method(
                    SettlementActivities.issue_settlement_certificate,
                    SettlementCertificateInput(
                        application_no=inp.application_no,
                        contract_no=inp.contract.contract_no,
                        at=workflow.now(),
                        settled_on=self._p.today(),
                    ),
                    **on_render_queue(RENDER),
                )
            await self._archive()
            await self._p.enter(Stage.SETTLED)
        await self._tasks.close_all(TaskStatus.CANCELLED)  # calls about a settled loan
        if refund > 0:  # the SETTLED workflow stays open until the credit is refunded
            await self._refund.run(refund)
        self._p.resting = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._p.stage.value

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._p.policy.continue_as_new_after_events
        )

    def _carry_over(self) -> ServicingInput:
        return ServicingInput(
            application_no=self._inp.application_no,
            policy=self._p.policy,
            offer=self._inp.offer,
            contract=self._inp.contract,
            start_date=self._ledger.start_date,
            ledger=self._ledger.snapshot(),
            tasks=self._tasks.snapshot(),
            reminded=tuple(sorted(self._reminded)),
            overdue_marked=tuple(sorted(self._overdue_marked)),
            follow_up_opened=self._follow_up_opened,
            stage_seq=self._p.seq,
            reversals=self._reversals.snapshot(),
            follow_up_calls=self._aftercare.calls,
            reviews_opened=self._aftercare.carried(),
            collections_episode=self._collections.episode,
            collections_open=self._collections.running,
            write_off_pending=self._write_off.pending,
            write_off=self._write_off.state,
        )

    # ---- settlement confirmation and archive (settlement-confirmation-v1) ----------------------

    async def _settlement_confirmed(self) -> bool:
        """The last fen is paid: operations confirms the settlement (workflows.
        settlement_confirmation); False when a reversal reopened the ledger meanwhile. Loans
        that reached this point before the patch settle at once, as they did."""
        if not workflow.patched("settlement-confirmation-v1"):
            return True
        return await self._settlement.settle_confirmed()

    async def _archive(self) -> None:
        """A confirmed settlement archives the loan's documents (certificate included), kept
        ``archive_retention_years`` after the settlement date."""
        if not self._settlement.confirmed:
            return
        settled_on = self._p.today()
        years = self._p.policy.archive_retention_years
        try:
            retain_until = settled_on.replace(year=settled_on.year + years)
        except ValueError:  # 29 February
            retain_until = settled_on.replace(year=settled_on.year + years, day=28)
        await workflow.execute_activity_method(
            ArchiveActivities.archive_loan,
            ArchiveInput(self._inp.application_no, workflow.now(), settled_on, retain_until),
            **RENDER,
        )

    # ---- timers --------------------------------------------------------------------------------

    def _next_event(self, now: datetime) -> Event:
        if self._write_off.done:  # a written-off loan waits for recoveries only
            return (now + timedelta(days=30), self._rest_written_off)
        policy = self._p.policy
        tz = policy.business_timezone
        events: list[Event] = []
        if self._aftercare.enabled:
            next_call = self._aftercare.next_call_on(self._ledger.start_date)
            if next_call is not None:
                at = calendar.local_instant(next_call, CALL_AT, tz)
                events.append((at, self._aftercare.open_call))
        elif not self._follow_up_opened:
            call_on = self._ledger.start_date + timedelta(days=policy.follow_up_call_after_days)
            events.append((calendar.local_instant(call_on, CALL_AT, tz), self._follow_up))
        unpaid = [i for i in self._ledger.installments if not i.is_paid]
        if any(i.number in self._overdue_marked for i in unpaid):
            tomorrow = calendar.business_date(now, tz) + timedelta(days=1)
            events.append((calendar.local_instant(tomorrow, REFRESH_AT, tz), self._refresh))
        for inst in unpaid:
            if inst.number not in self._overdue_marked:
                due_end = calendar.end_of_business_day(inst.due_date, tz)
                events.append((due_end, functools.partial(self._mark_overdue, inst)))
                remind_on = inst.due_date - timedelta(days=policy.reminder_days_before_due)
                remind_at = calendar.local_instant(remind_on, policy.reminder_time, tz)
                if inst.number not in self._reminded and remind_at < due_end:
                    events.append((remind_at, functools.partial(self._remind, inst)))
                break  # later installments are scheduled once this one is settled or overdue
        return min(events, key=lambda e: e[0])

    async def _follow_up(self) -> None:
        """Customer service calls the borrower about the use of the funds (回訪, seed §3.6)."""
        self._follow_up_opened = True
        task_id = await self._tasks.open(TaskKind.FOLLOW_UP_CALL)
        self._tasks.watch(task_id)

    async def _remind(self, inst: InstallmentBalance) -> None:
        self._reminded.add(inst.number)
        await self._servicing_event("reminder", inst.number)

    async def _mark_overdue(self, inst: InstallmentBalance) -> None:
        if self._ledger.credit > 0 and await self._ledger.apply_held_credit(inst):
            return  # the credit held paid it: not overdue
        self._overdue_marked.add(inst.number)
        days_past_due = await self._servicing_event("overdue", inst.number)
        if workflow.patched(COLLECTIONS_PATCH):
            # The collections ladder replaces the single overdue call (workflows/collections.py).
            await self._collections.overdue(self._ledger.installments, self._p.today())
            return
        task_id = await self._tasks.open(
            TaskKind.OVERDUE_CALL,
            context={"installment": inst.number, "days_past_due": days_past_due},
        )
        self._tasks.watch(task_id)

    async def _refresh(self) -> None:
        await self._servicing_event("overdue_refresh", 0)

    # ---- collections and write-off (workflows/collections.py, workflows/write_off.py) -------

    async def _collections_and_write_off(self) -> None:
        """Tell the running collections episode how the loan stands (it ends once the loan is
        current), and write the loan off once an episode's write-off is approved."""
        if self._write_off.pending is not None:
            async with self._ledger.lock:
                await self._write_off.apply()
            if self._write_off.done:
                self._collections.running = False  # the episode ended with its approval
        await self._collections.tell(self._ledger.installments, self._p.today())

    async def _rest_written_off(self) -> None:
        """Nothing falls due on a written-off loan: its workflow only takes recoveries."""

    @workflow.signal(name=WRITE_OFF_APPROVED_SIGNAL)
    def write_off_approved(self, approval: WriteOffApproved) -> None:
        self._write_off.approved(approval)

    async def _servicing_event(self, event: str, number: int) -> int:
        """Accrue penalties to today and record the event (notices, installment rows); returns
        the days past due."""
        today = self._p.today()
        owed = self._ledger.accrue(today)
        policy = self._p.policy
        await workflow.execute_activity_method(
            ServicingActivities.servicing_event,
            ServicingEventInput(
                application_no=self._inp.application_no,
                event=event,
                installment=number,
                at=workflow.now(),
                business_date=today,
                installments=self._ledger.installments,
                days_past_due=owed.days_past_due,
                business_timezone=policy.business_timezone,
                contact_hours=(policy.contact_hours_start, policy.contact_hours_end),
            ),
            **DB_WRITE,
        )
        return owed.days_past_due

    # ---- aftercare ---------------------------------------------------------------------------

    @workflow.signal(name=REVIEW_SIGNAL)
    async def request_review(self, req: ReviewRequest) -> None:
        """The review sweep asks for the loan's post-loan review of ``req.period_key`` (opened
        once per key; ignored once the loan has left servicing)."""
        await self._aftercare.open_review(req)

    async def accelerate_collection(self, period_key: str, reason: str, by: str) -> None:
        """A post-loan review (``period_key``, by ``by``) decided to collect sooner (its record
        and the audit event ``loan.collection_accelerated`` are written before this is called):
        the running collections episode takes its next rung now (accelerate-collection-v1). A
        loan with no overdue episode has nothing to collect: the decision stays on record."""
        if not workflow.patched(ACCELERATE_PATCH):
            return
        await self._collections.accelerate(CollectionsAcceleration(period_key, reason, by))

    # ---- updates and the query ---------------------------------------------------------------

    @workflow.update(name=PAYMENT_UPDATE)
    async def post_payment(self, req: PaymentRequest) -> PaymentResult:
        async with self._ledger.lock:
            if workflow.patched(SETTLED_REFUSES_PATCH):
                # The validator ran before this handler waited for the lock: the loan may have
                # stopped taking payments meanwhile (its settlement confirmed, or SETTLED).
                self._refuse_if_settling(req)
            outcome = await self._ledger.post(req, self._p.stage)
            await self._write_off.recovered(outcome)  # a payment on a written-off loan
        if self._ledger.paid_off and not outcome.duplicate:
            # Settled, or (settlement-confirmation-v1) waiting for the confirmation.
            await workflow.wait_condition(
                lambda: self._p.stage == Stage.SETTLED or self._settlement.awaiting
            )
            outcome = replace(outcome, stage=self._p.stage)
        return outcome

    @post_payment.validator
    def _validate_payment(self, req: PaymentRequest) -> None:
        self._refuse_if_settling(req)
        self._ledger.validate(req, self._p.stage)

    def _refuse_if_settling(self, req: PaymentRequest) -> None:
        """No payment is booked once the settlement is confirmed (its credit is then final and
        refunded) or the loan is SETTLED; a repeat of a booked payment gets its first answer."""
        if self._ledger.has_payment(req.external_ref):
            return
        if self._p.stage == Stage.SETTLED or self._settlement.confirmed:
            refuse(
                "WrongStage",
                "the loan is settled; the payment is not booked and goes back to the payer "
                "(its bank reference is released)",
            )

    @workflow.update(name=DECIDE_UPDATE)
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        result = await self._tasks.handle(req)
        await self._aftercare.settled()  # a follow-up's flags, a review's outcome
        return result

    @decide.validator
    def _validate_decision(self, req: DecisionRequest) -> None:
        self._tasks.validate(req, self._check_decision)

    def _check_decision(self, task: OpenTask, req: DecisionRequest) -> None:
        self._settlement.check(task, req)
        self._refund.check(task, req)

    @workflow.update(name=REVERSAL_UPDATE)
    async def request_reversal(self, req: ReversalRequest) -> ReversalTicket:
        return await self._reversals.request(req)

    @request_reversal.validator
    def _validate_reversal(self, req: ReversalRequest) -> None:
        self._reversals.validate(req, self._p.stage, settling=self._settlement.confirmed)

    @workflow.update(name=WITHDRAW_UPDATE)
    async def withdraw(self, req: WithdrawRequest) -> DecisionResult:
        refuse("WrongStage", "a loan in SERVICING can no longer be withdrawn")

    @withdraw.validator
    def _validate_withdraw(self, req: WithdrawRequest) -> None:
        refuse("WrongStage", f"a loan in {self._p.stage.value} can no longer be withdrawn")

    @workflow.update(name=SIGN_UPDATE)
    async def sign_contract(self, req: SignRequest) -> DecisionResult:
        refuse("WrongStage", "the contract is already signed")

    @sign_contract.validator
    def _validate_signature(self, req: SignRequest) -> None:
        refuse("WrongStage", f"the contract cannot be signed in {self._p.stage.value}")

    @workflow.query(name=STATE_QUERY)
    def state(self) -> LoanView:
        return LoanView(
            application_no=self._inp.application_no,
            stage=self._p.stage,
            policy=self._p.policy,
            open_tasks=self._tasks.visible(),
            offer=self._inp.offer,
            contract=self._inp.contract,
            start_date=self._ledger.start_date,
            installments=self._ledger.installments,
            credit=self._ledger.credit,
            refund=self._refund.status.value if self._refund.status is not None else None,
        )
