"""Retention (issue 11 §6): a settled borrower's personal data destroyed N years after the
business relationship ended (``LoanPolicy.pii_retention_years``), the financial records kept.

``run_retention`` (``loanops retention run [--dry-run]``) replaces the borrower's personal data by
tombstones (``domain.masking.TOMBSTONE``): the borrower row and every version of their data, the
names and accounts their contracts, signatures, payouts, refunds and disbursements carry. Amounts,
dates, installments, payments, the loan and the audit trail are untouched; the audit rows are never
rewritten (an event ``pii.destroyed`` is appended, naming the borrower id and the applications,
never a value), so ``loanops audit verify`` still verifies the whole chain.

Decisions where the issue is silent:

- The clock starts when the *relationship* ends, not each loan: a borrower is destroyed only when
  every application of theirs has ended (settled, rejected, withdrawn, expired), at least one was
  a settled loan, none was written off (a written-off debt may still be recovered and needs the
  debtor's identity), and the latest end (a loan's settlement; an application's last change) is
  at least N years before today. The N is the loan policy in force today.
- The blind index goes too (``id_number_index`` None): the identity number no longer finds the
  destroyed borrower, and a person who comes back later is recorded as a new borrower.
- The borrower's identity-number tombstone names the borrower id (the column is unique).
- What is not touched (and why): uploaded documents' bytes and rendered PDFs (the archive keeps
  them under ``archive_retention_years``: the archive's own destruction), audit details and task
  contexts (written before; the audit chain must stay verifiable), the blacklist (its own
  purpose, kept by the department).
- Idempotent: a destroyed borrower (no index any more) is not selected again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.lifecycle import TERMINAL_STAGES, Stage
from domain.masking import TOMBSTONE
from loanops.db import session_scope
from loanops.pii import tombstone_for
from loanops.policy import loan_policy_in_force
from models.audit import append_audit
from models.tables import (
    Application,
    Borrower,
    BorrowerVersion,
    ContractSignature,
    Disbursement,
    Document,
    Loan,
    Payout,
    Refund,
)

PII_DESTROYED = "pii.destroyed"


@dataclass(frozen=True)
class Destroyed:
    borrower_id: uuid.UUID
    application_nos: tuple[str, ...]
    ended_on: date
    rows: int  # rows whose personal data was (or, dry run, would be) replaced


@dataclass
class RetentionReport:
    today: date
    retention_years: int
    dry_run: bool
    destroyed: list[Destroyed] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.destroyed)


def years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February → 28 February
        return day.replace(year=day.year + years, day=28)


def _ended_on(app: Application, loan: Loan | None) -> date:
    if app.stage == Stage.SETTLED.value and loan is not None and loan.settled_at is not None:
        return loan.settled_at.date()
    return app.updated_at.date()


def run_retention(
    engine: Engine, *, today: date, dry_run: bool = False, by: str = "system"
) -> RetentionReport:
    """Destroy (or, ``dry_run``, only list) the personal data of every borrower past
    retention on ``today``; see the module docstring for the rule."""
    years = loan_policy_in_force(engine, today).pii_retention_years
    report = RetentionReport(today=today, retention_years=years, dry_run=dry_run)
    with Session(engine) as s:
        candidates = s.exec(
            select(Borrower.id).where(col(Borrower.id_number_index).is_not(None))
        ).all()
    for borrower_id in candidates:
        with session_scope(engine) as s:
            done = _destroy_one(s, borrower_id, today=today, years=years, dry_run=dry_run, by=by)
            if done is not None:
                report.destroyed.append(done)
            if dry_run:
                s.rollback()
    return report


def _destroy_one(
    s: Session, borrower_id: uuid.UUID, *, today: date, years: int, dry_run: bool, by: str
) -> Destroyed | None:
    borrower = s.get(Borrower, borrower_id)
    if borrower is None or borrower.id_number_index is None:
        return None
    apps = s.exec(select(Application).where(Application.borrower_id == borrower_id)).all()
    terminal = {st.value for st in TERMINAL_STAGES}
    if not apps or any(a.stage not in terminal for a in apps):
        return None
    stages = {a.stage for a in apps}
    if Stage.SETTLED.value not in stages or Stage.WRITTEN_OFF.value in stages:
        return None
    loans = {
        loan.application_no: loan
        for loan in s.exec(
            select(Loan).where(col(Loan.application_no).in_([a.application_no for a in apps]))
        ).all()
    }
    ended = max(_ended_on(a, loans.get(a.application_no)) for a in apps)
    if years_after(ended, years) > today:
        return None
    numbers = [a.application_no for a in apps]
    rows = 1
    borrower.name = TOMBSTONE
    borrower.id_number = tombstone_for(str(borrower.id))
    borrower.phone = TOMBSTONE
    borrower.bank_card = TOMBSTONE
    s.add(borrower)
    for v in s.exec(select(BorrowerVersion).where(BorrowerVersion.borrower_id == borrower_id)):
        v.name = v.phone = v.bank_card = TOMBSTONE
        s.add(v)
        rows += 1
    for doc in s.exec(select(Document).where(col(Document.application_no).in_(numbers))):
        if doc.signer_name is not None or doc.payee_account is not None:
            doc.signer_name = None if doc.signer_name is None else TOMBSTONE
            doc.payee_account = None if doc.payee_account is None else TOMBSTONE
            s.add(doc)
            rows += 1
    for sig in s.exec(
        select(ContractSignature).where(col(ContractSignature.application_no).in_(numbers))
    ):
        sig.signer_name = TOMBSTONE
        s.add(sig)
        rows += 1
    for payout in s.exec(select(Payout).where(col(Payout.application_no).in_(numbers))):
        payout.payee_account = payout.payee_name = TOMBSTONE
        s.add(payout)
        rows += 1
    for refund in s.exec(select(Refund).where(col(Refund.application_no).in_(numbers))):
        refund.payee_account = refund.payee_name = TOMBSTONE
        s.add(refund)
        rows += 1
    for disb in s.exec(select(Disbursement).where(col(Disbursement.application_no).in_(numbers))):
        disb.bank_card = TOMBSTONE
        s.add(disb)
        rows += 1
    if not dry_run:
        now = datetime.now(UTC)
        append_audit(
            s,
            key=f"retention/{borrower_id}",
            actor=by,
            action=PII_DESTROYED,
            occurred_at=now,
            detail={
                "borrower_id": str(borrower_id),
                "applications": numbers,
                "ended_on": ended.isoformat(),
                "retention_years": years,
                "rows": rows,
            },
        )
    return Destroyed(
        borrower_id=borrower_id, application_nos=tuple(numbers), ended_on=ended, rows=rows
    )
