"""Aftercare: a loan's post-loan reviews and its risk flags (loanops.aftercare)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CurrentUserInfo, SessionDep, require
from api.loan_views import load_application
from domain.permissions import Action
from loanops.aftercare import flags_of, reviews_of
from models.tables import LoanRiskFlag, PostLoanReview

router = APIRouter(prefix="/loans", tags=["aftercare"])


class ReviewOut(BaseModel):
    period_key: str
    reason: str
    task_id: str
    opened_at: datetime
    opened_on: date
    bureau_status: str
    # What the reviewer was shown: repayment summary, open flags, classification, bureau.
    context: dict[str, Any] | None
    # no_action / watch / accelerate_collection / expired; None while the review is open.
    outcome: str | None
    decided_by: str | None
    decided_at: datetime | None
    outcome_reason: str | None
    effect: str | None


class ReviewList(BaseModel):
    application_no: str
    items: list[ReviewOut]


class RiskFlagOut(BaseModel):
    id: str
    kind: str
    detail: str
    source_task_id: str | None
    raised_by: str
    raised_at: datetime
    open: bool
    cleared_at: datetime | None
    cleared_by: str | None
    cleared_by_review: str | None


class RiskFlagList(BaseModel):
    application_no: str
    open: int
    items: list[RiskFlagOut]


def _review_out(r: PostLoanReview) -> ReviewOut:
    return ReviewOut(
        period_key=r.period_key,
        reason=r.reason,
        task_id=r.task_id,
        opened_at=r.opened_at,
        opened_on=r.opened_on,
        bureau_status=r.bureau_status,
        context=r.context,
        outcome=r.outcome,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        outcome_reason=r.outcome_reason,
        effect=r.effect,
    )


def _flag_out(f: LoanRiskFlag) -> RiskFlagOut:
    return RiskFlagOut(
        id=str(f.id),
        kind=f.kind,
        detail=f.detail,
        source_task_id=f.source_task_id,
        raised_by=f.raised_by,
        raised_at=f.raised_at,
        open=f.cleared_at is None,
        cleared_at=f.cleared_at,
        cleared_by=f.cleared_by,
        cleared_by_review=f.cleared_by_review,
    )


@router.get("/{application_no}/reviews", response_model=ReviewList)
def list_reviews(
    application_no: str,
    session: SessionDep,
    user: CurrentUserInfo = require(Action.READ_POST_LOAN_REVIEWS),
) -> ReviewList:
    """risk_manager, department_manager, auditor: every post-loan review of the loan, oldest
    first: why it opened, what the reviewer was shown, the outcome and what it did."""
    load_application(session, application_no, user)
    return ReviewList(
        application_no=application_no,
        items=[_review_out(r) for r in reviews_of(session, application_no)],
    )


@router.get("/{application_no}/risk-flags", response_model=RiskFlagList)
def list_risk_flags(
    application_no: str,
    session: SessionDep,
    user: CurrentUserInfo = require(Action.READ_RISK_FLAGS),
) -> RiskFlagList:
    """risk_manager, department_manager, auditor, customer_service: every risk flag of the loan,
    oldest first, open or cleared (by which review)."""
    load_application(session, application_no, user)
    items = [_flag_out(f) for f in flags_of(session, application_no)]
    return RiskFlagList(
        application_no=application_no, open=sum(1 for f in items if f.open), items=items
    )
