"""Ledger operations of early repayment: apply_payoff and apply_partial_prepayment."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy_financial as npf
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.allocation import (
    AllocationLine,
    Component,
    InstallmentBalance,
    allocate_payment,
    balances_from_schedule,
)
from domain.prepayment import (
    PrepaymentResult,
    ReamortizeMode,
    apply_partial_prepayment,
    apply_payoff,
    payoff_quote,
)
from domain.schedule import RepaymentMethod, Schedule, build_schedule
from tests.domain.sample_loans import RATE, START, three_month_loan

D = Decimal
PEN, INT, PRI, FEE = Component.PENALTY, Component.INTEREST, Component.PRINCIPAL, Component.FEE
EI = RepaymentMethod.EQUAL_INSTALLMENT
LOAN_START = date(2024, 1, 15)  # day 15: no month-end clamping in the worked examples
_PAID = {PEN: "penalty_paid", INT: "interest_paid", PRI: "principal_paid", FEE: "fee_paid"}


def cents(x: Decimal) -> Decimal:
    """Independent half-up rounding to the fen (not domain.money)."""
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def money(b: InstallmentBalance) -> tuple[Decimal, ...]:
    """An installment's amounts due and paid (not the date its penalty was accrued through)."""
    return (
        b.principal_due,
        b.interest_due,
        b.fee_due,
        b.principal_paid,
        b.interest_paid,
        b.fee_paid,
        b.penalty_accrued,
        b.penalty_paid,
    )


def total(lines: Sequence[AllocationLine]) -> Decimal:
    return sum((line.amount for line in lines), D(0))


def loan_12k(method: RepaymentMethod = EI) -> Schedule:
    """¥12,000 at 12 % over 12 months from Jan 15 2024."""
    return build_schedule(
        principal=D("12000"), annual_rate=RATE, term_months=12, method=method, start_date=LOAN_START
    )


def paid_on_time(schedule: Schedule, count: int) -> tuple[InstallmentBalance, ...]:
    """The ledger after the first `count` installments were each paid on their due date."""
    ledger = balances_from_schedule(schedule)
    for row in schedule.installments[:count]:
        ledger = allocate_payment(
            installments=ledger, amount=row.payment, as_of=row.due_date, annual_rate=RATE
        ).installments
    return ledger


def assert_every_fen_kept(
    before: Sequence[InstallmentBalance],
    result: PrepaymentResult,
    money_in: Decimal,
) -> None:
    """sum(lines) + credit == money in + released, and per installment and component the
    change in what is paid is exactly its lines minus what was released from it."""
    assert total(result.lines) + result.credit == money_in + total(result.released)
    assert all(line.amount > 0 for line in (*result.lines, *result.released))
    assert result.credit >= 0
    old = {b.number: b for b in before}
    new = {b.number: b for b in result.installments}
    for number in old.keys() | new.keys():
        for component, field in _PAID.items():
            after = getattr(new[number], field) if number in new else D(0)
            was = getattr(old[number], field) if number in old else D(0)
            moved = sum(
                (
                    x.amount
                    for x in result.lines
                    if (x.installment, x.component) == (number, component)
                ),
                D(0),
            ) - sum(
                (
                    x.amount
                    for x in result.released
                    if (x.installment, x.component) == (number, component)
                ),
                D(0),
            )
            assert after - was == moved, (number, component)


# --- payoff -------------------------------------------------------------------------------


def test_payoff_on_the_start_date_costs_the_principal_and_waives_all_interest() -> None:
    ledger = balances_from_schedule(loan_12k())
    r = apply_payoff(
        installments=ledger,
        amount=D("12000"),
        as_of=LOAN_START,
        annual_rate=RATE,
        start_date=LOAN_START,
    )
    assert r.quote is not None and r.quote.total == D("12000.00")
    assert r.mode == "payoff"
    assert all(b.is_paid for b in r.installments)
    assert sum(b.interest_due for b in r.installments) == 0
    assert sum(b.fee_due for b in r.installments) == 0
    assert [b.principal_due for b in r.installments] == [b.principal_due for b in ledger]
    assert {x.component for x in r.lines} == {PRI}
    assert total(r.lines) == D("12000.00")
    assert r.credit == 0 and r.released == ()
    assert_every_fen_kept(ledger, r, D("12000"))


def test_payoff_ten_days_after_the_third_due_date() -> None:
    schedule = loan_12k()
    ledger = paid_on_time(schedule, 3)
    on = schedule.installments[2].due_date + timedelta(days=10)  # 2024-04-25
    remaining = D("12000") - sum(i.principal for i in schedule.installments[:3])
    accrued = cents(remaining * D("0.12") * 10 / 360)  # independent: P × r × days / 360
    fee = cents(remaining * D("0.01"))
    q = payoff_quote(
        installments=ledger,
        as_of=on,
        annual_rate=RATE,
        start_date=LOAN_START,
        prepayment_fee_rate=D("0.01"),
    )
    assert (q.remaining_principal, q.accrued_interest, q.prepayment_fee) == (
        remaining,
        accrued,
        fee,
    )
    assert q.total == remaining + accrued + fee

    r = apply_payoff(
        installments=ledger,
        amount=q.total,
        as_of=on,
        annual_rate=RATE,
        start_date=LOAN_START,
        prepayment_fee_rate=D("0.01"),
    )
    assert r.quote == q
    assert all(b.is_paid for b in r.installments)
    fourth, *rest = r.installments[3:]
    assert (fourth.number, fourth.interest_due, fourth.fee_due) == (4, accrued, fee)
    assert all(b.interest_due == 0 and b.fee_due == 0 for b in rest)
    assert [money(b) for b in r.installments[:3]] == [money(b) for b in ledger[:3]]
    assert (4, INT, accrued) in [(x.installment, x.component, x.amount) for x in r.lines]
    assert total(r.lines) == q.total == remaining + accrued + fee
    assert r.credit == 0
    assert_every_fen_kept(ledger, r, q.total)


def test_payoff_with_an_overdue_installment_pays_the_penalty_first() -> None:
    # three_month_loan on Mar 10, #1 10 days overdue: penalty 16.50 (see test_prepayment)
    on = date(2024, 3, 10)
    kw: dict[str, object] = {"as_of": on, "annual_rate": RATE, "start_date": START}
    ledger = three_month_loan()
    r = apply_payoff(
        installments=ledger,
        amount=D("10205.83"),
        prepayment_fee_rate=D("0.01"),
        **kw,  # type: ignore[arg-type]
    )
    assert r.lines[0] == AllocationLine(installment=1, component=PEN, amount=D("16.50"))
    first = r.installments[0]
    assert (first.penalty_accrued, first.penalty_paid) == (D("16.50"), D("16.50"))
    assert all(b.is_paid for b in r.installments)
    # #2 books the accrued interest 22.33 and the prepayment fee 67.00; #3 is waived
    assert (r.installments[1].interest_due, r.installments[1].fee_due) == (D("22.33"), D("67.00"))
    assert (r.installments[2].interest_due, r.installments[2].fee_due) == (0, 0)
    assert total(r.lines) == D("10205.83") and r.credit == 0
    assert_every_fen_kept(ledger, r, D("10205.83"))


def test_payoff_short_by_a_fen_is_refused_and_an_overpayment_becomes_credit() -> None:
    kw: dict[str, object] = {
        "installments": three_month_loan(),
        "as_of": date(2024, 3, 10),
        "annual_rate": RATE,
        "start_date": START,
        "prepayment_fee_rate": D("0.01"),
    }
    with pytest.raises(
        ValueError,
        match=r"^amount: 10205.82 is less than the payoff total 10205.83 as of 2024-03-10$",
    ):
        apply_payoff(amount=D("10205.82"), **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^amount: 10000.00 plus credit 205.82 is less than"):
        apply_payoff(amount=D("10000"), credit=D("205.82"), **kw)  # type: ignore[arg-type]
    over = apply_payoff(amount=D("10210.83"), **kw)  # type: ignore[arg-type]
    assert over.credit == D("5.00")
    assert total(over.lines) == D("10205.83")
    assert all(b.is_paid for b in over.installments)
    with_credit = apply_payoff(amount=D("10000"), credit=D("300"), **kw)  # type: ignore[arg-type]
    assert with_credit.credit == D("94.17")
    with pytest.raises(ValueError, match=r"^amount: must be greater than 0"):
        apply_payoff(amount=D("0"), **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^amount: 1.001 has more than 2 decimal places"):
        apply_payoff(amount=D("1.001"), **kw)  # type: ignore[arg-type]


def test_payoff_releases_interest_prepaid_on_a_future_installment() -> None:
    ledger = allocate_payment(
        installments=three_month_loan(), amount=D("5000"), as_of=date(2024, 2, 29), annual_rate=RATE
    ).installments  # #1 paid; #2: interest 67.00 and 1532.78 of principal paid early
    kw: dict[str, object] = {
        "installments": ledger,
        "as_of": date(2024, 3, 15),
        "annual_rate": RATE,
        "start_date": START,
    }
    q = payoff_quote(**kw)  # type: ignore[arg-type]
    assert (q.prepaid_credit, q.accrued_interest, q.total) == (D("67.00"), D("25.84"), D("5125.84"))
    r = apply_payoff(amount=q.total, **kw)  # type: ignore[arg-type]
    # the 67.00 prepaid is taken back from #2's interest and pays part of the payoff, so the
    # quote's total (already net of it) settles the loan with nothing left over
    assert r.released == (AllocationLine(installment=2, component=INT, amount=D("67.00")),)
    assert total(r.released) == q.prepaid_credit
    assert total(r.lines) == q.total + q.prepaid_credit == D("5192.84")
    assert r.credit == 0
    second, third = r.installments[1:]
    assert (second.interest_due, second.interest_paid) == (D("25.84"), D("25.84"))
    assert (third.interest_due, third.interest_paid) == (0, 0)
    assert all(b.is_paid for b in r.installments)
    assert_every_fen_kept(ledger, r, q.total)
    # paying the prepaid interest on top leaves exactly that much as credit, for refund
    more = apply_payoff(amount=q.total + q.prepaid_credit, **kw)  # type: ignore[arg-type]
    assert more.credit == q.prepaid_credit


# --- partial prepayment ----------------------------------------------------------------------


def partial(
    ledger: Sequence[InstallmentBalance], amount: str, on: date, **kw: object
) -> PrepaymentResult:
    args: dict[str, object] = {
        "installments": ledger,
        "amount": D(amount),
        "as_of": on,
        "annual_rate": RATE,
        "start_date": LOAN_START,
        "method": EI,
        "mode": "keep_term",
    }
    args.update(kw)
    return apply_partial_prepayment(**args)  # type: ignore[arg-type]


def textbook_payment(principal: Decimal, monthly_rate: Decimal, n: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        growth = (1 + monthly_rate) ** n
        return cents(principal * monthly_rate * growth / (growth - 1))


def test_keep_term_on_the_third_due_date_against_the_textbook_formula() -> None:
    schedule = loan_12k()
    ledger = paid_on_time(schedule, 2)
    third = schedule.installments[2]
    r = partial(ledger, str(third.payment + 3000), third.due_date)
    remaining = third.remaining_principal - 3000  # 9132.95 − 3000 = 6132.95
    assert remaining == D("6132.95")
    level = textbook_payment(remaining, D("0.01"), 9)
    assert level == D(repr(round(float(-npf.pmt(0.01, 9, 6132.95)), 2))) == D("715.96")
    assert r.quote is None and r.mode == "keep_term" and r.credit == 0

    new = r.installments[3:]
    assert [b.number for b in new] == list(range(4, 13))  # still 12 installments
    assert [b.due_date for b in new] == [i.due_date for i in schedule.installments[3:]]
    assert all(b.principal_due + b.interest_due == level for b in new[:-1])
    assert abs(new[-1].principal_due + new[-1].interest_due - level) <= D("0.05")
    assert level < schedule.installments[3].payment  # the payment drops
    # due on a due date: no interest accrues; #4 owes a full month on the reduced principal
    assert new[0].interest_due == cents(remaining * D("0.01"))
    assert all(b.interest_paid == 0 and b.principal_paid == 0 for b in new)
    assert sum(b.principal_outstanding for b in new) == remaining
    # the 3,000 is booked on #3 with its own installment
    assert [(x.installment, x.component, x.amount) for x in r.lines] == [
        (3, INT, third.interest),
        (3, PRI, third.principal + 3000),
    ]
    assert r.installments[2].principal_due == third.principal + 3000
    assert all(b.is_paid for b in r.installments[:3])
    assert sum(b.principal_due for b in r.installments) == D("12000")
    assert_every_fen_kept(ledger, r, third.payment + 3000)


def test_mid_period_prepayment_charges_each_day_once() -> None:
    schedule = loan_12k()
    ledger = paid_on_time(schedule, 3)
    on = schedule.installments[2].due_date + timedelta(days=10)
    before = schedule.installments[2].remaining_principal  # 9132.95
    accrued = cents(before * D("0.12") * 10 / 360)  # 30.44
    # largest x with x + 1 % fee ≤ 3000 − accrued (independent search)
    x = cents((D("3000") - accrued) / D("1.01"))
    while x + cents(x * D("0.01")) > D("3000") - accrued:
        x -= D("0.01")
    fee = cents(x * D("0.01"))
    r = partial(ledger, "3000", on, prepayment_fee_rate=D("0.01"))
    after = before - x
    first_new = r.installments[3]
    # the first new installment owes a full period on the reduced principal; the part for the
    # 10 days already gone was paid with the prepayment
    assert first_new.interest_due == cents(after * D("0.01"))
    assert first_new.interest_paid == cents(after * D("0.12") * 10 / 360)
    # the prepaid x bore interest for the 10 days, booked with the prepayment on #3
    prepaid_interest = accrued - first_new.interest_paid
    assert r.installments[2].interest_due == schedule.installments[2].interest + prepaid_interest
    assert abs(prepaid_interest - x * D("0.12") * 10 / 360) <= D("0.01")
    assert r.installments[2].principal_due == schedule.installments[2].principal + x
    assert r.installments[2].fee_due == fee
    # interest charged for Apr 15 → May 15 = x for 10 days + the remaining principal for a month
    period = prepaid_interest + first_new.interest_due
    assert abs(period - (x * D("0.12") * 10 / 360 + after * D("0.01"))) <= D("0.01")
    assert total(r.lines) + r.credit == D("3000")
    assert r.credit <= D("0.01")
    assert sum(b.principal_due for b in r.installments) == D("12000")
    assert_every_fen_kept(ledger, r, D("3000"))
    # paying off the same day costs exactly the principal left: no day is charged twice
    q = payoff_quote(installments=r.installments, as_of=on, annual_rate=RATE, start_date=LOAN_START)
    assert q.total == after
    # five days later: the remaining principal plus five more days of interest
    later = payoff_quote(
        installments=r.installments,
        as_of=on + timedelta(days=5),
        annual_rate=RATE,
        start_date=LOAN_START,
    )
    assert later.total == after + cents(after * D("0.12") * 15 / 360) - first_new.interest_paid
    assert abs(later.total - after - after * D("0.12") * 5 / 360) <= D("0.01")


def test_keep_installment_shortens_the_term() -> None:
    schedule = loan_12k()
    ledger = paid_on_time(schedule, 3)
    on = schedule.installments[2].due_date + timedelta(days=10)
    old = schedule.installments[3].payment  # 1066.19
    r = partial(ledger, "3000", on, mode="keep_installment")
    new = r.installments[3:]
    assert r.mode == "keep_installment"
    assert len(new) < 9
    assert [b.number for b in new] == list(range(4, 4 + len(new)))
    payments = [b.principal_due + b.interest_due for b in new]
    assert all(p == old for p in payments[:-1])
    assert payments[-1] <= old
    assert sum(b.principal_due for b in r.installments) == D("12000")
    assert_every_fen_kept(ledger, r, D("3000"))
    keep_term = partial(ledger, "3000", on)
    assert len(keep_term.installments) == 12
    assert sum(b.interest_due for b in r.installments) < sum(
        b.interest_due for b in keep_term.installments
    )


def test_partial_prepayment_pays_overdue_penalty_first() -> None:
    schedule = loan_12k()
    ledger = paid_on_time(schedule, 1)  # #2 due Mar 15 unpaid
    on = date(2024, 3, 25)
    r = partial(ledger, "3000", on)
    # penalty: principal of #2 × 0.18 / 360 × 10 days
    penalty = cents(schedule.installments[1].principal * D("0.18") * 10 / 360)
    assert r.lines[0] == AllocationLine(installment=2, component=PEN, amount=penalty)
    assert all(b.is_paid for b in r.installments[:2])
    assert sum(b.principal_due for b in r.installments) == D("12000")
    assert_every_fen_kept(ledger, r, D("3000"))


def test_partial_prepayment_before_the_first_due_date_books_on_the_first_new_installment() -> None:
    ledger = balances_from_schedule(loan_12k())
    on = LOAN_START + timedelta(days=12)
    r = partial(ledger, "2000", on, prepayment_fee_rate=D("0.02"))
    first = r.installments[0]
    accrued = cents(D("12000") * D("0.12") * 12 / 360)
    assert [b.number for b in r.installments] == list(range(1, 13))
    assert first.interest_paid == accrued
    assert first.fee_paid > 0 and first.fee_due == first.fee_paid
    remaining = sum(b.principal_outstanding for b in r.installments)
    assert first.principal_paid == D("12000") - remaining
    assert sum(b.principal_due for b in r.installments) == D("12000")
    assert_every_fen_kept(ledger, r, D("2000"))


def test_partial_prepayment_refusals() -> None:
    schedule = loan_12k()
    ledger = paid_on_time(schedule, 3)
    on = schedule.installments[2].due_date + timedelta(days=10)
    with pytest.raises(
        ValueError,
        match=r"^amount: 30.44 only covers the 30.44 needed on 2024-04-25; nothing is left",
    ):
        partial(ledger, "30.44", on)
    with pytest.raises(ValueError, match=r"^amount: 30.43 does not cover the 30.44 needed"):
        partial(ledger, "30.43", on)
    with pytest.raises(ValueError, match=r"^amount: covers the whole loan; use a payoff$"):
        partial(ledger, "9163.39", on)  # = the payoff total
    overdue = paid_on_time(schedule, 2)
    with pytest.raises(ValueError, match=r"^amount: 500.00 does not cover the 1066.19 needed"):
        partial(overdue, "500", schedule.installments[2].due_date)
    with pytest.raises(ValueError, match=r"^mode: keep_installment applies"):
        partial(ledger, "3000", on, method=RepaymentMethod.INTEREST_ONLY, mode="keep_installment")
    with pytest.raises(ValueError, match=r"^mode: must be keep_term or keep_installment"):
        partial(ledger, "3000", on, mode="shorter")
    with pytest.raises(ValueError, match=r"^as_of: no installment falls due after"):
        partial(ledger, "3000", date(2025, 2, 1))
    with pytest.raises(ValueError, match=r"^as_of: 2024-01-14 is before the loan start"):
        partial(ledger, "3000", date(2024, 1, 14))


def test_results_round_trip_through_the_temporal_pydantic_converter() -> None:
    schedule = loan_12k()
    ledger = paid_on_time(schedule, 3)
    on = schedule.installments[2].due_date + timedelta(days=10)
    for value in (
        partial(ledger, "3000", on, mode="keep_installment"),
        apply_payoff(
            installments=ledger, amount=D("9999"), as_of=on, annual_rate=RATE, start_date=LOAN_START
        ),
    ):
        converter = pydantic_data_converter.payload_converter
        payload = converter.to_payloads([value])
        assert converter.from_payloads(payload, [PrepaymentResult]) == [value]


# --- properties --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loan:
    schedule: Schedule
    ledger: tuple[InstallmentBalance, ...]
    as_of: date
    rate: Decimal
    start: date
    method: RepaymentMethod
    monthly_fee: Decimal


@st.composite
def loans(draw: st.DrawFn) -> Loan:
    """A loan, its ledger after some installments were paid on time and maybe some money paid
    early on as_of, as_of (before, inside or after the term), the rate, start and method."""
    rate = D(draw(st.integers(min_value=0, max_value=240_000))) / 1_000_000
    method = draw(st.sampled_from(list(RepaymentMethod)))
    start = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
    monthly_fee = draw(st.sampled_from([D(0), D("2.50")]))
    schedule = build_schedule(
        principal=D(draw(st.integers(min_value=100_00, max_value=1_000_000_00))) / 100,
        annual_rate=rate,
        term_months=draw(st.integers(min_value=1, max_value=36)),
        method=method,
        start_date=start,
        monthly_fee=monthly_fee,
    )
    last = schedule.installments[-1].due_date
    on = start + timedelta(days=draw(st.integers(min_value=0, max_value=(last - start).days + 60)))
    due_by_then = sum(1 for i in schedule.installments if i.due_date <= on)
    ledger = balances_from_schedule(schedule)
    for row in schedule.installments[: draw(st.integers(min_value=0, max_value=due_by_then))]:
        if row.payment == 0:  # interest-only at 0 %: nothing to pay
            continue
        ledger = allocate_payment(
            installments=ledger, amount=row.payment, as_of=row.due_date, annual_rate=rate
        ).installments
    early = draw(st.just(D(0)) | st.integers(1, 3_000_00).map(lambda n: D(n) / 100))
    if early > 0:  # paid on as_of with overpayment="next_installment": future interest prepaid
        ledger = allocate_payment(
            installments=ledger, amount=early, as_of=on, annual_rate=rate
        ).installments
    return Loan(schedule, ledger, on, rate, start, method, monthly_fee)


@settings(max_examples=200, deadline=None)
@given(
    loan=loans(),
    extra=st.integers(min_value=0, max_value=100_00).map(lambda n: D(n) / 100),
    credit=st.sampled_from([D(0), D("0.01"), D("50")]),
    fee_rate=st.sampled_from([D(0), D("0.01"), D("0.03")]),
)
def test_payoff_closes_the_ledger_and_keeps_every_fen(
    loan: Loan, extra: Decimal, credit: Decimal, fee_rate: Decimal
) -> None:
    ledger, on, rate, start = loan.ledger, loan.as_of, loan.rate, loan.start
    kw: dict[str, object] = {
        "installments": ledger,
        "as_of": on,
        "annual_rate": rate,
        "start_date": start,
        "prepayment_fee_rate": fee_rate,
    }
    q = payoff_quote(**kw)  # type: ignore[arg-type]
    amount = max(q.total - credit + extra, D("0.01"))
    r = apply_payoff(amount=amount, credit=credit, **kw)  # type: ignore[arg-type]
    event("interest or fees prepaid" if q.prepaid_credit else "nothing prepaid")
    event("overdue" if q.penalty else "none overdue")
    assert all(b.is_paid for b in r.installments)
    assert total(r.lines) == q.total + q.prepaid_credit
    assert total(r.released) == q.prepaid_credit
    assert r.credit == amount + credit - q.total
    assert sum(b.principal_due for b in r.installments) == sum(b.principal_due for b in ledger)
    assert_every_fen_kept(ledger, r, amount + credit)
    if q.total - credit > D("0.01"):
        with pytest.raises(ValueError, match=r"^amount: "):
            short = q.total - credit - D("0.01")
            apply_payoff(amount=short, credit=credit, **kw)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    loan=loans(),
    share=st.integers(min_value=1, max_value=99),
    fee_rate=st.sampled_from([D(0), D("0.01"), D("0.03")]),
    keep_installment=st.booleans(),
)
def test_partial_prepayment_keeps_every_fen_and_the_principal(
    loan: Loan, share: int, fee_rate: Decimal, keep_installment: bool
) -> None:
    ledger, on, rate, start, method = loan.ledger, loan.as_of, loan.rate, loan.start, loan.method
    if not any(b.due_date > on for b in ledger):
        return  # nothing left to prepay (refusal tested above)
    mode: ReamortizeMode = (
        "keep_installment"
        if keep_installment
        and method in (RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL)
        else "keep_term"
    )
    q = payoff_quote(installments=ledger, as_of=on, annual_rate=rate, start_date=start)
    later_principal = sum((b.principal_outstanding for b in ledger if b.due_date > on), D(0))
    # what is due now plus the accrued interest (net of what was prepaid, released again),
    # then share % of the principal not yet due (with its prepayment fee out of it)
    amount = q.total - later_principal + cents(later_principal * share / 100)
    if amount <= 0:
        return  # the money prepaid already covers it: nothing new to pay
    r = apply_partial_prepayment(
        installments=ledger,
        amount=amount,
        as_of=on,
        annual_rate=rate,
        start_date=start,
        method=method,
        mode=mode,
        prepayment_fee_rate=fee_rate,
        monthly_fee=loan.monthly_fee,
    )
    event(f"applied {mode} {method}")
    assert r.quote is None and r.mode == mode
    assert_every_fen_kept(ledger, r, amount)
    assert r.credit <= D("0.01")
    balances = r.installments
    assert sum(b.principal_due for b in balances) == loan.schedule.total_principal
    assert all(
        b.principal_outstanding >= 0
        and b.interest_outstanding >= 0
        and b.fee_outstanding >= 0
        and b.penalty_outstanding == 0
        for b in balances
    )
    remaining = sum((b.principal_outstanding for b in balances), D(0))
    assert 0 < remaining < later_principal
    assert all(b.is_paid for b in balances if b.due_date <= on)
    assert [b.number for b in balances] == list(range(1, len(balances) + 1))
    assert len(balances) <= len(ledger)
    if mode == "keep_term":
        assert len(balances) == len(ledger)
    # after a prepayment that was booked on an installment already due, settling the same day
    # costs exactly the principal left (plus its prepayment fee): nothing charged twice
    if any(b.due_date <= on for b in ledger):
        settle = payoff_quote(
            installments=balances,
            as_of=on,
            annual_rate=rate,
            start_date=start,
            prepayment_fee_rate=fee_rate,
        )
        assert settle.total == remaining + cents(remaining * fee_rate)
