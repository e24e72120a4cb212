from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.allocation import (
    DEFAULT_ORDER,
    AllocationLine,
    AllocationResult,
    Component,
    InstallmentBalance,
    OrderStep,
    allocate_payment,
    apply_credit,
    balances_from_schedule,
    outstanding,
)
from domain.schedule import RepaymentMethod, build_schedule
from tests.domain.sample_loans import RATE, three_month_loan

D = Decimal
PEN, INT, PRI, FEE = Component.PENALTY, Component.INTEREST, Component.PRINCIPAL, Component.FEE


def lines(result: AllocationResult) -> list[tuple[int, Component, str]]:
    return [(x.installment, x.component, str(x.amount)) for x in result.lines]


def pay(
    amount: str, on: date, installments: tuple[InstallmentBalance, ...] | None = None, **kw: object
) -> AllocationResult:
    return allocate_payment(
        installments=three_month_loan() if installments is None else installments,
        amount=D(amount),
        as_of=on,
        annual_rate=RATE,
        **kw,  # type: ignore[arg-type]
    )


def test_balances_from_schedule() -> None:
    b = three_month_loan()
    assert [(x.number, x.due_date, x.principal_due, x.interest_due) for x in b] == [
        (1, date(2024, 2, 29), D("3300.22"), D("100.00")),
        (2, date(2024, 3, 31), D("3333.22"), D("67.00")),
        (3, date(2024, 4, 30), D("3366.56"), D("33.67")),
    ]
    assert b[0].total_outstanding == D("3400.22")
    assert not b[0].is_paid


def test_partial_payment_of_overdue_installment_pays_penalty_first() -> None:
    # 10 days late: penalty 3300.22 × 0.18/360 × 10 = 16.50; then interest 33.50 of 100
    r = pay("50", date(2024, 3, 10))
    assert lines(r) == [(1, PEN, "16.50"), (1, INT, "33.50")]
    assert r.applied == D("50.00")
    assert r.credit == 0
    first = r.installments[0]
    assert (first.penalty_paid, first.interest_paid, first.principal_paid) == (
        D("16.50"),
        D("33.50"),
        D("0"),
    )
    assert first.penalty_accrued_through == date(2024, 3, 10)


def test_overdue_then_current() -> None:
    # overdue #1: 16.50 + 100.00 + 3300.22 = 3416.72; the 83.28 left goes to current #2
    r = pay("3500", date(2024, 3, 10))
    assert lines(r) == [
        (1, PEN, "16.50"),
        (1, INT, "100.00"),
        (1, PRI, "3300.22"),
        (2, INT, "67.00"),
        (2, PRI, "16.28"),
    ]
    assert r.installments[0].is_paid
    assert r.principal_prepaid == 0  # #2 is the current installment, not a prepayment


def test_component_major_across_overdue_installments() -> None:
    # on Apr 5 #1 is 36 days late (3300.22 × 0.0005 × 36 = 59.40396 → 59.40) and #2 is 5 days
    # late (3333.22 × 0.0005 × 5 = 8.33305 → 8.33): both penalties, then #1's interest, then #2's
    r = pay("200", date(2024, 4, 5))
    assert lines(r) == [(1, PEN, "59.40"), (2, PEN, "8.33"), (1, INT, "100.00"), (2, INT, "32.27")]


def test_overdue_fee_before_overdue_interest() -> None:
    schedule = build_schedule(
        principal=D("10000"),
        annual_rate=RATE,
        term_months=3,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        start_date=date(2024, 1, 31),
        monthly_fee=D("20"),
    )
    r = pay("50", date(2024, 3, 10), balances_from_schedule(schedule))
    assert lines(r) == [(1, PEN, "16.50"), (1, FEE, "20.00"), (1, INT, "13.50")]


def test_payment_on_due_date_is_current_not_overdue() -> None:
    r = pay("3400.22", date(2024, 2, 29))
    assert lines(r) == [(1, INT, "100.00"), (1, PRI, "3300.22")]
    assert r.installments[0].penalty_accrued == 0


@pytest.mark.parametrize(
    ("mode", "expected_lines", "credit", "prepaid"),
    [
        (
            "next_installment",
            [(1, INT, "100.00"), (1, PRI, "3300.22"), (2, INT, "67.00"), (2, PRI, "1532.78")],
            "0.00",
            "1532.78",
        ),
        ("credit", [(1, INT, "100.00"), (1, PRI, "3300.22")], "1599.78", "0.00"),
        (
            "principal",
            [(1, INT, "100.00"), (1, PRI, "3300.22"), (3, PRI, "1599.78")],
            "0.00",
            "1599.78",
        ),
    ],
)
def test_overpayment_modes(
    mode: str, expected_lines: list[tuple[int, Component, str]], credit: str, prepaid: str
) -> None:
    # 5000 on the first due date: #1 takes 3400.22, 1599.78 is left over
    r = pay("5000", date(2024, 2, 29), overpayment=mode)
    assert lines(r) == expected_lines
    assert r.credit == D(credit)
    assert r.principal_prepaid == D(prepaid)
    assert r.applied + r.credit == D("5000")


def test_principal_mode_spills_to_earlier_installments() -> None:
    # 1599.78 + 3366.56 + 1000 = 5966.34 left after #1: all of #3's principal, 1000 of #2's
    r = pay("9366.56", date(2024, 2, 29), overpayment="principal")
    assert lines(r)[2:] == [(3, PRI, "3366.56"), (2, PRI, "2599.78")]
    assert r.principal_prepaid == D("5966.34")


def test_paying_off_everything_leaves_the_rest_as_credit() -> None:
    # the whole schedule is 10200.67
    r = pay("20000", date(2024, 2, 29))
    assert all(b.is_paid for b in r.installments)
    assert r.applied == D("10200.67")
    assert r.credit == D("9799.33")


def test_existing_credit_is_applied_with_the_payment() -> None:
    r = pay("3300.22", date(2024, 2, 29), credit=D("100"))
    assert lines(r) == [(1, INT, "100.00"), (1, PRI, "3300.22")]
    assert r.credit == 0
    assert r.applied == D("3400.22")


def test_apply_credit_without_new_money() -> None:
    r = apply_credit(
        installments=three_month_loan(), credit=D("150"), as_of=date(2024, 2, 29), annual_rate=RATE
    )
    assert lines(r) == [(1, INT, "100.00"), (1, PRI, "50.00")]
    assert r.credit == 0


def test_custom_order_current_principal_first() -> None:
    order: tuple[OrderStep, ...] = (("current", PRI), ("current", INT))
    r = pay("3400.22", date(2024, 2, 29), order=order, overpayment="credit")
    assert lines(r) == [(1, PRI, "3300.22"), (1, INT, "100.00")]


@pytest.mark.parametrize("amount", ["0", "-1"])
def test_non_positive_payment_refused(amount: str) -> None:
    with pytest.raises(ValueError, match=r"^amount:"):
        pay(amount, date(2024, 2, 29))


def test_bad_order_and_mode_refused() -> None:
    with pytest.raises(ValueError, match=r"^order:"):
        pay("1", date(2024, 2, 29), order=(("late", PRI),))
    with pytest.raises(ValueError, match=r"^overpayment:"):
        pay("1", date(2024, 2, 29), overpayment="refund")
    with pytest.raises(ValueError, match=r"^amount:"):
        pay("1.001", date(2024, 2, 29))


def test_outstanding_ten_days_late() -> None:
    o = outstanding(installments=three_month_loan(), as_of=date(2024, 3, 10), annual_rate=RATE)
    assert (o.overdue_principal, o.overdue_interest, o.overdue_fee, o.penalty) == (
        D("3300.22"),
        D("100.00"),
        D("0.00"),
        D("16.50"),
    )
    assert o.current_due == D("3400.22")
    assert o.next_due is not None and o.next_due.number == 2
    assert o.days_past_due == 10
    assert o.due_now == D("6816.94")  # 3416.72 overdue + 3400.22 current
    assert o.total_outstanding == D("10217.17")  # 10200.67 + 16.50


def test_outstanding_after_partial_payment_and_when_settled() -> None:
    r = pay("3416.72", date(2024, 3, 10))
    o = outstanding(installments=r.installments, as_of=date(2024, 3, 10), annual_rate=RATE)
    assert o.days_past_due == 0
    assert o.penalty == 0
    assert o.overdue_principal == 0
    done = pay("20000", date(2024, 2, 29))
    o2 = outstanding(installments=done.installments, as_of=date(2024, 6, 1), annual_rate=RATE)
    assert o2.total_outstanding == 0
    assert o2.next_due is None
    assert o2.days_past_due == 0


# ---- conservation property ----

payments = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=2_000_000).map(lambda n: D(n) / 100),
        st.integers(min_value=0, max_value=90),
        st.sampled_from(["credit", "next_installment", "principal"]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=120, deadline=None)
@given(
    principal=st.integers(min_value=100, max_value=5_000_000).map(lambda n: D(n) / 100),
    rate=st.integers(min_value=0, max_value=240_000).map(lambda n: D(n) / 1_000_000),
    term=st.integers(min_value=1, max_value=12),
    method=st.sampled_from(list(RepaymentMethod)),
    fee=st.sampled_from([D("0"), D("9.99")]),
    plan=payments,
    order=st.permutations(DEFAULT_ORDER),
)
def test_allocation_conserves_every_fen(
    principal: Decimal,
    rate: Decimal,
    term: int,
    method: RepaymentMethod,
    fee: Decimal,
    plan: list[tuple[Decimal, int, str]],
    order: list[OrderStep],
) -> None:
    start = date(2024, 1, 31)
    schedule = build_schedule(
        principal=principal,
        annual_rate=rate,
        term_months=term,
        method=method,
        start_date=start,
        monthly_fee=fee,
    )
    balances = balances_from_schedule(schedule)
    credit = D("0")
    day = start
    paid_in = D("0")
    for amount, gap, mode in plan:
        day += timedelta(days=gap)
        r = allocate_payment(
            installments=balances,
            amount=amount,
            as_of=day,
            annual_rate=rate,
            credit=credit,
            order=tuple(order),
            overpayment=mode,  # type: ignore[arg-type]
        )
        assert sum(x.amount for x in r.lines) + r.credit == amount + credit
        assert r.applied == sum(x.amount for x in r.lines)
        assert all(isinstance(x, AllocationLine) and x.amount > 0 for x in r.lines)
        assert len({(x.installment, x.component) for x in r.lines}) == len(r.lines)
        for b in r.installments:
            for c in Component:
                assert b.outstanding_of(c) >= 0
        if r.credit > 0 and mode != "credit":
            # money left over only when nothing it could pay remains
            assert all(b.principal_outstanding == 0 for b in r.installments)
        paid_in += amount
        balances, credit = r.installments, r.credit
    total_paid = sum(
        b.principal_paid + b.interest_paid + b.fee_paid + b.penalty_paid for b in balances
    )
    assert total_paid + credit == paid_in
    assert sum(b.principal_paid for b in balances) <= principal
