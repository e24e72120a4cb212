"""The servicing workflow's ledger: installments, credit held and recent payment results, every
change computed by the money engine and recorded by one activity before it is adopted.

Deterministic code only.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, cast

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.servicing import ServicingActivities
    from domain.allocation import (
        POSTED_MODES,
        AllocationResult,
        InstallmentBalance,
        Outstanding,
        Overpayment,
        PaymentMode,
        apply_credit,
        outstanding,
    )
    from domain.lifecycle import Stage
    from domain.penalty import accrue_penalties
    from domain.permissions import Action, is_allowed
    from domain.policy import LoanPolicy
    from domain.reversal import (
        LedgerTerms,
        Posting,
        ReversalResult,
        apply_posting,
        reverse_payment,
    )
    from models.shapes import (
        LedgerEntry,
        LedgerState,
        LoanTerms,
        Offer,
        PaymentRequest,
        PaymentResult,
        ReappliedPayment,
        RecordPaymentInput,
        RecordReversalInput,
    )
    from workflows.common import DB_WRITE, refuse

# Payment results kept for answering a repeated external_ref from the workflow itself (the API
# answers older repeats from the payments table before it reaches the workflow).
RECENT_PAYMENTS = 50
# A bounced payment is known within days: payments can be reversed for this long after their
# date, and the journal (each payment with the ledger before it) keeps only those, so what a
# long loan carries across continue-as-new stays small.
REVERSAL_WINDOW = timedelta(days=90)


class LoanLedger:
    def __init__(
        self,
        application_no: str,
        policy: LoanPolicy,
        offer: Offer,
        start_date: date,
        ledger: LedgerState,
    ) -> None:
        self._app_no = application_no
        self._policy = policy
        self._offer = offer
        self.start_date = start_date
        self.installments = ledger.installments
        self.credit = ledger.credit
        self.as_of = ledger.as_of
        self._payments = {p.external_ref: p for p in ledger.payments}
        # Every booked payment with the ledger just before it (for reversals).
        self.journal = list(ledger.journal)
        self.lock = asyncio.Lock()
        # Moves on every booked change: the main loop wakes to reschedule its timers.
        self.version = 0
        # A written-off loan's ledger is frozen on the write-off date (workflows/write_off.py):
        # recoveries are allocated as of that day, no penalty accrues after it.
        self.frozen_on: date | None = None

    @property
    def terms(self) -> LoanTerms:
        return self._offer.terms

    @property
    def paid_off(self) -> bool:
        return all(i.is_paid for i in self.installments)

    def has_payment(self, external_ref: str) -> bool:
        """Whether ``external_ref`` was booked (among the recent results kept)."""
        return external_ref in self._payments

    def snapshot(self) -> LedgerState:
        recent = tuple(self._payments.values())[-RECENT_PAYMENTS:]
        return LedgerState(
            installments=self.installments,
            credit=self.credit,
            as_of=self.as_of,
            payments=recent,
            journal=tuple(self._recent_journal()),
        )

    def _recent_journal(self) -> list[LedgerEntry]:
        """The journal from the oldest payment still inside the reversal window on."""
        if self.as_of is None:
            return self.journal
        since = self.as_of - REVERSAL_WINDOW
        first = next(
            (i for i, e in enumerate(self.journal) if e.request.paid_on >= since),
            len(self.journal),
        )
        return self.journal[first:]

    def _engine_args(self) -> dict[str, Any]:
        return {
            "annual_rate": self.terms.annual_rate,
            "penalty_policy": self._offer.penalty(self._policy),
            "max_annual_rate": self._offer.rate_cap,
        }

    def accrue(self, today: date) -> Outstanding:
        """Accrue penalty interest up to ``today`` and say what is owed."""
        if self.as_of is None or today > self.as_of:
            self.installments = accrue_penalties(
                installments=self.installments,
                as_of=today,
                annual_rate=self.terms.annual_rate,
                policy=self._offer.penalty(self._policy),
                max_annual_rate=self._offer.rate_cap,
            )
            self.as_of = today
        return outstanding(installments=self.installments, as_of=today, **self._engine_args())

    # ---- payments ------------------------------------------------------------------------------

    def validate(self, req: PaymentRequest, stage: Stage) -> None:
        """Refuse a payment before anything is written (the update validator)."""
        if req.external_ref in self._payments:
            return  # a duplicate: the handler answers with the first result
        written_off = stage == Stage.WRITTEN_OFF and self.frozen_on is not None
        if stage != Stage.SERVICING and not written_off:
            refuse("WrongStage", f"payments are posted in SERVICING, not {stage.value}")
        if written_off and req.mode != PaymentMode.INSTALLMENTS:
            refuse(
                "InvalidData",
                "mode: a written-off loan takes recoveries as plain payments (installments)",
            )
        if not is_allowed(req.roles, Action.POST_PAYMENT):
            refuse("Forbidden", "payments are posted by an operations_specialist")
        if req.amount <= 0:
            refuse("InvalidData", "amount: must be greater than zero")
        if req.amount != req.amount.quantize(Decimal("0.01")):
            refuse("InvalidData", "amount: must not have more than two decimal places")
        if req.paid_at > workflow.now() + timedelta(minutes=5):
            refuse("InvalidData", "paid_at: is in the future")
        if req.paid_on < self.start_date:
            refuse("InvalidData", "paid_at: is before the loan was disbursed")
        if self.as_of is not None and req.paid_on < self.as_of:
            refuse(
                "InvalidData",
                f"paid_at: is before the ledger date {self.as_of.isoformat()}; "
                "back-dated payments need a correction entry",
            )
        if req.mode not in POSTED_MODES:
            refuse("InvalidData", f"mode: must be one of {', '.join(POSTED_MODES)}")
        try:
            self._apply(req)
        except ValueError as exc:
            refuse("InvalidData", str(exc))

    async def post(self, req: PaymentRequest, stage: Stage) -> PaymentResult:
        """Book a payment (once per external_ref); callers hold the lock."""
        if req.external_ref in self._payments:
            return replace(self._payments[req.external_ref], duplicate=True)
        try:
            result = self._apply(req)
        except ValueError as exc:  # the ledger moved since the validator ran
            raise ApplicationError(str(exc), type="InvalidData", non_retryable=True) from exc
        await self._book(req, result)
        outcome = PaymentResult(
            external_ref=req.external_ref,
            amount=req.amount,
            lines=result.lines,
            credit=result.credit,
            stage=stage,
        )
        self._payments[req.external_ref] = outcome
        return outcome

    async def apply_held_credit(self, inst: InstallmentBalance) -> bool:
        """On a due date, credit held pays what is due (recorded like a payment, mode
        ``credit``, amount 0: no new money); True when the installment is then paid."""
        result = apply_credit(
            installments=self.installments,
            credit=self.credit,
            as_of=inst.due_date,
            **self._engine_args(),
        )
        if not result.lines:
            return False
        request = PaymentRequest(
            external_ref=f"credit-{self._app_no}-{inst.number}",
            amount=Decimal("0.00"),
            paid_at=workflow.now(),
            paid_on=inst.due_date,
            recorded_by="system",
            mode=PaymentMode.CREDIT,
        )
        await self._book(request, result)
        paid = next(i for i in self.installments if i.number == inst.number)
        return paid.is_paid

    async def _book(self, req: PaymentRequest, result: AllocationResult) -> None:
        """Record a ledger change (where every fen went, the new balances), then adopt it."""
        before = LedgerEntry(req, self.installments, self.credit)
        await workflow.execute_activity_method(
            ServicingActivities.record_payment,
            RecordPaymentInput(
                application_no=self._app_no,
                request=req,
                lines=result.lines,
                installments=result.installments,
                credit=result.credit,
            ),
            **DB_WRITE,
        )
        self.journal.append(before)
        self.installments = result.installments
        self.credit = result.credit
        self.as_of = max(req.paid_on, self.as_of or req.paid_on)
        self.version += 1

    def _terms(self) -> LedgerTerms:
        return LedgerTerms(
            annual_rate=self.terms.annual_rate,
            start_date=self.start_date,
            method=self.terms.method,
            penalty_policy=self._offer.penalty(self._policy),
            max_annual_rate=self._offer.rate_cap,
            overpayment=cast(Overpayment, self._policy.overpayment.value),
            # The product's fee on principal repaid early (the contract states it).
            prepayment_fee_rate=self._offer.prepayment_fee_rate,
            monthly_fee=self.terms.monthly_fee,
        )

    def _apply(self, req: PaymentRequest) -> AllocationResult:
        """The ledger after ``req``, from the money engine (``domain.reversal.apply_posting``);
        ValueError says why it cannot be."""
        return apply_posting(
            self.installments,
            self.credit,
            # A written-off loan's ledger stands still on its write-off date (no penalty
            # accrues on recoveries): write-off-v1.
            Posting(req.external_ref, req.amount, self.frozen_on or req.paid_on, req.mode),
            self._terms(),
        )

    # ---- reversal ------------------------------------------------------------------------------

    def reversal_refusal(self, external_ref: str, today: date) -> str | None:
        """Why the payment cannot be reversed (None when it can)."""
        entry = self._entries.get(external_ref)
        if entry is None:
            return (
                f"payment {external_ref}: not in this loan's ledger journal (posted before "
                f"reversals were recorded or more than {REVERSAL_WINDOW.days} days ago, or not "
                "a payment of this loan)"
            )
        if entry.reversed:
            return f"payment {external_ref}: already reversed"
        if entry.request.mode == PaymentMode.CREDIT:
            return f"{external_ref}: an application of credit held is not a payment"
        if entry.request.paid_on < today - REVERSAL_WINDOW:
            return (
                f"payment {external_ref}: paid on {entry.request.paid_on.isoformat()}, outside "
                f"the {REVERSAL_WINDOW.days}-day reversal window"
            )
        return None

    def payment_of(self, external_ref: str) -> PaymentRequest:
        return self._entries[external_ref].request

    async def reverse(
        self, external_ref: str, *, today: date, reason: str, requested_by: str, approved_by: str
    ) -> ReversalResult:
        """Take a payment out of the ledger and re-compute from that point (the money engine's
        ``reverse_payment``); record it, then adopt it. Callers hold the lock."""
        index = next(
            i for i, e in enumerate(self.journal) if e.request.external_ref == external_ref
        )
        entry = self.journal[index]
        later = [(i, e) for i, e in enumerate(self.journal) if i > index and not e.reversed]
        result = reverse_payment(
            before=entry.installments_before,
            credit_before=entry.credit_before,
            later=[
                Posting(e.request.external_ref, e.request.amount, e.request.paid_on, e.request.mode)
                for _, e in later
            ],
            as_of=max(today, self.as_of or today),
            terms=self._terms(),
        )
        await workflow.execute_activity_method(
            LedgerActivities.record_reversal,
            RecordReversalInput(
                application_no=self._app_no,
                external_ref=external_ref,
                reason=reason,
                requested_by=requested_by,
                approved_by=approved_by,
                at=workflow.now(),
                business_date=result.as_of,
                reapplied=tuple(
                    ReappliedPayment(r.ref, r.mode, r.lines, r.credit) for r in result.reapplied
                ),
                installments=result.installments,
                credit=result.credit,
            ),
            **DB_WRITE,
        )
        self.journal[index] = replace(entry, reversed=True)
        for (i, e), r in zip(later, result.reapplied, strict=True):
            self.journal[i] = replace(
                e, installments_before=r.installments_before, credit_before=r.credit_before
            )
        self.installments = result.installments
        self.credit = result.credit
        self.as_of = result.as_of
        self.version += 1
        return result

    @property
    def _entries(self) -> dict[str, LedgerEntry]:
        return {e.request.external_ref: e for e in self.journal}
