"""The loan workflow: one per application, from intake review to settlement (seed §3).

Deterministic code only. Every human step goes through ``_human_task``; every side effect is an
activity; every figure comes from the money engine in ``domain/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NoReturn, cast

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.applications import ApplicationActivities
    from activities.contracts import ContractActivities
    from activities.disbursement import DisbursementActivities
    from activities.servicing import ServicingActivities
    from activities.tasks import TaskActivities
    from domain import calendar
    from domain.allocation import (
        AllocationResult,
        InstallmentBalance,
        Overpayment,
        allocate_payment,
        apply_credit,
        balances_from_schedule,
        outstanding,
    )
    from domain.disclosure import CeilingPolicy, check_interest_ceiling, disclose_cost
    from domain.lifecycle import TASK_RULES, Stage, TaskKind, TaskStatus, escalated_priority
    from domain.lpr import LprRate, LprTable
    from domain.penalty import PenaltyPolicy, accrue_penalties
    from domain.prepayment import ReamortizeMode, apply_partial_prepayment, apply_payoff
    from domain.schedule import RepaymentMethod
    from models.shapes import (
        CREDIT_MODE,
        PAYMENT_MODES,
        BookLoanInput,
        CloseTaskInput,
        ContractInfo,
        ContractInput,
        DecisionRequest,
        DecisionResult,
        DisburseInput,
        EscalateTaskInput,
        LoanInput,
        LoanTerms,
        LoanView,
        Offer,
        OfferInput,
        OpenTaskInput,
        PaymentRequest,
        PaymentResult,
        PendingTask,
        ProcessSettings,
        RecordPaymentInput,
        ServicingEventInput,
        ServicingState,
        SettleInput,
        SignatureInput,
        SignRequest,
        StageInput,
    )

STAGE_ATTR = SearchAttributeKey.for_keyword("LoanStage")
TASK_NAMESPACE = uuid.UUID("6f1c2a52-4d0e-4c57-9c55-0b1f4a0e7a11")
REMIND_AT = time(9, 0)
SETTLE_WAIT = timedelta(seconds=20)  # inside the default contact hours (08:00-21:00)

ACTIVITY_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        maximum_interval=timedelta(minutes=1), non_retryable_error_types=["BusinessRuleError"]
    ),
}


def task_id_for(application_no: str, seq: int, kind: str) -> str:
    """Stable task id: the same business step always has the same id, whatever retries happen."""
    return str(uuid.uuid5(TASK_NAMESPACE, f"{application_no}/{seq}/{kind}"))


class _Ended(Exception):
    """Raised inside the workflow to end the loan early (rejected, withdrawn, expired)."""

    def __init__(self, stage: Stage, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


def _refuse(kind: str, message: str) -> NoReturn:
    """Reject an update before anything is written; the API maps ``kind`` to an HTTP status."""
    raise ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn
class LoanWorkflow:
    @workflow.init
    def __init__(self, inp: LoanInput) -> None:
        self._app_no = inp.application_no
        self._cfg: ProcessSettings = inp.settings
        self._requested_amount = inp.requested_amount
        self._submitted_by = inp.submitted_by
        self._stage = Stage.INTAKE_REVIEW
        self._stage_seq = 0
        self._task_seq = 0
        self._pending: PendingTask | None = None
        self._pending_shown = False
        self._decision: DecisionRequest | None = None
        self._closed_tasks: set[str] = set()
        self._withdrawal: DecisionRequest | None = None
        self._lpr: LprRate | None = None
        self._offer: Offer | None = None
        self._contract: ContractInfo | None = None
        self._signed = False
        self._start_date: date | None = None
        self._installments: tuple[InstallmentBalance, ...] = ()
        self._credit = Decimal("0")
        self._payments: dict[str, PaymentResult] = {}
        self._ledger_lock = asyncio.Lock()
        self._ledger_version = 0
        self._ledger_as_of: date | None = None
        self._reminded: set[int] = set()
        self._resting = False
        self._overdue_marked: set[int] = set()

    # ---- run -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: LoanInput) -> str:
        try:
            if inp.resume is not None:
                self._restore(inp.resume)
            else:
                await self._origination()
            await self._servicing()
        except _Ended as end:
            if self._pending is not None:
                await self._close_pending(
                    TaskStatus.EXPIRED if end.stage == Stage.EXPIRED else TaskStatus.CANCELLED
                )
            actor = self._withdrawal.user if self._withdrawal else "system"
            await self._enter(end.stage, actor=actor, reason=end.reason)
        self._resting = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._stage.value

    async def _origination(self) -> None:
        await self._enter(Stage.INTAKE_REVIEW, actor=self._submitted_by)
        intake_reviewer = await self._intake_review()

        await self._enter(Stage.RISK_REVIEW)
        risk = await self._human_task(TaskKind.RISK_REVIEW, maker=intake_reviewer)
        if risk.decision == "reject":
            raise _Ended(Stage.REJECTED, risk.comment or "rejected at risk review")

        await self._enter(Stage.PRODUCT_MATCHING)
        self._lpr = await workflow.execute_activity_method(
            ApplicationActivities.lpr_in_force, self._today(), **ACTIVITY_OPTIONS
        )
        match = await self._human_task(TaskKind.PRODUCT_MATCHING)
        if match.decision == "reject":
            raise _Ended(Stage.REJECTED, match.comment or "no product matches")
        self._offer = self._make_offer(_terms_from(match.data or {}))
        await workflow.execute_activity_method(
            ContractActivities.record_offer,
            OfferInput(self._app_no, self._offer, match.user, workflow.now()),
            **ACTIVITY_OPTIONS,
        )

        await self._enter(Stage.OFFER_CONFIRMATION)
        confirm = await self._human_task(
            TaskKind.OFFER_CONFIRMATION,
            maker=match.user,
            expires_after=timedelta(days=self._cfg.offer_valid_days),
        )
        if confirm.decision == "decline":
            raise _Ended(Stage.WITHDRAWN, confirm.comment or "the borrower declined the offer")

        await self._enter(Stage.CONTRACT_SIGNING)
        self._contract = await workflow.execute_activity_method(
            ContractActivities.prepare_contract,
            ContractInput(
                application_no=self._app_no,
                contract_no=f"HT{self._app_no}",
                offer=self._offer,
                contract_date=self._today(),
                penalty_multiple=self._cfg.penalty_multiple,
                at=workflow.now(),
            ),
            **ACTIVITY_OPTIONS,
        )
        try:
            await self._rest(
                lambda: self._signed or self._withdrawal is not None,
                at_most=timedelta(days=self._cfg.contract_sign_days),
            )
        except TimeoutError:
            raise _Ended(Stage.EXPIRED, "the contract was not signed in time") from None
        self._raise_if_withdrawn()

        await self._enter(Stage.DISBURSEMENT)
        disbursement = await self._human_task(TaskKind.DISBURSEMENT, maker=intake_reviewer)
        if disbursement.decision == "reject":
            raise _Ended(Stage.REJECTED, disbursement.comment or "disbursement refused")
        terms = self._offer.terms
        paid = await workflow.execute_activity_method(
            DisbursementActivities.disburse,
            DisburseInput(
                application_no=self._app_no,
                idempotency_key=f"disburse-{self._app_no}",
                principal=terms.principal,
                net_amount=terms.principal - terms.upfront_fee,
                approved_by=disbursement.user,
                at=workflow.now(),
            ),
            **ACTIVITY_OPTIONS,
        )
        self._start_date = paid.business_date
        self._installments = balances_from_schedule(terms.schedule(paid.business_date))
        await workflow.execute_activity_method(
            DisbursementActivities.book_loan,
            BookLoanInput(self._app_no, paid.business_date, self._installments, workflow.now()),
            **ACTIVITY_OPTIONS,
        )
        await self._enter(Stage.SERVICING, actor=disbursement.user)

    async def _intake_review(self) -> str:
        """Intake review, looping through supplements until approved; returns the reviewer."""
        while True:
            review = await self._human_task(TaskKind.INTAKE_REVIEW, maker=self._submitted_by)
            if review.decision == "approve":
                return review.user
            if review.decision == "reject":
                raise _Ended(Stage.REJECTED, review.comment or "rejected at intake review")
            await self._human_task(
                TaskKind.SUPPLEMENT_DOCUMENTS,
                expires_after=timedelta(days=self._cfg.supplement_deadline_days),
            )

    # ---- servicing ---------------------------------------------------------------------------

    async def _servicing(self) -> None:
        """Wake on reminders, due dates, the daily overdue refresh, and on payments."""
        while not all(i.is_paid for i in self._installments):
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= self._cfg.continue_as_new_after_events
            ):
                # A long loan keeps each run's history small: carry the ledger into a new run.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._continue_input())
            now = workflow.now()
            wake_at, handler = self._next_servicing_event(now)
            seen = self._ledger_version
            if wake_at > now:
                try:
                    await self._rest(
                        lambda seen=seen: self._ledger_version != seen,
                        at_most=wake_at - now,
                    )
                    continue
                except TimeoutError:
                    pass
            async with self._ledger_lock:
                await handler()
        async with self._ledger_lock:
            await workflow.execute_activity_method(
                ServicingActivities.settle_loan,
                SettleInput(self._app_no, workflow.now(), self._credit),
                **ACTIVITY_OPTIONS,
            )
            await self._enter(Stage.SETTLED)

    def _next_servicing_event(self, now: datetime) -> tuple[datetime, Any]:
        tz = self._cfg.business_timezone
        events: list[tuple[datetime, Any]] = []
        unpaid = [i for i in self._installments if not i.is_paid]
        overdue = [i for i in unpaid if i.number in self._overdue_marked]
        if overdue:
            tomorrow = calendar.business_date(now, tz) + timedelta(days=1)
            events.append((calendar.local_instant(tomorrow, time(0, 5), tz), self._refresh_overdue))
        for inst in unpaid:
            if inst.number not in self._overdue_marked:
                due_end = calendar.end_of_business_day(inst.due_date, tz)
                events.append((due_end, lambda inst=inst: self._mark_overdue(inst)))
                remind_on = inst.due_date - timedelta(days=self._cfg.reminder_days_before_due)
                remind_at = calendar.local_instant(remind_on, REMIND_AT, tz)
                if inst.number not in self._reminded and remind_at < due_end:
                    events.append((remind_at, lambda inst=inst: self._remind(inst)))
                break  # later installments are scheduled once this one is settled or overdue
        return min(events, key=lambda e: e[0])

    async def _remind(self, inst: InstallmentBalance) -> None:
        self._reminded.add(inst.number)
        await self._servicing_event("reminder", inst.number)

    async def _mark_overdue(self, inst: InstallmentBalance) -> None:
        if self._credit > 0 and await self._apply_held_credit(inst):
            return  # the credit held paid it: not overdue
        self._overdue_marked.add(inst.number)
        await self._servicing_event("overdue", inst.number)

    async def _apply_held_credit(self, inst: InstallmentBalance) -> bool:
        """On a due date, credit held pays what is due (recorded like a payment, mode
        ``credit``, amount 0: no new money); True when the installment is then paid."""
        result = apply_credit(
            installments=self._installments,
            credit=self._credit,
            as_of=inst.due_date,
            annual_rate=self._terms.annual_rate,
            penalty_policy=self._penalty_policy(),
            max_annual_rate=self._rate_cap,
        )
        if not result.lines:
            return False
        request = PaymentRequest(
            external_ref=f"credit-{self._app_no}-{inst.number}",
            amount=Decimal("0.00"),
            paid_at=workflow.now(),
            paid_on=inst.due_date,
            recorded_by="system",
            mode=CREDIT_MODE,
        )
        await self._book(request, result)
        paid = next(i for i in self._installments if i.number == inst.number)
        return paid.is_paid

    async def _refresh_overdue(self) -> None:
        await self._servicing_event("overdue_refresh", 0)

    async def _servicing_event(self, event: str, number: int) -> None:
        today = self._today()
        if self._ledger_as_of is None or today > self._ledger_as_of:
            self._installments = accrue_penalties(
                installments=self._installments,
                as_of=today,
                annual_rate=self._terms.annual_rate,
                policy=self._penalty_policy(),
                max_annual_rate=self._rate_cap,
            )
            self._ledger_as_of = today
        owed = outstanding(
            installments=self._installments,
            as_of=today,
            annual_rate=self._terms.annual_rate,
            penalty_policy=self._penalty_policy(),
            max_annual_rate=self._rate_cap,
        )
        await workflow.execute_activity_method(
            ServicingActivities.servicing_event,
            ServicingEventInput(
                application_no=self._app_no,
                event=event,
                installment=number,
                at=workflow.now(),
                business_date=today,
                installments=self._installments,
                days_past_due=owed.days_past_due,
            ),
            **ACTIVITY_OPTIONS,
        )

    # ---- the human-task mechanism ----------------------------------------------------------

    async def _human_task(
        self,
        kind: TaskKind,
        *,
        maker: str | None = None,
        expires_after: timedelta | None = None,
    ) -> DecisionRequest:
        """Open a task, wait for its decision (escalating at each SLA), close it; or expire it."""
        rule = TASK_RULES[kind]
        self._task_seq += 1
        now = workflow.now()
        sla = timedelta(hours=self._cfg.sla_hours.get(kind.value, 24))
        expires_at = now + expires_after if expires_after is not None else None
        pending = PendingTask(
            task_id=task_id_for(self._app_no, self._task_seq, kind.value),
            kind=kind.value,
            candidate_role=rule.candidate_role.value,
            decisions=rule.decisions,
            maker=maker,
            priority=rule.base_priority,
            due_at=now + sla,
            expires_at=expires_at,
        )
        # Pending before the row exists: a decision that races a retried open_task (the row
        # committed, the activity not yet reported complete) is accepted, not refused. The query
        # shows the task only once its row surely exists.
        self._pending = pending
        self._pending_shown = False
        await workflow.execute_activity_method(
            TaskActivities.open_task,
            OpenTaskInput(
                task_id=pending.task_id,
                application_no=self._app_no,
                kind=kind.value,
                candidate_role=pending.candidate_role,
                maker=maker,
                priority=pending.priority,
                created_at=now,
                due_at=pending.due_at,
                expires_at=expires_at,
            ),
            **ACTIVITY_OPTIONS,
        )
        self._pending_shown = True
        level = 0
        while self._decision is None:
            self._raise_if_withdrawn()
            now = workflow.now()
            wake_at = pending.due_at if expires_at is None else min(pending.due_at, expires_at)
            try:
                await self._rest(
                    lambda: self._decision is not None or self._withdrawal is not None,
                    at_most=max(wake_at - now, timedelta(seconds=1)),
                )
            except TimeoutError:
                now = workflow.now()
                if expires_at is not None and now >= expires_at:
                    raise _Ended(Stage.EXPIRED, f"{kind.value} passed its deadline") from None
                level += 1
                pending = replace(
                    pending,
                    priority=escalated_priority(pending.priority),
                    due_at=now + sla,
                )
                self._pending = pending
                await workflow.execute_activity_method(
                    TaskActivities.escalate_task,
                    EscalateTaskInput(
                        task_id=pending.task_id,
                        application_no=self._app_no,
                        kind=kind.value,
                        level=level,
                        priority=pending.priority,
                        escalated_at=now,
                        next_due_at=pending.due_at,
                    ),
                    **ACTIVITY_OPTIONS,
                )
        decision = self._decision
        await workflow.execute_activity_method(
            TaskActivities.close_task,
            CloseTaskInput(
                task_id=pending.task_id,
                application_no=self._app_no,
                kind=kind.value,
                status=TaskStatus.COMPLETED.value,
                closed_at=workflow.now(),
                decision=decision.decision,
                decided_by=decision.user,
                comment=decision.comment,
                data=decision.data,
            ),
            **ACTIVITY_OPTIONS,
        )
        self._pending = None
        self._decision = None
        self._closed_tasks.add(pending.task_id)
        return decision

    async def _close_pending(self, status: TaskStatus) -> None:
        pending = self._pending
        if pending is None:
            return
        await workflow.execute_activity_method(
            TaskActivities.close_task,
            CloseTaskInput(
                task_id=pending.task_id,
                application_no=self._app_no,
                kind=pending.kind,
                status=status.value,
                closed_at=workflow.now(),
            ),
            **ACTIVITY_OPTIONS,
        )
        self._pending = None
        self._closed_tasks.add(pending.task_id)

    @workflow.update
    async def decide(self, req: DecisionRequest) -> DecisionResult:
        self._decision = req
        await workflow.wait_condition(lambda: req.task_id in self._closed_tasks)
        return DecisionResult(task_id=req.task_id, stage=await self._settled_stage())

    @decide.validator
    def _validate_decision(self, req: DecisionRequest) -> None:
        pending = self._pending
        if pending is None or pending.task_id != req.task_id or self._decision is not None:
            _refuse("TaskNotPending", f"task {req.task_id} is not the pending task of this loan")
        if pending.candidate_role not in req.roles:
            _refuse("Forbidden", f"a {pending.kind} task is decided by a {pending.candidate_role}")
        if req.decision not in pending.decisions:
            _refuse(
                "InvalidDecision",
                f"decision: must be one of {', '.join(pending.decisions)} for {pending.kind}",
            )
        if pending.maker is not None and req.user == pending.maker:
            _refuse(
                "MakerChecker",
                f"{req.user} made the step this {pending.kind} checks; another person must decide",
            )
        if pending.kind == TaskKind.PRODUCT_MATCHING and req.decision == "approve":
            try:
                self._make_offer(_terms_from(req.data or {}))
            except (ValueError, ArithmeticError) as exc:
                _refuse("InvalidData", str(exc))

    # ---- withdrawal, signing, payments ---------------------------------------------------------

    @workflow.update
    async def withdraw(self, req: DecisionRequest) -> DecisionResult:
        self._withdrawal = req
        await workflow.wait_condition(lambda: self._stage == Stage.WITHDRAWN)
        return DecisionResult(task_id=req.task_id, stage=self._stage.value)

    @withdraw.validator
    def _validate_withdraw(self, req: DecisionRequest) -> None:
        if not self._stage.can_withdraw or self._withdrawal is not None:
            _refuse("WrongStage", f"a loan in {self._stage.value} can no longer be withdrawn")

    @workflow.update
    async def sign_contract(self, req: SignRequest) -> DecisionResult:
        await workflow.execute_activity_method(
            ContractActivities.record_signature,
            SignatureInput(
                application_no=self._app_no,
                document_id=req.document_id,
                signer_name=req.signer_name,
                client_address=req.client_address,
                sha256=req.sha256,
                signed_at=workflow.now(),
            ),
            **ACTIVITY_OPTIONS,
        )
        self._signed = True
        await workflow.wait_condition(lambda: self._stage != Stage.CONTRACT_SIGNING)
        return DecisionResult(task_id=req.document_id, stage=await self._settled_stage())

    @sign_contract.validator
    def _validate_signature(self, req: SignRequest) -> None:
        if self._stage != Stage.CONTRACT_SIGNING or self._signed or self._contract is None:
            _refuse("WrongStage", f"the contract cannot be signed in {self._stage.value}")
        if req.document_id != self._contract.document_id or req.sha256 != self._contract.sha256:
            _refuse("WrongDocument", "this is not the contract awaiting signature")

    @workflow.update
    async def post_payment(self, req: PaymentRequest) -> PaymentResult:
        async with self._ledger_lock:
            if req.external_ref in self._payments:
                return replace(self._payments[req.external_ref], duplicate=True)
            try:
                result = self._apply_payment(req)
            except ValueError as exc:  # the ledger moved since the validator ran
                raise ApplicationError(str(exc), type="InvalidData", non_retryable=True) from exc
            await self._book(req, result)
            outcome = PaymentResult(
                external_ref=req.external_ref,
                amount=req.amount,
                lines=result.lines,
                credit=result.credit,
                stage=self._stage.value,
            )
            self._payments[req.external_ref] = outcome
        if all(i.is_paid for i in self._installments):
            await workflow.wait_condition(lambda: self._stage == Stage.SETTLED)
            outcome = replace(outcome, stage=self._stage.value)
        return outcome

    @post_payment.validator
    def _validate_payment(self, req: PaymentRequest) -> None:
        if req.external_ref in self._payments:
            return  # a duplicate: the handler answers with the first result
        if self._stage != Stage.SERVICING:
            _refuse("WrongStage", f"payments are posted in SERVICING, not {self._stage.value}")
        if req.amount <= 0:
            _refuse("InvalidData", "amount: must be greater than zero")
        if req.amount != req.amount.quantize(Decimal("0.01")):
            _refuse("InvalidData", "amount: must not have more than two decimal places")
        if req.paid_at > workflow.now() + timedelta(minutes=5):
            _refuse("InvalidData", "paid_at: is in the future")
        if self._start_date is not None and req.paid_on < self._start_date:
            _refuse("InvalidData", "paid_at: is before the loan was disbursed")
        if self._ledger_as_of is not None and req.paid_on < self._ledger_as_of:
            _refuse(
                "InvalidData",
                f"paid_at: is before the ledger date {self._ledger_as_of.isoformat()}; "
                "back-dated payments need a correction entry",
            )
        if req.mode not in PAYMENT_MODES:
            _refuse("InvalidData", f"mode: must be one of {', '.join(PAYMENT_MODES)}")
        try:
            self._apply_payment(req)
        except ValueError as exc:
            _refuse("InvalidData", str(exc))

    async def _book(self, req: PaymentRequest, result: AllocationResult) -> None:
        """Record a ledger change (where every fen went, the new balances), then adopt it.
        Callers hold the ledger lock."""
        await workflow.execute_activity_method(
            ServicingActivities.record_payment,
            RecordPaymentInput(
                application_no=self._app_no,
                request=req,
                lines=result.lines,
                installments=result.installments,
                credit=result.credit,
            ),
            **ACTIVITY_OPTIONS,
        )
        self._installments = result.installments
        self._credit = result.credit
        self._ledger_as_of = max(req.paid_on, self._ledger_as_of or req.paid_on)
        self._ledger_version += 1

    def _apply_payment(self, req: PaymentRequest) -> AllocationResult:
        """The ledger after ``req``, from the money engine; ValueError says why it cannot be.

        Released amounts (interest or fees paid early on installments an early repayment
        waives or replaces) appear as negative lines, so the lines still say where every fen went.
        """
        common: dict[str, Any] = {
            "installments": self._installments,
            "amount": req.amount,
            "as_of": req.paid_on,
            "annual_rate": self._terms.annual_rate,
            "credit": self._credit,
            "penalty_policy": self._penalty_policy(),
            "max_annual_rate": self._rate_cap,
        }
        if req.mode == "installments":
            return allocate_payment(**common, overpayment=cast(Overpayment, self._cfg.overpayment))
        if self._start_date is None:
            raise ValueError("mode: the loan has not started")
        if req.mode == "payoff":
            early = apply_payoff(**common, start_date=self._start_date)
        else:
            early = apply_partial_prepayment(
                **common,
                start_date=self._start_date,
                method=RepaymentMethod(self._terms.method),
                mode=cast(ReamortizeMode, req.mode),  # checked by the validator
                monthly_fee=self._terms.monthly_fee,
            )
        lines = early.lines + tuple(replace(r, amount=-r.amount) for r in early.released)
        return AllocationResult(
            lines=lines,
            installments=early.installments,
            applied=sum((line.amount for line in lines), Decimal("0")),
            credit=early.credit,
            principal_prepaid=Decimal("0"),
        )

    @workflow.query
    def state(self) -> LoanView:
        return LoanView(
            application_no=self._app_no,
            stage=self._stage.value,
            pending_task=self._pending if self._pending_shown else None,
            offer=self._offer,
            contract=self._contract,
            start_date=self._start_date,
            installments=self._installments,
            credit=self._credit,
        )

    # ---- helpers ---------------------------------------------------------------------------

    async def _rest(self, condition: Any, *, at_most: timedelta) -> None:
        """Wait for a person, a payment or a timer. While resting, the loan's stage is the one
        to report: updates answer with it (see ``_settled_stage``)."""
        self._resting = True
        try:
            await workflow.wait_condition(condition, timeout=at_most)
        finally:
            self._resting = False

    async def _settled_stage(self) -> str:
        """The stage once the workflow has acted on an update and waits again (bounded, so a
        slow activity never holds the caller for long)."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._resting, timeout=SETTLE_WAIT)
        return self._stage.value

    @property
    def _rate_cap(self) -> Decimal | None:
        return self._offer.rate_cap if self._offer is not None else None

    @property
    def _terms(self) -> LoanTerms:
        if self._offer is None:
            raise ApplicationError("no offer has been made yet", type="WrongStage")
        return self._offer.terms

    def _today(self) -> date:
        return calendar.business_date(workflow.now(), self._cfg.business_timezone)

    def _penalty_policy(self) -> PenaltyPolicy:
        return PenaltyPolicy(
            multiple=self._cfg.penalty_multiple, grace_days=self._cfg.penalty_grace_days
        )

    def _raise_if_withdrawn(self) -> None:
        if self._withdrawal is not None:
            raise _Ended(Stage.WITHDRAWN, self._withdrawal.comment or "withdrawn")

    def _make_offer(self, terms: LoanTerms) -> Offer:
        """Price the terms with the money engine; ValueError names what is wrong."""
        if terms.principal > self._requested_amount:
            raise ValueError(
                f"data.amount: {terms.principal} exceeds the requested amount {self._requested_amount}"
            )
        if terms.upfront_fee >= terms.principal:
            raise ValueError("data.upfront_fee: must be less than data.amount")
        if self._lpr is None:
            raise ValueError("data: the LPR in force is not known yet")
        today = self._today()
        schedule = terms.schedule(today)
        cost = disclose_cost(
            principal=terms.principal,
            upfront_fee=terms.upfront_fee,
            payments=[i.payment for i in schedule.installments],
        )
        ceiling = check_interest_ceiling(
            all_in_rate=cost.apr,
            contract_date=today,
            lpr_table=LprTable((self._lpr,)),
            policy=CeilingPolicy(
                lpr_multiple=self._cfg.lpr_multiple, absolute_cap=self._cfg.absolute_rate_cap
            ),
        )
        if not ceiling.ok:
            raise ValueError(f"data.annual_rate: {ceiling.reason}")
        return Offer(
            terms=terms,
            apr=cost.apr,
            apr_compound=cost.apr_compound,
            total_interest=schedule.total_interest,
            total_fees=schedule.total_fees + terms.upfront_fee,
            total_payment=schedule.total_payment,
            first_payment=schedule.installments[0].payment,
            lpr=self._lpr.one_year,
            rate_cap=ceiling.binding_cap,
            offered_on=today,
            expires_at=workflow.now() + timedelta(days=self._cfg.offer_valid_days),
        )

    async def _enter(
        self, stage: Stage, *, actor: str = "system", reason: str | None = None
    ) -> None:
        """Move to ``stage``: in memory first (so waiting updates see it), then the search
        attribute, then the database row and the audit trail."""
        self._stage = stage
        self._stage_seq += 1
        workflow.upsert_search_attributes([STAGE_ATTR.value_set(stage.value)])
        await workflow.execute_activity_method(
            ApplicationActivities.record_stage,
            StageInput(self._app_no, stage.value, self._stage_seq, workflow.now(), actor, reason),
            **ACTIVITY_OPTIONS,
        )

    def _continue_input(self) -> LoanInput:
        if self._offer is None or self._contract is None or self._start_date is None:
            raise ApplicationError("servicing started without a booked loan", type="WrongStage")
        return LoanInput(
            application_no=self._app_no,
            submitted_by=self._submitted_by,
            requested_amount=self._requested_amount,
            requested_term_months=self._terms.term_months,
            settings=self._cfg,
            resume=ServicingState(
                offer=self._offer,
                contract=self._contract,
                start_date=self._start_date,
                installments=self._installments,
                credit=self._credit,
                reminded=tuple(sorted(self._reminded)),
                overdue_marked=tuple(sorted(self._overdue_marked)),
                payments=tuple(self._payments.values()),
                ledger_as_of=self._ledger_as_of,
                stage_seq=self._stage_seq,
                task_seq=self._task_seq,
            ),
        )

    def _restore(self, state: ServicingState) -> None:
        self._stage = Stage.SERVICING
        self._offer = state.offer
        self._contract = state.contract
        self._signed = True
        self._start_date = state.start_date
        self._installments = state.installments
        self._credit = state.credit
        self._reminded = set(state.reminded)
        self._overdue_marked = set(state.overdue_marked)
        self._ledger_as_of = state.ledger_as_of
        self._stage_seq = state.stage_seq
        self._task_seq = state.task_seq
        # Earlier results, so a repeated external_ref is answered with the first result.
        self._payments = {p.external_ref: p for p in state.payments}


def _terms_from(data: dict[str, Any]) -> LoanTerms:
    """Read product-matching ``data``; ValueError names the field and the reason."""

    def money(name: str, default: str | None = None) -> Decimal:
        raw = data.get(name, default)
        if raw is None:
            raise ValueError(f"data.{name}: is required")
        try:
            value = Decimal(str(raw))
        except ArithmeticError:
            raise ValueError(f"data.{name}: must be a decimal number") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"data.{name}: must be a non-negative amount")
        if value != value.quantize(Decimal("0.01")):
            raise ValueError(f"data.{name}: must not have more than two decimal places")
        return value

    principal = money("amount")
    if principal <= 0:
        raise ValueError("data.amount: must be greater than zero")
    try:
        term = int(str(data.get("term_months")))
    except ValueError:
        raise ValueError("data.term_months: must be a whole number of months") from None
    if not 1 <= term <= 360:
        raise ValueError("data.term_months: must be between 1 and 360")
    try:
        rate = Decimal(str(data.get("annual_rate")))
    except ArithmeticError:
        raise ValueError("data.annual_rate: must be a decimal fraction, e.g. 0.12") from None
    if not rate.is_finite() or not Decimal(0) <= rate <= 1:
        raise ValueError("data.annual_rate: must be a fraction between 0 and 1, e.g. 0.12")
    if rate != rate.quantize(Decimal("0.000001")):
        raise ValueError("data.annual_rate: must not have more than six decimal places")
    method = str(data.get("method", RepaymentMethod.EQUAL_INSTALLMENT.value))
    if method not in {m.value for m in RepaymentMethod}:
        raise ValueError(
            f"data.method: must be one of {', '.join(m.value for m in RepaymentMethod)}"
        )
    return LoanTerms(
        principal=principal,
        term_months=term,
        annual_rate=rate,
        method=method,
        upfront_fee=money("upfront_fee", "0"),
        monthly_fee=money("monthly_fee", "0"),
    )
