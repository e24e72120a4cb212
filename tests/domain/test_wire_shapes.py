from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.allocation import (
    DEFAULT_ORDER,
    AllocationResult,
    OrderStep,
    Outstanding,
    allocate_payment,
    outstanding,
)
from domain.disclosure import (
    CeilingCheck,
    CeilingPolicy,
    CostDisclosure,
    check_interest_ceiling,
    disclose_cost,
)
from domain.lpr import LprTable, default_lpr_table
from domain.penalty import PenaltyPolicy
from domain.prepayment import PayoffQuote, payoff_quote
from domain.schedule import RepaymentMethod, Schedule, build_schedule
from tests.domain.sample_loans import RATE, START, three_month_loan

D = Decimal


def _samples() -> list[tuple[object, Any]]:
    on = date(2024, 3, 10)
    return [
        (
            build_schedule(
                principal=D("10000"),
                annual_rate=RATE,
                term_months=3,
                method=RepaymentMethod.EQUAL_PRINCIPAL,
                start_date=START,
            ),
            Schedule,
        ),
        (
            allocate_payment(
                installments=three_month_loan(), amount=D("50"), as_of=on, annual_rate=RATE
            ),
            AllocationResult,
        ),
        (outstanding(installments=three_month_loan(), as_of=on, annual_rate=RATE), Outstanding),
        (
            payoff_quote(
                installments=three_month_loan(), as_of=on, annual_rate=RATE, start_date=START
            ),
            PayoffQuote,
        ),
        (
            disclose_cost(
                principal=D("100000"), upfront_fee=D("1000"), payments=[D("8833.3")] * 12
            ),
            CostDisclosure,
        ),
        (
            check_interest_ceiling(
                all_in_rate=D("0.13"),
                contract_date=on,
                lpr_table=default_lpr_table(),
                policy=CeilingPolicy(),
            ),
            CeilingCheck,
        ),
        (default_lpr_table(), LprTable),
        (PenaltyPolicy(), PenaltyPolicy),
        (DEFAULT_ORDER, tuple[OrderStep, ...]),
    ]


@pytest.mark.parametrize(("value", "kind"), _samples())
def test_shapes_round_trip_through_the_temporal_pydantic_converter(
    value: object, kind: Any
) -> None:
    converter = pydantic_data_converter.payload_converter
    back = converter.from_payloads(converter.to_payloads([value]), [kind])[0]
    assert back == value
    assert repr(back) == repr(value)  # Decimal places and dates survive exactly


def test_money_travels_as_strings() -> None:
    converter = pydantic_data_converter.payload_converter
    schedule = _samples()[0][0]
    payload = converter.to_payloads([schedule])[0].data
    assert b'"principal":"3333.33"' in payload
    assert b'"due_date":"2024-02-29"' in payload
