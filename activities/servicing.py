"""Servicing activities: post payments, reminders and overdue notices, the daily refresh, settlement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity

from activities.records import append_audit, enqueue_notice
from domain.allocation import InstallmentBalance
from domain.calendar import next_contact_time
from domain.funding import POOL_CODE
from domain.lifecycle import Role
from domain.money import format_money
from loanops.db import session_scope
from models import funding
from models.shapes import RecordPaymentInput, ServicingEventInput, SettleInput
from models.tables import FundingPool, Installment, Loan, Payment


def _installment_status(b: InstallmentBalance, as_of: date) -> str:
    if b.is_paid:
        return "paid"
    return "overdue" if b.due_date < as_of else "scheduled"


def sync_installments(
    session: Session, application_no: str, balances: Sequence[InstallmentBalance], as_of: date
) -> None:
    """Make the installment rows equal the workflow's balances (the engine's result).

    A prepayment that re-amortizes may change the due amounts and dates of future installments
    and shorten the term: rows are updated in place, and rows the new schedule no longer has are
    kept as ``cancelled`` (their history stays, they no longer count).
    """
    rows = {
        r.number: r
        for r in session.exec(
            select(Installment).where(Installment.application_no == application_no)
        )
    }
    for b in balances:
        row = rows.pop(b.number, None)
        if row is None:
            row = Installment(
                application_no=application_no,
                number=b.number,
                due_date=b.due_date,
                principal_due=b.principal_due,
                interest_due=b.interest_due,
                fee_due=b.fee_due,
            )
            session.add(row)
        row.due_date = b.due_date
        row.principal_due = b.principal_due
        row.interest_due = b.interest_due
        row.fee_due = b.fee_due
        row.principal_paid = b.principal_paid
        row.interest_paid = b.interest_paid
        row.fee_paid = b.fee_paid
        row.penalty_accrued = b.penalty_accrued
        row.penalty_paid = b.penalty_paid
        row.penalty_accrued_through = b.penalty_accrued_through
        status = _installment_status(b, as_of)
        if status == "paid" and row.status != "paid":
            row.paid_off_on = as_of
        elif status != "paid":
            row.paid_off_on = None  # a reversed payment can make a paid installment due again
        row.status = status
    for row in rows.values():
        row.status = "cancelled"


class ServicingActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def _contact_time(inp: ServicingEventInput) -> datetime:
        """The next opening of the loan's contact window (its policy) at or after the event."""
        opens, closes = inp.contact_hours
        return next_contact_time(inp.at, inp.business_timezone, opens=opens, closes=closes)

    @activity.defn
    def record_payment(self, inp: RecordPaymentInput) -> None:
        """Store the payment, where every fen went, and the new balances: once per external_ref;
        then the money into the funding pool (once per external_ref too)."""
        self._store_payment(inp)
        self._pool_inflow(inp)

    def _pool_inflow(self, inp: RecordPaymentInput) -> None:
        """A repayment is money received into the funding pool (issue 9 §5: inflows from
        repayments), keyed by the payment's bank reference; a database with no pool (no funding
        configured) records none."""
        req = inp.request
        with Session(self.engine, expire_on_commit=False) as s:
            if s.get(FundingPool, POOL_CODE) is None:
                return
            funding.record_inflow(
                s,
                key=req.external_ref,
                amount=req.amount,
                actor=req.recorded_by,
                at=req.paid_at,
                application_no=inp.application_no,
                reference=req.external_ref,
            )

    def _store_payment(self, inp: RecordPaymentInput) -> None:
        req = inp.request
        with session_scope(self.engine) as s:
            if s.exec(select(Payment.id).where(Payment.external_ref == req.external_ref)).first():
                return
            payment = Payment(
                application_no=inp.application_no,
                external_ref=req.external_ref,
                amount=req.amount,
                mode=req.mode.value,
                paid_at=req.paid_at,
                recorded_by=req.recorded_by,
                allocation=[
                    {
                        "installment": str(line.installment),
                        "component": line.component.value,
                        "amount": format_money(line.amount),
                    }
                    for line in inp.lines
                ],
                credit_after=inp.credit,
            )
            s.add(payment)
            sync_installments(s, inp.application_no, inp.installments, req.paid_on)
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            loan.credit = inp.credit
            append_audit(
                s,
                key=f"{inp.application_no}/payment/{req.external_ref}",
                application_no=inp.application_no,
                actor=req.recorded_by,
                action="payment.posted",
                occurred_at=req.paid_at,
                detail={
                    # The id a reversal names (POST …/payments/{payment_id}/reversal).
                    "payment_id": str(payment.id),
                    "external_ref": req.external_ref,
                    "amount": format_money(req.amount),
                    "mode": req.mode.value,
                    "credit": format_money(inp.credit),
                },
            )

    @activity.defn
    def servicing_event(self, inp: ServicingEventInput) -> None:
        """A reminder before a due date, an installment falling overdue, or the daily refresh."""
        with session_scope(self.engine) as s:
            if inp.installments:
                sync_installments(s, inp.application_no, inp.installments, inp.business_date)
            if inp.event == "overdue_refresh":
                return
            key = f"{inp.application_no}/installment/{inp.installment}/{inp.event}"
            payload = {
                "installment": inp.installment,
                "business_date": inp.business_date.isoformat(),
                "days_past_due": inp.days_past_due,
            }
            enqueue_notice(
                s,
                key=key,
                application_no=inp.application_no,
                channel="sms",
                recipient="borrower",
                template=f"installment_{inp.event}",
                payload=payload,
                created_at=inp.at,
                not_before=self._contact_time(inp),
            )
            if inp.event == "overdue":
                enqueue_notice(
                    s,
                    key=f"{key}/staff",
                    application_no=inp.application_no,
                    channel="inbox",
                    recipient=Role.OPERATIONS_SPECIALIST.value,
                    template="installment_overdue_staff",
                    payload=payload,
                    created_at=inp.at,
                )
            append_audit(
                s,
                key=key,
                application_no=inp.application_no,
                actor="system",
                action=f"installment.{inp.event}",
                occurred_at=inp.at,
                detail=payload,
            )

    @activity.defn
    def settle_loan(self, inp: SettleInput) -> None:
        """Close the loan as settled; an overpayment left as credit is queued for refund."""
        with session_scope(self.engine) as s:
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            if loan.settled_at is not None:
                return
            loan.settled_at = inp.at
            loan.status = "settled"
            loan.credit = inp.credit
            if inp.credit > 0 and not inp.refund_task:
                enqueue_notice(
                    s,
                    key=f"{inp.application_no}/refund",
                    application_no=inp.application_no,
                    channel="inbox",
                    recipient=Role.OPERATIONS_SPECIALIST.value,
                    template="refund_overpayment",
                    payload={"amount": format_money(inp.credit)},
                    created_at=inp.at,
                )
            append_audit(
                s,
                key=f"{inp.application_no}/settled",
                application_no=inp.application_no,
                actor="system",
                action="loan.settled",
                occurred_at=inp.at,
                detail={
                    "credit": format_money(inp.credit),
                    # settlement-refund-v1: refunded through the refund tasks.
                    **({"refund": "task"} if inp.refund_task and inp.credit > 0 else {}),
                },
            )
