"""Aftercare records (domain.aftercare): risk flags raised by follow-up calls, the post-loan
reviews, what a reviewer is shown, and which loans are due for a review (the daily sweep's
selection). Every write is idempotent by business key and audited.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from domain.aftercare import (
    DueReview,
    ReviewFacts,
    ReviewRules,
    review_due,
)
from domain.classification import Category, days_past_due
from domain.lifecycle import Stage
from domain.policy import LoanPolicy
from models.audit import append_audit
from models.shapes import DueReviewItem, DueReviewsPage, FollowUpAnsweredInput
from models.tables import (
    Application,
    Installment,
    Loan,
    LoanClassification,
    LoanRiskFlag,
    Payment,
    PostLoanReview,
)

FLAG_NAMESPACE = uuid.UUID("0b7d5a8e-3c4f-4e59-9a7e-2f61c1d0a214")


def rules_of(policy: LoanPolicy) -> ReviewRules:
    """The review intervals of ``policy`` (the version in force on the sweep's date: reviews are
    the department's practice, not a term of the loan's contract)."""
    return ReviewRules(
        interval_days=policy.post_loan_review_days,
        close_interval_days=policy.post_loan_review_days_close,
        large_amount=policy.post_loan_review_large_amount,
    )


def flag_id(application_no: str, source: str, kind: str) -> uuid.UUID:
    return uuid.uuid5(FLAG_NAMESPACE, f"{application_no}/{source}/{kind}")


# ---- follow-up answers and flags --------------------------------------------------------------


def record_follow_up(session: Session, inp: FollowUpAnsweredInput) -> list[LoanRiskFlag]:
    """Audit the call's answers and raise its flags (each once); returns the flags raised now."""
    append_audit(
        session,
        key=f"task/{inp.task_id}/answers",
        application_no=inp.application_no,
        actor=inp.answered_by,
        action="follow_up_call.answered",
        occurred_at=inp.at,
        detail={"task_id": inp.task_id, "answers": inp.answers},
    )
    raised = []
    for kind, detail in inp.flags:
        fid = flag_id(inp.application_no, inp.task_id, kind)
        if session.get(LoanRiskFlag, fid) is not None:
            continue
        flag = LoanRiskFlag(
            id=fid,
            application_no=inp.application_no,
            kind=kind,
            source_task_id=inp.task_id,
            detail=detail[:500],
            raised_by=inp.answered_by,
            raised_at=inp.at,
        )
        session.add(flag)
        append_audit(
            session,
            key=f"risk-flag/{fid}/raised",
            application_no=inp.application_no,
            actor=inp.answered_by,
            action="loan.risk_flag_raised",
            occurred_at=inp.at,
            detail={
                "flag_id": str(fid),
                "kind": kind,
                "detail": flag.detail,
                "task_id": inp.task_id,
            },
        )
        raised.append(flag)
    return raised


def flags_of(
    session: Session, application_no: str, *, open_only: bool = False
) -> list[LoanRiskFlag]:
    """The loan's flags, oldest first."""
    query = select(LoanRiskFlag).where(LoanRiskFlag.application_no == application_no)
    if open_only:
        query = query.where(col(LoanRiskFlag.cleared_at).is_(None))
    return list(session.exec(query.order_by(col(LoanRiskFlag.raised_at), col(LoanRiskFlag.kind))))


def reviews_of(session: Session, application_no: str) -> list[PostLoanReview]:
    """The loan's reviews, oldest first."""
    return list(
        session.exec(
            select(PostLoanReview)
            .where(PostLoanReview.application_no == application_no)
            .order_by(col(PostLoanReview.opened_at), col(PostLoanReview.period_key))
        )
    )


# ---- what the reviewer is shown --------------------------------------------------------------


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def review_context(session: Session, application_no: str, as_of: date) -> dict[str, Any]:
    """The repayment history in summary, the open flags and the classification (JSON values)."""
    rows = list(
        session.exec(
            select(Installment)
            .where(Installment.application_no == application_no, Installment.status != "cancelled")
            .order_by(col(Installment.number))
        )
    )
    balances = [r.balance() for r in rows]
    loan = session.exec(select(Loan).where(Loan.application_no == application_no)).first()
    payments = list(session.exec(select(Payment).where(Payment.application_no == application_no)))
    principal_paid = sum((b.principal_paid for b in balances), Decimal("0"))
    unpaid = [b for b in balances if not b.is_paid]
    late_paid = [
        r
        for r in rows
        if r.status == "paid" and r.paid_off_on is not None and r.paid_off_on > r.due_date
    ]
    next_due = min((b.due_date for b in unpaid), default=None)
    repayment: dict[str, Any] = {
        "principal": _money(loan.principal) if loan else None,
        "installments": len(rows),
        "paid": len(rows) - len(unpaid),
        "paid_late": len(late_paid),
        "overdue": sum(1 for b in unpaid if b.due_date < as_of),
        "days_past_due": days_past_due(balances, as_of),
        "outstanding_principal": _money(
            sum((b.principal_due for b in balances), Decimal("0")) - principal_paid
        ),
        "penalty_accrued": _money(sum((b.penalty_accrued for b in balances), Decimal("0"))),
        "payments": len(payments),
        "paid_total": _money(sum((p.amount for p in payments), Decimal("0"))),
        "next_due": next_due.isoformat() if next_due is not None else None,
    }
    cls = session.exec(
        select(LoanClassification)
        .where(LoanClassification.application_no == application_no)
        .order_by(col(LoanClassification.seq).desc())
        .limit(1)
    ).first()
    return {
        "repayment": repayment,
        "open_flags": [
            {
                "id": str(f.id),
                "kind": f.kind,
                "detail": f.detail,
                "raised_at": f.raised_at.isoformat(),
                "raised_by": f.raised_by,
            }
            for f in flags_of(session, application_no, open_only=True)
        ],
        "classification": cls.category if cls else Category.NORMAL.value,
    }


def record_review_opened(
    session: Session,
    *,
    application_no: str,
    period_key: str,
    reason: str,
    task_id: str,
    at: datetime,
    on: date,
    bureau_status: str,
    context: dict[str, Any],
) -> PostLoanReview:
    """The review row (once per loan and period key), audited."""
    row = session.exec(
        select(PostLoanReview).where(
            PostLoanReview.application_no == application_no,
            PostLoanReview.period_key == period_key,
        )
    ).first()
    if row is not None:
        return row
    row = PostLoanReview(
        application_no=application_no,
        period_key=period_key,
        reason=reason[:200],
        task_id=task_id,
        opened_at=at,
        opened_on=on,
        bureau_status=bureau_status,
        context=context,
    )
    session.add(row)
    append_audit(
        session,
        key=f"{application_no}/review/{period_key}/opened",
        application_no=application_no,
        actor="system",
        action="post_loan_review.opened",
        occurred_at=at,
        detail={"period_key": period_key, "reason": reason, "task_id": task_id},
    )
    return row


def clear_flags(
    session: Session, application_no: str, *, by: str, at: datetime, review: str
) -> list[LoanRiskFlag]:
    """Clear the flags open when the review ``review`` opened (its reviewer judged them)."""
    opened = session.exec(
        select(PostLoanReview.opened_at).where(
            PostLoanReview.application_no == application_no, PostLoanReview.period_key == review
        )
    ).first()
    cleared = []
    for flag in flags_of(session, application_no, open_only=True):
        if opened is not None and flag.raised_at > opened:
            continue  # raised after the reviewer looked: the next review's
        flag.cleared_at = at
        flag.cleared_by = by
        flag.cleared_by_review = review
        session.add(flag)
        append_audit(
            session,
            key=f"risk-flag/{flag.id}/cleared",
            application_no=application_no,
            actor=by,
            action="loan.risk_flag_cleared",
            occurred_at=at,
            detail={"flag_id": str(flag.id), "kind": flag.kind, "review": review},
        )
        cleared.append(flag)
    return cleared


# ---- the sweep's selection -------------------------------------------------------------------


def due_reviews(
    session: Session, as_of: date, rules: ReviewRules, *, after: str | None, limit: int
) -> DueReviewsPage:
    """One page (``limit`` loans in servicing after ``after``, by application number) of the
    loans due for a review on ``as_of``: three indexed queries per page (the loans with their
    last review and newest classification, then their open flags)."""
    last = (
        select(
            PostLoanReview.application_no.label("no"),  # type: ignore[attr-defined]
            func.max(PostLoanReview.opened_on).label("last_on"),
            func.max(PostLoanReview.opened_at).label("last_at"),
        )
        .group_by(col(PostLoanReview.application_no))
        .subquery()
    )
    newest = (
        select(
            LoanClassification.application_no.label("no"),  # type: ignore[attr-defined]
            func.max(LoanClassification.seq).label("seq"),
        )
        .group_by(col(LoanClassification.application_no))
        .subquery()
    )
    query = (
        sa_select(
            col(Application.application_no),
            col(Loan.principal),
            col(Loan.start_date),
            last.c.last_on,
            last.c.last_at,
            col(LoanClassification.category),
        )
        .join(Loan, col(Loan.application_no) == col(Application.application_no))
        .join(last, last.c.no == col(Application.application_no), isouter=True)
        .join(newest, newest.c.no == col(Application.application_no), isouter=True)
        .join(
            LoanClassification,
            (col(LoanClassification.application_no) == newest.c.no)
            & (col(LoanClassification.seq) == newest.c.seq),
            isouter=True,
        )
        .where(col(Application.stage) == Stage.SERVICING.value)
        .order_by(col(Application.application_no))
        .limit(limit)
    )
    if after is not None:
        query = query.where(col(Application.application_no) > after)
    rows = session.execute(query).all()
    if not rows:
        return DueReviewsPage(due=(), next_after=None)
    numbers = [r[0] for r in rows]
    flags: dict[str, list[LoanRiskFlag]] = {}
    for flag in session.exec(
        select(LoanRiskFlag)
        .where(
            col(LoanRiskFlag.application_no).in_(numbers), col(LoanRiskFlag.cleared_at).is_(None)
        )
        .order_by(col(LoanRiskFlag.raised_at), col(LoanRiskFlag.kind))
    ):
        flags.setdefault(flag.application_no, []).append(flag)
    due: list[DueReview] = []
    for no, principal, start_date, last_on, last_at, category in rows:
        if start_date is None:
            continue
        fresh = [
            f for f in flags.get(no, []) if last_at is None or _aware(f.raised_at) > _aware(last_at)
        ]
        facts = ReviewFacts(
            application_no=no,
            principal=principal,
            start_date=start_date,
            category=category,
            last_review_on=last_on,
            flag_source=(fresh[-1].source_task_id or str(fresh[-1].id)) if fresh else None,
        )
        found = review_due(facts, rules, as_of)
        if found is not None:
            due.append(found)
    return DueReviewsPage(
        due=tuple(DueReviewItem(d.application_no, d.period_key, d.reason) for d in due),
        next_after=numbers[-1] if len(rows) == limit else None,
    )


def _aware(at: datetime) -> datetime:
    """``max()`` over a UTCDateTime column may come back naive on SQLite: it is UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
