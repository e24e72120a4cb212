"""The managers' reports, from the database: the portfolio and the overdue worklist, as JSON or
CSV (``?format=csv`` or ``Accept: text/csv``)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response

from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, require
from api.schemas import MAX_OFFSET
from domain.calendar import business_date
from domain.permissions import Action
from loanops.reports import overdue_worklist, portfolio_report
from models.reports import OverduePage, PortfolioReport

router = APIRouter(prefix="/reports", tags=["reports"])

CSV = "text/csv"
_CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {"schema": {"type": "string"}}}}
}

Format = Literal["json", "csv"]


def _wants_csv(request: Request, fmt: Format | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return CSV in request.headers.get("accept", "")


def _csv(body: str, filename: str) -> Response:
    return Response(
        content=body,
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _as_of(as_of: date | None, clock: ClockDep, settings: SettingsDep) -> date:
    return as_of or business_date(clock(), settings.business_timezone)


AS_OF = Query(None, description="the business day (default: today in the business time zone)")
FORMAT = Query(None, description="json (default) or csv; or send Accept: text/csv")


@router.get("/portfolio", response_model=PortfolioReport, responses=_CSV_RESPONSE)
def portfolio(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    as_of: date | None = AS_OF,
    format: Format | None = FORMAT,
    _: CurrentUserInfo = require(Action.READ_PORTFOLIO_REPORT),
) -> PortfolioReport | Response:
    """department_manager, risk_manager, operations_specialist, product_manager, auditor:
    outstanding principal and counts by stage, product (repayment method), grade and
    classification; DPD buckets; PAR1/30/90; collections outcomes and the promise-kept rate;
    write-offs and recoveries."""
    report = portfolio_report(session, _as_of(as_of, clock, settings))
    if _wants_csv(request, format):
        return _csv(report.csv(), f"portfolio-{report.as_of.isoformat()}.csv")
    return report


@router.get("/overdue", response_model=OverduePage, responses=_CSV_RESPONSE)
def overdue(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    as_of: date | None = AS_OF,
    sort: Literal["dpd", "amount"] = Query("dpd", description="days past due, or overdue amount"),
    order: Literal["asc", "desc"] = Query("desc"),
    limit: int | None = Query(
        None,
        ge=1,
        le=500,
        description="page size: 50 by default; the CSV has every row unless given",
    ),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    format: Format | None = FORMAT,
    viewer: CurrentUserInfo = require(Action.READ_OVERDUE_REPORT),
) -> OverduePage | Response:
    """department_manager, risk_manager, operations_specialist, business_officer: the overdue
    loans with their days past due, the overdue amount split principal / interest / fee /
    penalty, the classification and the last contact (the ladder's calls and visits, or an
    overdue call); borrower names masked. A business officer sees only their own loans
    (submitted or assigned for collection)."""
    day = _as_of(as_of, clock, settings)
    officer = viewer.username if viewer.sees_only_own() else None
    if _wants_csv(request, format):
        page = overdue_worklist(
            session,
            day,
            sort=sort,
            order=order,
            limit=limit or 1_000_000,
            offset=offset,
            officer=officer,
        )
        return _csv(page.csv(), f"overdue-{day.isoformat()}.csv")
    return overdue_worklist(
        session, day, sort=sort, order=order, limit=limit or 50, offset=offset, officer=officer
    )
