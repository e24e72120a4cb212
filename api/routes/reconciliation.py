"""The daily reconciliations of the bank's ledger with the records: the runs, and one run with
its differences (those it found first) and what became of each."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlmodel import col, func, select

from api.deps import CurrentUserInfo, SessionDep, require
from api.schemas import MAX_OFFSET
from domain.money import format_money
from domain.permissions import Action
from models.tables import ReconciliationDifference, ReconciliationRun

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"])


class RunOut(BaseModel):
    business_date: date
    workflow_id: str
    status: str
    cutoff: datetime
    bank_movements: int
    records: int
    matched: int
    in_grace: int
    differences_found: int
    differences_new: int
    started_at: datetime
    finished_at: datetime | None


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class DifferenceOut(BaseModel):
    key: str
    kind: str
    direction: str
    reference: str
    application_no: str | None
    # Amounts in yuan as strings with two decimals; None on the side that has nothing.
    bank_amount: str | None
    record_amount: str | None
    summary: str
    detail: dict[str, Any]
    status: str
    task_id: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    comment: str | None
    found_at: datetime


class RunDetail(RunOut):
    differences: list[DifferenceOut]


def _run(r: ReconciliationRun) -> RunOut:
    return RunOut.model_validate(r, from_attributes=True)


def _difference(d: ReconciliationDifference) -> DifferenceOut:
    return DifferenceOut(
        key=d.key,
        kind=d.kind,
        direction=d.direction,
        reference=d.reference,
        application_no=d.application_no,
        bank_amount=format_money(d.bank_amount) if d.bank_amount is not None else None,
        record_amount=format_money(d.record_amount) if d.record_amount is not None else None,
        summary=str(d.detail.get("summary", d.key)),
        detail=d.detail,
        status=d.status,
        task_id=str(d.task_id) if d.task_id else None,
        resolved_by=d.resolved_by,
        resolved_at=d.resolved_at,
        comment=d.comment,
        found_at=d.found_at,
    )


@router.get("/runs", response_model=RunPage)
def list_runs(
    session: SessionDep,
    limit: int = Query(30, ge=1, le=366),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    _: CurrentUserInfo = require(Action.READ_RECONCILIATION),
) -> RunPage:
    """operations_specialist, department_manager, auditor: the runs, newest first."""
    total = session.exec(select(func.count()).select_from(ReconciliationRun)).one()
    rows = session.exec(
        select(ReconciliationRun)
        .order_by(col(ReconciliationRun.business_date).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return RunPage(items=[_run(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/runs/{business_date}", response_model=RunDetail)
def get_run(
    business_date: date,
    session: SessionDep,
    _: CurrentUserInfo = require(Action.READ_RECONCILIATION),
) -> RunDetail:
    """operations_specialist, department_manager, auditor: one day's run and the differences it
    found first (a difference found again later stays listed under its first day)."""
    run = session.get(ReconciliationRun, business_date)
    if run is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"no reconciliation ran for {business_date}"
        )
    diffs = session.exec(
        select(ReconciliationDifference)
        .where(ReconciliationDifference.business_date == business_date)
        .order_by(col(ReconciliationDifference.key))
    ).all()
    return RunDetail(**_run(run).model_dump(), differences=[_difference(d) for d in diffs])
