"""A payoff quote for day D, made on any earlier day, is what the ledger takes on D.

The ledger accrues penalty at every servicing event (daily once an installment is overdue, on
business days, or in one jump after a pause) and a payoff on D settles the installments as they
stand then; the quote accrues from an earlier state in one step. Penalty accrual must therefore
not depend on the path. Figures below are computed by hand, not with domain.money.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.allocation import (
    InstallmentBalance,
    allocate_payment,
    balances_from_schedule,
    outstanding,
)
from domain.penalty import PenaltyPolicy, accrue_penalties, accrue_penalty
from domain.prepayment import apply_payoff, payoff_quote
from domain.schedule import RepaymentMethod, build_schedule

D = Decimal
DUE = date(2024, 2, 29)


def _accrue_each_day(
    balance: InstallmentBalance, first: date, last: date, rate: Decimal
) -> InstallmentBalance:
    day = first
    while day <= last:
        balance = accrue_penalty(
            balance=balance, as_of=day, annual_rate=rate, policy=PenaltyPolicy()
        )
        day += timedelta(days=1)
    return balance


def test_daily_accrual_equals_one_step() -> None:
    # ¥3,333.33 overdue at 12 % × 1.5 = 0.05 % a day: 1.666665 a day. Ten days in one step:
    # 16.66665 → 16.67. Rounding every day to the fen would charge 10 × 1.67 = 16.70.
    b = InstallmentBalance(
        number=1, due_date=DUE, principal_due=D("3333.33"), interest_due=D("0"), fee_due=D("0")
    )
    end = DUE + timedelta(days=10)
    once = accrue_penalty(balance=b, as_of=end, annual_rate=D("0.12"), policy=PenaltyPolicy())
    daily = _accrue_each_day(b, DUE + timedelta(days=1), end, D("0.12"))
    assert once.penalty_accrued == D("16.67")
    assert daily.penalty_accrued == D("16.67")
    assert daily == once
    # penalty through day n is n × 1.666665 rounded once: days 1..3 are 1.67, 3.33, 5.00
    steps = [
        accrue_penalty(
            balance=b, as_of=DUE + timedelta(days=n), annual_rate=D("0.12"), policy=PenaltyPolicy()
        ).penalty_accrued
        for n in (1, 2, 3)
    ]
    assert steps == [D("1.67"), D("3.33"), D("5.00")]


def test_quote_made_earlier_equals_what_the_ledger_takes_after_daily_refreshes() -> None:
    # ¥3,333.33 at 12 %, bullet, 1 month from Jan 29 2024: due Feb 29, interest 33.33. Unpaid:
    # a quote made on Mar 1 for Mar 11; the ledger refreshes penalty every day in between.
    schedule = build_schedule(
        principal=D("3333.33"),
        annual_rate=D("0.12"),
        term_months=1,
        method=RepaymentMethod.BULLET,
        start_date=date(2024, 1, 29),
    )
    ledger = accrue_penalties(
        installments=balances_from_schedule(schedule),
        as_of=date(2024, 3, 1),
        annual_rate=D("0.12"),
        policy=PenaltyPolicy(),
    )
    on = date(2024, 3, 11)
    kw: dict[str, object] = {"as_of": on, "annual_rate": D("0.12"), "start_date": date(2024, 1, 29)}
    quote = payoff_quote(installments=ledger, **kw)  # type: ignore[arg-type]
    day = date(2024, 3, 2)
    while day <= on:
        ledger = accrue_penalties(
            installments=ledger, as_of=day, annual_rate=D("0.12"), policy=PenaltyPolicy()
        )
        day += timedelta(days=1)
    result = apply_payoff(installments=ledger, amount=D("5000"), **kw)  # type: ignore[arg-type]
    # 11 days (Mar 1 … 11) at 1.666665 a day = 18.333315 → 18.33 (rounding each day: 18.37)
    assert quote.penalty == D("18.33")
    assert quote.total == D("3333.33") + D("33.33") + D("18.33")
    assert D("5000") - result.credit == quote.total


# --- property ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overdue:
    """A loan's ledger on d0 with an installment overdue, and how the servicing goes on."""

    ledger: tuple[InstallmentBalance, ...]
    d0: date
    payoff_on: date
    rate: Decimal
    start: date
    policy: PenaltyPolicy
    cap: Decimal | None
    refresh_days: tuple[date, ...]  # the days after d0 the ledger accrues, before payoff_on
    path: str


@st.composite
def overdue_loans(draw: st.DrawFn) -> Overdue:
    rate = D(draw(st.integers(min_value=0, max_value=240_000))) / 1_000_000
    start = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
    schedule = build_schedule(
        principal=D(draw(st.integers(min_value=100_00, max_value=1_000_000_00))) / 100,
        annual_rate=rate,
        term_months=draw(st.integers(min_value=1, max_value=24)),
        method=draw(st.sampled_from(list(RepaymentMethod))),
        start_date=start,
        monthly_fee=draw(st.sampled_from([D(0), D("2.50")])),
    )
    policy = PenaltyPolicy(
        multiple=draw(st.sampled_from([D("1.5"), D("1.3"), D("2")])),
        grace_days=draw(st.integers(min_value=0, max_value=10)),
        day_basis=draw(st.sampled_from([360, 365])),
    )
    cap = draw(st.sampled_from([None, D("0.24"), D("0.124")]))
    rows = schedule.installments
    on_time = draw(st.integers(min_value=0, max_value=len(rows) - 1))
    ledger = balances_from_schedule(schedule)
    for row in rows[:on_time]:
        if row.payment > 0:
            ledger = allocate_payment(
                installments=ledger, amount=row.payment, as_of=row.due_date, annual_rate=rate
            ).installments
    late_due = rows[on_time].due_date  # the first installment not paid: overdue from here
    common = {"annual_rate": rate, "penalty_policy": policy, "max_annual_rate": cap}
    # the ledger on d0: refreshed daily since the due date, perhaps with a part payment late
    d0 = late_due + timedelta(days=draw(st.integers(min_value=1, max_value=90)))
    part_on = late_due + timedelta(
        days=draw(st.integers(min_value=1, max_value=(d0 - late_due).days))
    )
    part = D(draw(st.integers(min_value=0, max_value=int(rows[on_time].payment * 100)))) / 100
    day = late_due + timedelta(days=1)
    while day <= d0:
        ledger = accrue_penalties(
            installments=ledger, as_of=day, annual_rate=rate, policy=policy, max_annual_rate=cap
        )
        if day == part_on and part > 0:
            ledger = allocate_payment(
                installments=ledger,
                amount=part,
                as_of=day,
                **common,  # type: ignore[arg-type]
            ).installments
        day += timedelta(days=1)
    payoff_on = d0 + timedelta(days=draw(st.integers(min_value=1, max_value=120)))
    between = [d0 + timedelta(days=k) for k in range(1, (payoff_on - d0).days)]
    path = draw(st.sampled_from(["daily", "business days", "jump", "random days"]))
    if path == "daily":
        refresh = between
    elif path == "business days":
        refresh = [d for d in between if d.weekday() < 5]
    elif path == "jump":
        refresh = []
    else:
        refresh = [d for d in between if draw(st.booleans())]
    return Overdue(tuple(ledger), d0, payoff_on, rate, start, policy, cap, tuple(refresh), path)


@settings(max_examples=300, deadline=None)
@given(loan=overdue_loans(), fee_rate=st.sampled_from([D(0), D("0.02")]))
def test_a_quote_for_day_d_is_what_the_ledger_takes_on_d(loan: Overdue, fee_rate: Decimal) -> None:
    common: dict[str, object] = {
        "annual_rate": loan.rate,
        "penalty_policy": loan.policy,
        "max_annual_rate": loan.cap,
    }
    quote_kw: dict[str, object] = {
        **common,
        "as_of": loan.payoff_on,
        "start_date": loan.start,
        "prepayment_fee_rate": fee_rate,
    }
    quote = payoff_quote(installments=loan.ledger, **quote_kw)  # type: ignore[arg-type]
    view_then = outstanding(installments=loan.ledger, as_of=loan.payoff_on, **common)  # type: ignore[arg-type]

    ledger = loan.ledger  # the servicing workflow, refreshing penalty on its own days
    for day in (*loan.refresh_days, loan.payoff_on):
        ledger = accrue_penalties(
            installments=ledger,
            as_of=day,
            annual_rate=loan.rate,
            policy=loan.policy,
            max_annual_rate=loan.cap,
        )
    view_now = outstanding(installments=ledger, as_of=loan.payoff_on, **common)  # type: ignore[arg-type]
    amount = quote.total + D("100")
    result = apply_payoff(installments=ledger, amount=amount, **quote_kw)  # type: ignore[arg-type]
    event(loan.path)
    event("penalty" if quote.penalty else "no penalty yet (grace or 0 %)")

    assert amount - result.credit == quote.total
    assert result.quote == quote
    assert all(b.is_paid for b in result.installments)
    # the loan view, from the ledger as stored on d0 or as refreshed since, says the same
    assert view_then == view_now
    assert view_now.penalty == quote.penalty
    if all(b.due_date <= loan.payoff_on for b in ledger):  # matured: due now is the payoff
        assert view_now.due_now == view_now.total_outstanding == quote.total
