"""Ledger corrections: an approved payment reversal recorded in one transaction."""

from __future__ import annotations

import contextlib

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity

from activities.records import append_audit
from activities.servicing import sync_installments
from domain.money import format_money
from loanops.classification import NotClassifiable, reclassify
from loanops.db import session_scope
from models.shapes import RecordReversalInput
from models.tables import Loan, Payment


class LedgerActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def record_reversal(self, inp: RecordReversalInput) -> None:
        """Mark the payment reversed, give the later payments their re-computed allocations,
        make the installment rows equal the new balances (a paid installment can be overdue
        again) and audit it: once per payment (a retry finds the payment already reversed).
        The loan's five-category classification is then re-evaluated on the new rows (a row is
        recorded only when the category changes)."""
        with session_scope(self.engine) as s:
            _record(s, inp)
        with contextlib.suppress(NotClassifiable):  # reversals happen in SERVICING
            reclassify(self.engine, inp.application_no, inp.business_date, now=inp.at)


def _record(s: Session, inp: RecordReversalInput) -> None:
    payment = s.exec(select(Payment).where(Payment.external_ref == inp.external_ref)).one()
    if payment.reversed_at is not None:
        return
    payment.reversed_at = inp.at
    payment.reversed_by = inp.approved_by
    payment.reversal_requested_by = inp.requested_by
    payment.reversal_reason = inp.reason
    refs = [r.external_ref for r in inp.reapplied]
    later = {
        p.external_ref: p
        for p in s.exec(select(Payment).where(col(Payment.external_ref).in_(refs)))
    }
    reallocated = []
    for r in inp.reapplied:
        row = later.get(r.external_ref)
        if row is None:
            continue
        row.allocation = [
            {
                "installment": str(line.installment),
                "component": line.component.value,
                "amount": format_money(line.amount),
            }
            for line in r.lines
        ]
        row.credit_after = r.credit
        reallocated.append({"external_ref": r.external_ref, "applied_as": r.mode.value})
    sync_installments(s, inp.application_no, inp.installments, inp.business_date)
    loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
    loan.credit = inp.credit
    append_audit(
        s,
        key=f"{inp.application_no}/payment/{inp.external_ref}/reversed",
        application_no=inp.application_no,
        actor=inp.approved_by,
        action="payment.reversed",
        occurred_at=inp.at,
        detail={
            "external_ref": inp.external_ref,
            "amount": format_money(payment.amount),
            "reason": inp.reason,
            "requested_by": inp.requested_by,
            "approved_by": inp.approved_by,
            "reallocated": reallocated,
            "credit": format_money(inp.credit),
            "overdue": [
                b.number
                for b in inp.installments
                if not b.is_paid and b.due_date < inp.business_date
            ],
        },
    )
