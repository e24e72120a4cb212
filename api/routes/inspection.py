"""The auditor's inspection report (``loanops.inspection``), as JSON or CSV."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from fastapi import APIRouter, Query, Request, Response

from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, require
from api.errors import unprocessable
from api.routes.reports import CSV, _csv, _wants_csv
from domain.calendar import business_date
from domain.permissions import Action
from loanops.inspection import InspectionReport, inspection_report

router = APIRouter(prefix="/reports", tags=["reports"])

# The longest period one report covers (a year and a day: a yearly inspection, leap years).
MAX_DAYS = 367
DEFAULT_DAYS = 30


@router.get(
    "/inspection",
    response_model=InspectionReport,
    responses={200: {"content": {CSV: {"schema": {"type": "string"}}}}},
)
def inspection(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    period_from: date | None = Query(
        None, alias="from", description="first business day (default: 29 days before `to`)"
    ),
    period_to: date | None = Query(
        None, alias="to", description="last business day, included (default: today)"
    ),
    format: Literal["json", "csv"] | None = Query(None, description="json (default) or csv"),
    _: CurrentUserInfo = require(Action.READ_INSPECTION_REPORT),
) -> InspectionReport | Response:
    """auditor, department_manager: attempted four-eyes violations, SLA breaches, PII reveals
    by user, overrides of automatic checks and classifications, failed logins and disabled
    users' attempts over business days ``from``..``to`` (both included; default the last 30
    days), counts and rows."""
    to = period_to or business_date(clock(), settings.business_timezone)
    start = period_from or to - timedelta(days=DEFAULT_DAYS - 1)
    if start > to:
        raise unprocessable("from", f"must not be after to ({to})", where="query")
    if (to - start).days + 1 > MAX_DAYS:
        raise unprocessable("from", f"the period may cover at most {MAX_DAYS} days", where="query")
    report = inspection_report(session, start, to, settings.business_timezone)
    if _wants_csv(request, format):
        return _csv(report.to_csv(), f"inspection-{start}-{to}.csv")
    return report
