"""A loan's five-category classification: its history, and the risk manager's override."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, require
from api.errors import unprocessable_from
from api.loan_views import load_application
from domain.calendar import business_date
from domain.classification import Category
from domain.permissions import Action
from loanops.classification import NotClassifiable, history, override, rules_classification
from models.tables import LoanClassification

router = APIRouter(prefix="/loans", tags=["classification"])


class ClassificationOut(BaseModel):
    seq: int
    category: str
    label: str
    reason: str
    source: str
    days_past_due: int
    as_of: date
    recorded_by: str
    recorded_at: datetime


class RulesOut(BaseModel):
    """What the rules give today: the category, why, and the best an override may set."""

    category: str
    label: str
    reason: str
    days_past_due: int
    floor: str


class ClassificationHistory(BaseModel):
    application_no: str
    current: ClassificationOut | None
    # None when the application is not a loan on the books (not disbursed, or closed).
    rules: RulesOut | None
    history: list[ClassificationOut]


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: Category
    reason: str = Field(min_length=1, max_length=500)


def _out(row: LoanClassification) -> ClassificationOut:
    return ClassificationOut(
        seq=row.seq,
        category=row.category,
        label=Category(row.category).label_zh,
        reason=row.reason,
        source=row.source,
        days_past_due=row.days_past_due,
        as_of=row.as_of,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )


@router.get("/{application_no}/classification", response_model=ClassificationHistory)
def get_classification(
    application_no: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    viewer: CurrentUserInfo = require(Action.READ_CLASSIFICATION),
) -> ClassificationHistory:
    """department_manager, risk_manager, operations_specialist, business_officer, auditor:
    every classification of the loan (oldest first), the current one, and what the rules give
    today."""
    load_application(session, application_no, viewer)
    rows = [_out(r) for r in history(session, application_no)]
    today = business_date(clock(), settings.business_timezone)
    try:
        c = rules_classification(session, application_no, today, tz=settings.business_timezone)[1]
        rules = RulesOut(
            category=c.category.value,
            label=c.category.label_zh,
            reason=c.reason,
            days_past_due=c.days_past_due,
            floor=c.floor.value,
        )
    except NotClassifiable:
        rules = None
    return ClassificationHistory(
        application_no=application_no,
        current=rows[-1] if rows else None,
        rules=rules,
        history=rows,
    )


@router.post("/{application_no}/classification", response_model=ClassificationOut, status_code=201)
def post_classification(
    application_no: str,
    body: OverrideIn,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.CLASSIFY_LOAN),
) -> ClassificationOut:
    """risk_manager: classify the loan by hand, with the reason (audited). Not better than the
    rules' floor (422 naming ``category``); it holds until the rules' floor is worse than it
    (the daily run then records the rules' category)."""
    load_application(session, application_no, user)
    now = clock()
    try:
        row = override(
            session.get_bind(),  # type: ignore[arg-type]
            application_no,
            category=body.category,
            reason=body.reason,
            by=user.username,
            as_of=business_date(now, settings.business_timezone),
            tz=settings.business_timezone,
            now=now,
        )
    except NotClassifiable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except ValueError as exc:
        raise unprocessable_from(str(exc)) from None
    return _out(row)
