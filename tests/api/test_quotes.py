"""Issue 3's API: schedule quotes for any terms, and the payoff quote of a loan in SERVICING, each
checked against figures computed independently here."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy_financial as npf
import pytest

from loanops.seed import DEMO_USERS
from models.tables import Loan
from tests.api.helpers import (
    add_months_clamped,
    assert_422_names,
    drive,
    equal_installment_rows,
    error_fields,
    fen,
    mint_demo_tokens,
    money,
    new_loan,
    rows,
)
from tests.conftest import System


@pytest.fixture(autouse=True)
def _demo_logins(system: System) -> None:
    mint_demo_tokens(system)


QUOTE = "/api/v1/quotes/schedule"
RATE = re.compile(r"\d\.\d{6}")


def quote_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "principal": "10000.00",
        "annual_rate": "0.12",
        "term_months": 3,
        "method": "equal_installment",
        "start_date": "2026-01-31",
        "upfront_fee": "0",
        "monthly_fee": "0",
    }
    body.update(overrides)
    return body


def _irr_rates(net: Decimal, payments: list[str]) -> tuple[Decimal, Decimal]:
    """(12 × monthly IRR, (1 + IRR)^12 − 1) by numpy_financial, from the quoted payments."""
    irr = npf.irr([-float(net), *(float(p) for p in payments)])
    return Decimal(repr(12 * irr)), Decimal(repr((1 + irr) ** 12 - 1))


def _assert_rate(quoted: str, expected: Decimal) -> None:
    assert RATE.fullmatch(quoted), quoted
    # Six decimals shown; numpy's float IRR agrees with the Decimal bisection far below that.
    assert abs(Decimal(quoted) - expected) <= Decimal("0.0000005") + Decimal("1E-9"), (
        quoted,
        expected,
    )


async def test_schedule_quote_worked_example(system: System) -> None:
    r = await system.call("POST", QUOTE, user="officer", json=quote_body())
    assert r.status_code == 200, r.text
    q = r.json()
    # 10,000 at 1 % a month over 3 months: level payment 10000·0.01·1.01³/(1.01³−1) = 3400.2211…
    assert q["installments"] == [
        {
            "number": 1,
            "due_date": "2026-02-28",
            "principal": "3300.22",
            "interest": "100.00",
            "fee": "0.00",
            "payment": "3400.22",
            "remaining_principal": "6699.78",
        },
        {
            "number": 2,
            "due_date": "2026-03-31",
            "principal": "3333.22",
            "interest": "67.00",
            "fee": "0.00",
            "payment": "3400.22",
            "remaining_principal": "3366.56",
        },
        {
            "number": 3,
            "due_date": "2026-04-30",
            "principal": "3366.56",
            "interest": "33.67",
            "fee": "0.00",
            "payment": "3400.23",
            "remaining_principal": "0.00",
        },
    ]
    assert q["total_principal"] == "10000.00"
    assert q["total_interest"] == "200.67"
    assert q["total_fees"] == "0.00"
    assert q["total_payment"] == "10200.67"
    apr, apr_compound = _irr_rates(Decimal("10000"), ["3400.22", "3400.22", "3400.23"])
    _assert_rate(q["apr"], apr)
    _assert_rate(q["apr_compound"], apr_compound)
    assert q["apr"] != q["apr_compound"]  # the compound figure is higher than 12 × monthly


async def test_schedule_quote_with_fees_matches_an_independent_schedule(system: System) -> None:
    # The PBoC disclosure rule: the cost is the IRR of what the borrower really receives (the
    # whole principal: the upfront fee is never deducted) against everything they pay, the
    # upfront fee with the first installment and the monthly fees included.
    principal, rate, n = Decimal("100000.00"), Decimal("0.108"), 12
    upfront, monthly = Decimal("1000.00"), Decimal("10.00")
    body = quote_body(
        principal=str(principal),
        annual_rate=str(rate),
        term_months=n,
        start_date="2026-03-31",
        upfront_fee=str(upfront),
        monthly_fee=str(monthly),
    )
    quotes = {}
    for username, _, _ in DEMO_USERS:  # any logged-in role
        r = await system.call("POST", QUOTE, user=username, json=body)
        assert r.status_code == 200, (username, r.text)
        quotes[username] = r.json()
    q = quotes["officer"]
    assert all(other == q for other in quotes.values())
    assert (await system.call("POST", QUOTE, json=body)).status_code == 401

    expected = equal_installment_rows(principal, rate, n, monthly)
    expected[0]["fee"] += upfront  # the upfront fee falls due with installment 1
    expected[0]["payment"] += upfront
    start = date(2026, 3, 31)
    assert len(q["installments"]) == n
    for k, (line, want) in enumerate(zip(q["installments"], expected, strict=True), start=1):
        assert line["number"] == k
        assert line["due_date"] == add_months_clamped(start, k).isoformat()
        for part in ("principal", "interest", "fee", "payment", "remaining_principal"):
            assert line[part] == money(want[part]), (k, part, line)
    assert [line["due_date"][5:] for line in q["installments"][:3]] == ["04-30", "05-31", "06-30"]
    assert q["total_principal"] == "100000.00"
    assert q["total_interest"] == money(sum((w["interest"] for w in expected), Decimal(0)))
    assert q["total_fees"] == money(upfront + n * monthly)  # 1,120.00
    assert q["total_payment"] == money(sum((w["payment"] for w in expected), Decimal(0)))

    payments = [line["payment"] for line in q["installments"]]
    apr, apr_compound = _irr_rates(principal, payments)
    _assert_rate(q["apr"], apr)
    _assert_rate(q["apr_compound"], apr_compound)
    # The upfront fee makes the real cost clearly dearer than the nominal 10.8 %.
    assert Decimal(q["apr"]) > Decimal("0.12")

    # Without any fee the level schedule costs exactly its nominal rate (to six places).
    r = await system.call(
        "POST", QUOTE, user="cs", json={**body, "upfront_fee": "0", "monthly_fee": "0"}
    )
    assert r.json()["apr"] == "0.108000"


BULLET_8000 = {"principal": "8000.00", "annual_rate": "0.10", "term_months": 3, "method": "bullet"}


async def test_bullet_quote_discloses_the_cost_of_a_payment_at_maturity(system: System) -> None:
    # ¥8,000 at 10 % for 3 months, bullet: one payment of 8,000 + 8,000 × 10 % × 3/12 = 8,200 at
    # month 3, nothing before. Monthly IRR: (8200/8000)^(1/3) − 1; APR 12 × that = 9.9178 %
    # (a payment at month 1 would be 30 %).
    r = await system.call("POST", QUOTE, user="officer", json=quote_body(**BULLET_8000))
    assert r.status_code == 200, r.text
    q = r.json()
    assert [(i["due_date"], i["payment"]) for i in q["installments"]] == [("2026-04-30", "8200.00")]
    irr = npf.irr([-8000.0, 0.0, 0.0, 8200.0])
    assert abs(irr - ((8200 / 8000) ** (1 / 3) - 1)) < 1e-12
    _assert_rate(q["apr"], Decimal(repr(12 * irr)))
    _assert_rate(q["apr_compound"], Decimal(repr((1 + irr) ** 12 - 1)))
    assert Decimal(q["apr"]).quantize(Decimal("0.0001")) == Decimal("0.0992")
    assert f"{Decimal(q['apr']) * 100:.4f}" == "9.9178"


async def test_a_lawful_bullet_loan_is_not_refused_by_the_ceiling(system: System) -> None:
    # 9.92 % is within 4 × LPR (3.00 % since 2025-05-20: 12 %); the product specialist's offer
    # of these terms must stand, with the same APR the schedule quote discloses.
    # A bullet product any grade and age may take (the seeded one wants a bank statement and
    # the demo borrower is past its age bound): the product manager publishes it today.
    r = await system.call(
        "POST",
        "/api/v1/products",
        user="product",
        json={
            "code": "TEST_BULLET",
            "name": "test bullet loan",
            "methods": ["bullet"],
            "min_amount": "5000.00",
            "max_amount": "50000.00",
            "terms": [3],
            "rates": {g: {"low": "0.090", "high": "0.110"} for g in "ABCDE"},
        },
    )
    assert r.status_code == 201, r.text
    terms = {
        "product_code": "TEST_BULLET",
        "product_version": 1,
        "amount": "8000.00",
        "term_months": 3,
        "annual_rate": "0.10",
        "method": "bullet",
    }
    _, view = await new_loan(system, "OFFER_CONFIRMATION", terms)
    assert view["terms"]["method"] == "bullet"
    assert Decimal(view["terms"]["apr"]).quantize(Decimal("0.0001")) == Decimal("0.0992")
    irr = npf.irr([-8000.0, 0.0, 0.0, 8200.0])
    _assert_rate(view["terms"]["apr"], Decimal(repr(12 * irr)))


INVALID_QUOTES: list[tuple[str, dict[str, Any]]] = [
    ("principal", {"principal": "-1.00"}),
    ("principal", {"principal": "0"}),
    ("annual_rate", {"annual_rate": "1.5"}),
    ("annual_rate", {"annual_rate": "-0.01"}),
    ("term_months", {"term_months": 0}),
    ("term_months", {"term_months": 361}),
    ("method", {"method": "weird"}),
    ("start_date", {"start_date": "2026-13-01"}),
    ("upfront_fee", {"upfront_fee": "10000.00"}),
    ("upfront_fee", {"upfront_fee": "10000.01"}),
    ("monthly_fee", {"monthly_fee": "-1.00"}),
]


async def test_schedule_quote_refuses_invalid_terms_naming_the_field(system: System) -> None:
    for field, change in INVALID_QUOTES:
        r = await system.call("POST", QUOTE, user="officer", json=quote_body(**change))
        assert_422_names(r, field)
    # The edges just inside are fine.
    for change in (
        {"term_months": 1},
        {"term_months": 360},
        {"annual_rate": "1"},
        {"upfront_fee": "9000.00"},
    ):
        r = await system.call("POST", QUOTE, user="officer", json=quote_body(**change))
        assert r.status_code == 200, (change, r.text)


async def test_schedule_quote_survives_an_upfront_fee_just_below_the_principal(
    system: System,
) -> None:
    # Valid input (the fee is below the principal) with an absurd cost: the borrower receives
    # the principal and owes nearly as much again with the first installment. The API may
    # quote it or refuse it naming a field, but must not crash.
    body = quote_body(upfront_fee="9999.99")
    try:
        r = await system.call("POST", QUOTE, user="officer", json=body)
    except Exception as exc:  # TestClient re-raises the server's exception
        raise AssertionError(f"the schedule quote crashed on {body}: {exc!r}") from exc
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert error_fields(r) == ["upfront_fee"]
    else:
        assert Decimal(r.json()["apr"]) > 1  # over 100 % a year


async def test_payoff_quote(system: System) -> None:
    principal, rate = Decimal("33333.33"), Decimal("0.1111")
    terms = {
        "product_code": "SMB_OPERATING",
        "product_version": 1,
        "amount": str(principal),
        "term_months": 6,
        "annual_rate": str(rate),
        "method": "equal_installment",
    }
    application_no, _ = await new_loan(system, "DISBURSEMENT", terms)
    r = await system.call(
        "POST",
        f"/api/v1/loans/{application_no}/payoff-quote",
        user="ops",
        json={"as_of": "2026-01-01"},
    )
    assert r.status_code == 409
    assert "DISBURSEMENT" in r.json()["detail"]

    view = await drive(system, application_no, "SERVICING", terms, frm="DISBURSEMENT")
    (loan,) = rows(system, Loan, Loan.application_no == application_no)
    start = loan.start_date
    assert start is not None
    url = f"/api/v1/loans/{application_no}/payoff-quote"

    # The booked schedule is the one an independent calculation gives.
    assert [(i["principal"], i["interest"]) for i in view["installments"]] == [
        (money(w["principal"]), money(w["interest"]))
        for w in equal_installment_rows(principal, rate, 6)
    ]
    assert view["installments"][0]["due_date"] == add_months_clamped(start, 1).isoformat()

    r = await system.call("POST", url, user="cs", json={"as_of": start.isoformat()})
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["as_of"] == start.isoformat()
    assert q["remaining_principal"] == "33333.33"
    assert q["accrued_interest"] == "0.00"
    assert q["total"] == "33333.33"

    later = start + timedelta(days=10)
    r = await system.call("POST", url, user="ops", json={"as_of": later.isoformat()})
    assert r.status_code == 200, r.text
    q = r.json()
    accrued = fen(principal * rate * 10 / 360)  # 102.87, actual days / 360, half-up
    assert accrued == Decimal("102.87")
    assert q["remaining_principal"] == "33333.33"
    assert q["accrued_interest"] == money(accrued)
    for part in ("overdue_interest", "fees", "penalty", "prepayment_fee", "prepaid_credit"):
        assert q[part] == "0.00", (part, q)
    assert q["total"] == money(principal + accrued)
    parts = ("remaining_principal", "accrued_interest", "overdue_interest", "fees", "penalty")
    assert Decimal(q["total"]) == sum(
        (Decimal(q[p]) for p in (*parts, "prepayment_fee")), Decimal(0)
    ) - Decimal(q["prepaid_credit"])

    r = await system.call(
        "POST", url, user="ops", json={"as_of": (start - timedelta(days=1)).isoformat()}
    )
    assert_422_names(r, "as_of")
    r = await system.call("POST", url, user="ops", json={"as_of": "2026-02-30"})
    assert_422_names(r, "as_of")

    r = await system.call(
        "POST",
        "/api/v1/loans/A20260101-NOSUCH/payoff-quote",
        user="ops",
        json={"as_of": "2026-01-01"},
    )
    assert r.status_code == 404
