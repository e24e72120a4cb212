from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.schedule import (
    RepaymentMethod,
    Schedule,
    ScheduledInstallment,
    add_months,
    build_schedule,
)

D = Decimal
START = date(2024, 1, 31)  # month-end start in a leap year


def rows(schedule: Schedule) -> list[tuple[int, date, str, str, str, str, str]]:
    return [
        (
            i.number,
            i.due_date,
            str(i.principal),
            str(i.interest),
            str(i.fee),
            str(i.payment),
            str(i.remaining_principal),
        )
        for i in schedule.installments
    ]


def build(method: RepaymentMethod | str, **kw: object) -> Schedule:
    args: dict[str, object] = {
        "principal": D("10000"),
        "annual_rate": D("0.12"),
        "term_months": 3,
        "method": method,
        "start_date": START,
    }
    args.update(kw)
    return build_schedule(**args)  # type: ignore[arg-type]


# ---- worked tables: ¥10,000 at 12 % a year (1 % a month) for 3 months, from Jan 31 2024 ----


def test_equal_installment_worked_table() -> None:
    # payment = 10000·0.01·1.01³/(1.01³−1) = 3400.2211… → 3400.22
    # 1: interest 10000×1 % = 100.00, principal 3300.22, left 6699.78
    # 2: interest 66.9978 → 67.00, principal 3333.22, left 3366.56
    # 3: interest 33.6656 → 33.67, principal takes the rest 3366.56, payment 3400.23
    s = build(RepaymentMethod.EQUAL_INSTALLMENT)
    assert rows(s) == [
        (1, date(2024, 2, 29), "3300.22", "100.00", "0.00", "3400.22", "6699.78"),
        (2, date(2024, 3, 31), "3333.22", "67.00", "0.00", "3400.22", "3366.56"),
        (3, date(2024, 4, 30), "3366.56", "33.67", "0.00", "3400.23", "0.00"),
    ]
    assert (s.total_principal, s.total_interest, s.total_fees, s.total_payment) == (
        D("10000.00"),
        D("200.67"),
        D("0.00"),
        D("10200.67"),
    )


def test_equal_principal_worked_table() -> None:
    # principal 10000/3 = 3333.33 (twice), last 3333.34; interest on what is left
    s = build(RepaymentMethod.EQUAL_PRINCIPAL)
    assert rows(s) == [
        (1, date(2024, 2, 29), "3333.33", "100.00", "0.00", "3433.33", "6666.67"),
        (2, date(2024, 3, 31), "3333.33", "66.67", "0.00", "3400.00", "3333.34"),
        (3, date(2024, 4, 30), "3333.34", "33.33", "0.00", "3366.67", "0.00"),
    ]
    assert s.total_interest == D("200.00")


def test_interest_only_worked_table() -> None:
    s = build(RepaymentMethod.INTEREST_ONLY)
    assert rows(s) == [
        (1, date(2024, 2, 29), "0.00", "100.00", "0.00", "100.00", "10000.00"),
        (2, date(2024, 3, 31), "0.00", "100.00", "0.00", "100.00", "10000.00"),
        (3, date(2024, 4, 30), "10000.00", "100.00", "0.00", "10100.00", "0.00"),
    ]


def test_bullet_worked_table() -> None:
    s = build(RepaymentMethod.BULLET, monthly_fee=D("5"))
    # one installment at month 3: interest 10000×1 %×3, fee 5×3
    assert rows(s) == [(1, date(2024, 4, 30), "10000.00", "300.00", "15.00", "10315.00", "0.00")]
    assert s.total_payment == D("10315.00")


def test_monthly_fee_added_to_each_installment() -> None:
    s = build(RepaymentMethod.EQUAL_INSTALLMENT, monthly_fee=D("12.50"))
    assert [str(i.fee) for i in s.installments] == ["12.50"] * 3
    assert [str(i.payment) for i in s.installments] == ["3412.72", "3412.72", "3412.73"]
    assert s.total_fees == D("37.50")
    assert s.total_payment == D("10238.17")


def test_zero_rate_loans() -> None:
    ei = build(RepaymentMethod.EQUAL_INSTALLMENT, annual_rate=D("0"))
    assert [(str(i.principal), str(i.interest)) for i in ei.installments] == [
        ("3333.33", "0.00"),
        ("3333.33", "0.00"),
        ("3333.34", "0.00"),
    ]
    bullet = build(RepaymentMethod.BULLET, annual_rate=D("0"))
    assert bullet.total_interest == D("0.00")
    assert bullet.total_payment == D("10000.00")


def test_month_end_and_leap_year_dates() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
    assert add_months(date(2024, 12, 15), 1) == date(2025, 1, 15)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    s = build(RepaymentMethod.EQUAL_PRINCIPAL, start_date=date(2027, 12, 31), term_months=4)
    # each date is start + k months, not chained from the clamped Feb 29
    assert [i.due_date for i in s.installments] == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
    ]


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"principal": D("0")}, "principal"),
        ({"principal": D("-1")}, "principal"),
        ({"principal": D("1.001")}, "principal"),
        ({"principal": 100.0}, "principal"),
        ({"annual_rate": D("-0.01")}, "annual_rate"),
        ({"annual_rate": D("1.01")}, "annual_rate"),
        ({"term_months": 0}, "term_months"),
        ({"term_months": 361}, "term_months"),
        ({"monthly_fee": D("-1")}, "monthly_fee"),
    ],
)
def test_bad_input_names_the_argument(kw: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        build(RepaymentMethod.EQUAL_INSTALLMENT, **kw)


def test_unknown_method_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^method: unknown repayment method 'balloon'"):
        build("balloon")


def test_accepts_method_as_string_and_upper_edges() -> None:
    s = build("equal_principal", term_months=360, annual_rate=D("1"))
    assert len(s.installments) == 360
    assert s.total_principal == D("10000.00")


# ---- properties ----

principals = st.integers(min_value=1, max_value=100_000_000).map(lambda n: D(n) / 100)
rates = st.integers(min_value=0, max_value=1_000_000).map(lambda n: D(n) / 1_000_000)
terms = st.integers(min_value=1, max_value=360)
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


def check_invariants(s: Schedule, principal: Decimal) -> None:
    assert s.total_principal == principal
    left = principal
    for i in s.installments:
        assert i.principal >= 0
        assert i.interest >= 0
        left -= i.principal
        assert i.remaining_principal == left
        assert i.remaining_principal >= 0
        assert i.payment == i.principal + i.interest + i.fee
        for amount in (i.principal, i.interest, i.fee, i.payment):
            assert amount == amount.quantize(D("0.01"))
    assert s.installments[-1].remaining_principal == 0
    assert s.total_payment == sum(i.payment for i in s.installments)


@settings(max_examples=150, deadline=None)
@given(
    principal=principals,
    rate=rates,
    term=terms,
    method=st.sampled_from(list(RepaymentMethod)),
    start=starts,
)
def test_principal_sums_and_remaining_ends_at_zero(
    principal: Decimal, rate: Decimal, term: int, method: RepaymentMethod, start: date
) -> None:
    s = build_schedule(
        principal=principal,
        annual_rate=rate,
        term_months=term,
        method=method,
        start_date=start,
    )
    check_invariants(s, principal)
    expected_count = 1 if method is RepaymentMethod.BULLET else term
    assert len(s.installments) == expected_count
    assert s.installments[-1].due_date == add_months(start, term)
    dates = [i.due_date for i in s.installments]
    assert dates == sorted(set(dates))


def _half_up(x: float) -> Decimal:
    return D(repr(float(x))).quantize(D("0.01"), rounding=ROUND_HALF_UP)


@settings(max_examples=150, deadline=None)
@given(
    principal=st.integers(min_value=100_000, max_value=100_000_000).map(lambda n: D(n) / 100),
    rate=st.integers(min_value=1, max_value=360_000).map(lambda n: D(n) / 1_000_000),
    term=terms,
)
def test_equal_installment_payment_matches_numpy_financial(
    principal: Decimal, rate: Decimal, term: int
) -> None:
    s = build_schedule(
        principal=principal,
        annual_rate=rate,
        term_months=term,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        start_date=START,
    )
    reference = -npf.pmt(float(rate) / 12, term, float(principal))
    level = _half_up(reference)
    body = s.installments[:-1]
    # Every installment but the last pays the level payment, except where the fen rounding of
    # the level payment (compounded over a long, dear loan) repays the principal early: that
    # installment pays off what is left and any after it are empty.
    for k, inst in enumerate(body):
        if inst.payment != level:
            assert inst.remaining_principal == 0
            assert inst.payment < level
            assert all(later.payment == 0 for later in s.installments[k + 1 :])
            break
    # The last installment absorbs the rounding: payment and interest each round by at most
    # half a fen a period, compounded.
    r = rate / 12
    bound = D("0.01") * sum((1 + r) ** k for k in range(term)) + D("0.01")
    if s.installments[-1].payment:
        assert abs(s.installments[-1].payment - level) <= bound


def test_scheduled_installment_is_plain_data() -> None:
    s = build(RepaymentMethod.BULLET)
    assert isinstance(s.installments[0], ScheduledInstallment)
    with pytest.raises(AttributeError):
        s.installments[0].payment = D("1")  # type: ignore[misc]
