"""Schedule quotes: what a loan on given terms costs, installment by installment, with its APR."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter

from api.deps import CurrentUserInfo, require
from api.errors import unprocessable, unprocessable_from
from api.schemas import ScheduleLineOut, ScheduleQuoteIn, ScheduleQuoteOut
from domain.disclosure import disclose_schedule_cost
from domain.permissions import Action
from domain.schedule import build_schedule

router = APIRouter(prefix="/quotes", tags=["quotes"])


@router.post("/schedule", response_model=ScheduleQuoteOut)
def quote_schedule(
    body: ScheduleQuoteIn, _: CurrentUserInfo = require(Action.QUOTE_SCHEDULE)
) -> ScheduleQuoteOut:
    """Any role. Pure calculation: nothing is recorded. The borrower receives the whole
    principal; the upfront fee is due with the first installment (in its fee and payment)."""
    if body.upfront_fee >= body.principal:
        raise unprocessable("upfront_fee", "must be less than principal")
    try:
        schedule = build_schedule(
            principal=body.principal,
            annual_rate=body.annual_rate,
            term_months=body.term_months,
            method=body.method,
            start_date=body.start_date,
            monthly_fee=body.monthly_fee,
            upfront_fee=body.upfront_fee,
        )
        cost = disclose_schedule_cost(
            principal=body.principal,
            upfront_fee=Decimal("0"),  # never deducted: due with the first installment
            schedule=schedule,
            start_date=body.start_date,
        )
    except ValueError as exc:
        raise unprocessable_from(str(exc)) from None
    return ScheduleQuoteOut(
        installments=[
            ScheduleLineOut(
                number=i.number,
                due_date=i.due_date,
                principal=i.principal,
                interest=i.interest,
                fee=i.fee,
                payment=i.payment,
                remaining_principal=i.remaining_principal,
            )
            for i in schedule.installments
        ],
        total_principal=schedule.total_principal,
        total_interest=schedule.total_interest,
        total_fees=schedule.total_fees,
        total_payment=schedule.total_payment,
        apr=cost.apr,
        apr_compound=cost.apr_compound,
    )
