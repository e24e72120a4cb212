from datetime import date, timedelta
from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.allocation import allocate_payment, balances_from_schedule, outstanding
from domain.money import to_fen
from domain.prepayment import PayoffQuote, payoff_quote, reamortize
from domain.schedule import RepaymentMethod, Schedule, build_schedule
from tests.domain.sample_loans import RATE, START, three_month_loan

D = Decimal


def rows(s: Schedule) -> list[tuple[date, str, str, str, str]]:
    return [
        (i.due_date, str(i.principal), str(i.interest), str(i.payment), str(i.remaining_principal))
        for i in s.installments
    ]


def quote(on: date, **kw: object) -> PayoffQuote:
    args: dict[str, object] = {
        "installments": three_month_loan(),
        "as_of": on,
        "annual_rate": RATE,
        "start_date": START,
    }
    args.update(kw)
    return payoff_quote(**args)  # type: ignore[arg-type]


def test_payoff_before_the_first_due_date() -> None:
    # 10 days from Jan 31: 10000 × 0.12 × 10 / 360 = 33.333… → 33.33
    q = quote(date(2024, 2, 10))
    assert q.remaining_principal == D("10000.00")
    assert q.accrued_interest == D("33.33")
    assert (q.overdue_interest, q.fees, q.penalty, q.prepayment_fee) == (0, 0, 0, 0)
    assert q.total == D("10033.33")


def test_payoff_after_paying_the_first_installment_with_prepayment_fee() -> None:
    paid = allocate_payment(
        installments=three_month_loan(),
        amount=D("3400.22"),
        as_of=date(2024, 2, 29),
        annual_rate=RATE,
    ).installments
    # principal left 3333.22 + 3366.56 = 6699.78; 15 days since Feb 29:
    # 6699.78 × 0.12 × 15 / 360 = 33.4989 → 33.50; fee 1 % × 6699.78 = 66.9978 → 67.00
    q = quote(date(2024, 3, 15), installments=paid, prepayment_fee_rate=D("0.01"))
    assert q.remaining_principal == D("6699.78")
    assert q.accrued_interest == D("33.50")
    assert q.prepayment_fee == D("67.00")
    assert q.total == D("6800.28")


def test_payoff_with_an_overdue_installment() -> None:
    # #1 overdue 10 days: its interest 100.00, penalty 16.50; the rest of the principal accrues
    # interest from Feb 29: 6699.78 × 0.12 × 10 / 360 = 22.3326 → 22.33
    q = quote(date(2024, 3, 10), prepayment_fee_rate=D("0.01"))
    assert q.remaining_principal == D("10000.00")
    assert q.overdue_interest == D("100.00")
    assert q.penalty == D("16.50")
    assert q.accrued_interest == D("22.33")
    assert q.prepayment_fee == D("67.00")  # on the 6699.78 not yet due, not on overdue principal
    assert q.total == D("10205.83")


def test_payoff_on_a_due_date_owes_that_installment_interest() -> None:
    q = quote(date(2024, 3, 31))
    # #1 (100.00) and #2 (67.00) interest fully due, penalty on #1 for 31 days:
    # 3300.22 × 0.0005 × 31 = 51.15341 → 51.15; no interest accrues past Mar 31
    assert q.overdue_interest == D("167.00")
    assert q.accrued_interest == 0
    assert q.penalty == D("51.15")
    assert q.total == D("10218.15")


def test_payoff_credits_interest_prepaid_on_later_installments() -> None:
    paid = allocate_payment(
        installments=three_month_loan(),
        amount=D("5000"),
        as_of=date(2024, 2, 29),
        annual_rate=RATE,
    ).installments  # #1 paid, #2: interest 67.00 and 1532.78 of principal paid early
    q = quote(date(2024, 3, 15), installments=paid)
    # principal left 1800.44 + 3366.56 = 5167.00; 5167 × 0.005 = 25.835 → 25.84
    assert q.remaining_principal == D("5167.00")
    assert q.accrued_interest == D("25.84")
    assert q.prepaid_credit == D("67.00")
    assert q.total == D("5125.84")


def test_payoff_before_start_refused() -> None:
    with pytest.raises(ValueError, match=r"^as_of:"):
        quote(date(2024, 1, 30))


def test_reamortize_keep_term() -> None:
    s = reamortize(
        remaining_principal=D("5000"),
        annual_rate=RATE,
        remaining_terms=2,
        next_due_date=date(2024, 3, 31),
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        mode="keep_term",
        current_payment=D("3400.22"),
    )
    # 5000 × 0.01 × 1.0201 / 0.0201 = 2537.5621… → 2537.56
    assert rows(s) == [
        (date(2024, 3, 31), "2487.56", "50.00", "2537.56", "2512.44"),
        (date(2024, 4, 30), "2512.44", "25.12", "2537.56", "0.00"),
    ]
    assert s.installments[0].payment == D(repr(round(float(-npf.pmt(0.01, 2, 5000)), 2)))


def test_reamortize_keep_installment_shortens_the_term() -> None:
    s = reamortize(
        remaining_principal=D("6000"),
        annual_rate=RATE,
        remaining_terms=6,
        next_due_date=date(2024, 2, 29),
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        mode="keep_installment",
        current_payment=D("2000"),
        day_of_month=31,
    )
    assert rows(s) == [
        (date(2024, 2, 29), "1940.00", "60.00", "2000.00", "4060.00"),
        (date(2024, 3, 31), "1959.40", "40.60", "2000.00", "2100.60"),
        (date(2024, 4, 30), "1978.99", "21.01", "2000.00", "121.61"),
        (date(2024, 5, 31), "121.61", "1.22", "122.83", "0.00"),
    ]
    assert [i.number for i in s.installments] == [1, 2, 3, 4]


def test_reamortize_keep_installment_never_lengthens_the_term() -> None:
    s = reamortize(
        remaining_principal=D("5000"),
        annual_rate=RATE,
        remaining_terms=2,
        next_due_date=date(2024, 3, 31),
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        mode="keep_installment",
        current_payment=D("1000"),
    )
    # 50.00 interest, 950.00 principal, then the last takes the remaining 4050.00
    assert rows(s) == [
        (date(2024, 3, 31), "950.00", "50.00", "1000.00", "4050.00"),
        (date(2024, 4, 30), "4050.00", "40.50", "4090.50", "0.00"),
    ]


def test_reamortize_equal_principal_both_modes() -> None:
    kept = reamortize(
        remaining_principal=D("1000"),
        annual_rate=RATE,
        remaining_terms=5,
        next_due_date=date(2024, 3, 15),
        method=RepaymentMethod.EQUAL_PRINCIPAL,
        mode="keep_installment",
        current_payment=D("300"),
    )
    assert rows(kept) == [
        (date(2024, 3, 15), "300.00", "10.00", "310.00", "700.00"),
        (date(2024, 4, 15), "300.00", "7.00", "307.00", "400.00"),
        (date(2024, 5, 15), "300.00", "4.00", "304.00", "100.00"),
        (date(2024, 6, 15), "100.00", "1.00", "101.00", "0.00"),
    ]
    term = reamortize(
        remaining_principal=D("1000"),
        annual_rate=RATE,
        remaining_terms=3,
        next_due_date=date(2024, 3, 15),
        method=RepaymentMethod.EQUAL_PRINCIPAL,
        mode="keep_term",
    )
    assert [(r[1], r[2]) for r in rows(term)] == [
        ("333.33", "10.00"),
        ("333.33", "6.67"),
        ("333.34", "3.33"),
    ]


def test_reamortize_bullet_keep_term() -> None:
    s = reamortize(
        remaining_principal=D("1000"),
        annual_rate=RATE,
        remaining_terms=4,
        next_due_date=date(2024, 6, 30),
        method=RepaymentMethod.BULLET,
        mode="keep_term",
    )
    assert rows(s) == [(date(2024, 6, 30), "1000.00", "40.00", "1040.00", "0.00")]


def test_reamortize_refusals() -> None:
    common: dict[str, object] = {
        "remaining_principal": D("5000"),
        "annual_rate": RATE,
        "remaining_terms": 2,
        "next_due_date": date(2024, 3, 31),
    }
    with pytest.raises(ValueError, match=r"^mode:"):
        reamortize(
            **common,  # type: ignore[arg-type]
            method=RepaymentMethod.INTEREST_ONLY,
            mode="keep_installment",
            current_payment=D("50"),
        )
    with pytest.raises(ValueError, match=r"^current_payment: 50.00 does not exceed"):
        reamortize(
            **common,  # type: ignore[arg-type]
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            mode="keep_installment",
            current_payment=D("50"),
        )
    with pytest.raises(ValueError, match=r"^current_payment: required"):
        reamortize(
            **common,  # type: ignore[arg-type]
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            mode="keep_installment",
        )
    with pytest.raises(ValueError, match=r"^remaining_principal:"):
        reamortize(
            **{**common, "remaining_principal": D("0")},  # type: ignore[arg-type]
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            mode="keep_term",
        )


@settings(max_examples=120, deadline=None)
@given(
    principal=st.integers(min_value=1, max_value=50_000_000).map(lambda n: D(n) / 100),
    rate=st.integers(min_value=0, max_value=360_000).map(lambda n: D(n) / 1_000_000),
    terms=st.integers(min_value=1, max_value=120),
    method=st.sampled_from([RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL]),
    share=st.integers(min_value=1, max_value=100),
    next_due=st.dates(min_value=date(2020, 1, 1), max_value=date(2060, 12, 31)),
)
def test_reamortized_principal_sums_and_term_never_grows(
    principal: Decimal,
    rate: Decimal,
    terms: int,
    method: RepaymentMethod,
    share: int,
    next_due: date,
) -> None:
    # keep the payment of a loan share % larger, so the smaller loan needs no more terms
    original = build_schedule(
        principal=to_fen(principal * 100 / share),
        annual_rate=rate,
        term_months=terms,
        method=method,
        start_date=next_due,
    ).installments[0]
    kept = original.payment if method is RepaymentMethod.EQUAL_INSTALLMENT else original.principal
    if method is RepaymentMethod.EQUAL_INSTALLMENT and kept <= to_fen(principal * rate / 12):
        return  # a payment that cannot cover the interest is refused (tested above)
    if kept == 0:
        return
    for mode in ("keep_term", "keep_installment"):
        s = reamortize(
            remaining_principal=principal,
            annual_rate=rate,
            remaining_terms=terms,
            next_due_date=next_due,
            method=method,
            mode=mode,
            current_payment=kept,
        )
        assert s.total_principal == principal
        assert s.installments[0].due_date == next_due
        assert all(i.remaining_principal >= 0 for i in s.installments)
        assert s.installments[-1].remaining_principal == 0
        assert 1 <= len(s.installments) <= terms
        if mode == "keep_term":
            assert len(s.installments) == terms


@settings(max_examples=60, deadline=None)
@given(
    principal=st.integers(min_value=100, max_value=10_000_000).map(lambda n: D(n) / 100),
    rate=st.integers(min_value=0, max_value=240_000).map(lambda n: D(n) / 1_000_000),
    terms=st.integers(min_value=1, max_value=24),
    method=st.sampled_from(list(RepaymentMethod)),
    late=st.integers(min_value=0, max_value=400),
)
def test_payoff_after_maturity_is_everything_outstanding(
    principal: Decimal, rate: Decimal, terms: int, method: RepaymentMethod, late: int
) -> None:
    schedule = build_schedule(
        principal=principal,
        annual_rate=rate,
        term_months=terms,
        method=method,
        start_date=START,
        monthly_fee=D("3"),
    )
    balances = balances_from_schedule(schedule)
    on = schedule.installments[-1].due_date + timedelta(days=late)
    q = payoff_quote(
        installments=balances,
        as_of=on,
        annual_rate=rate,
        start_date=START,
        prepayment_fee_rate=D("0.02"),
    )
    o = outstanding(installments=balances, as_of=on, annual_rate=rate)
    assert q.accrued_interest == 0
    assert q.prepayment_fee == 0  # nothing is paid before it is due
    assert q.total == o.total_outstanding == schedule.total_payment + q.penalty
