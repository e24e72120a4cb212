import dataclasses
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.allocation import InstallmentBalance
from domain.penalty import PenaltyPolicy, accrue_penalty, penalty_annual_rate

D = Decimal
DUE = date(2024, 2, 29)
RATE = D("0.12")  # × 1.5 = 18 % a year = 0.05 % a day on a 360-day basis


def inst(principal: str = "3300.22") -> InstallmentBalance:
    return InstallmentBalance(
        number=1, due_date=DUE, principal_due=D(principal), interest_due=D("100"), fee_due=D("0")
    )


def accrue(balance: InstallmentBalance, as_of: date, **policy: object) -> InstallmentBalance:
    return accrue_penalty(
        balance=balance,
        as_of=as_of,
        annual_rate=RATE,
        policy=PenaltyPolicy(**policy),  # type: ignore[arg-type]
    )


def test_ten_days_late() -> None:
    # 3300.22 × 0.18 / 360 × 10 = 16.5011 → 16.50, for Mar 1 … Mar 10
    b = accrue(inst(), date(2024, 3, 10))
    assert b.penalty_accrued == D("16.50")
    assert b.penalty_accrued_through == date(2024, 3, 10)
    assert b.penalty_outstanding == D("16.50")


def test_one_day_late_and_on_time() -> None:
    assert accrue(inst(), DUE) == inst()
    assert accrue(inst(), DUE - timedelta(days=5)) == inst()
    # 3300.22 × 0.0005 = 1.65011 → 1.65
    assert accrue(inst(), date(2024, 3, 1)).penalty_accrued == D("1.65")


def test_incremental_accrual_after_a_partial_principal_payment() -> None:
    # 5 days on 3300.22 = 8.25055 → 8.25; 891.75 of principal paid on Mar 5;
    # 5 more days on 2408.47 = 6.021175 → 6.02
    first = accrue(inst(), date(2024, 3, 5))
    assert first.penalty_accrued == D("8.25")
    paid = dataclasses.replace(first, principal_paid=D("891.75"))
    second = accrue(paid, date(2024, 3, 10))
    assert second.penalty_accrued == D("14.27")
    assert second.penalty_accrued_through == date(2024, 3, 10)
    # accruing again for the same day, or an earlier one, changes nothing
    assert accrue(second, date(2024, 3, 10)) == second
    assert accrue(second, date(2024, 3, 7)) == second


def test_no_penalty_once_principal_is_paid() -> None:
    paid = dataclasses.replace(inst(), principal_paid=D("3300.22"))
    later = accrue(paid, date(2024, 6, 1))
    assert later.penalty_accrued == D("0")
    assert later.penalty_outstanding == 0


def test_grace_forgives_but_does_not_shift_the_start() -> None:
    assert accrue(inst(), DUE + timedelta(days=3), grace_days=3).penalty_accrued == 0
    # day 4: penalty for all 4 days since the due date: 3300.22 × 0.0005 × 4 = 6.60044 → 6.60
    assert accrue(inst(), DUE + timedelta(days=4), grace_days=3).penalty_accrued == D("6.60")


def test_penalty_rate_capped_at_the_ceiling() -> None:
    assert penalty_annual_rate(annual_rate=RATE, policy=PenaltyPolicy()) == D("0.18")
    assert penalty_annual_rate(
        annual_rate=RATE, policy=PenaltyPolicy(), max_annual_rate=D("0.124")
    ) == D("0.124")
    capped = accrue_penalty(
        balance=inst(),
        as_of=date(2024, 3, 10),
        annual_rate=RATE,
        policy=PenaltyPolicy(),
        max_annual_rate=D("0.124"),
    )
    # 3300.22 × 0.124 / 360 × 10 = 11.36742 → 11.37
    assert capped.penalty_accrued == D("11.37")


def test_day_basis_365_and_multiple() -> None:
    b = accrue(inst("10000"), date(2024, 3, 30), multiple=D("1.3"), day_basis=365)
    # 10000 × 0.156 / 365 × 30 = 128.2191… → 128.22
    assert b.penalty_accrued == D("128.22")


principals = st.integers(min_value=1, max_value=100_000_000).map(lambda n: D(n) / 100)
rates = st.integers(min_value=0, max_value=240_000).map(lambda n: D(n) / 1_000_000)


@settings(max_examples=200)
@given(
    principal=principals,
    rate=rates,
    early=st.integers(min_value=0, max_value=400),
    d1=st.integers(min_value=0, max_value=2000),
    d2=st.integers(min_value=0, max_value=2000),
    grace=st.integers(min_value=0, max_value=10),
)
def test_zero_on_time_and_monotone_in_lateness(
    principal: Decimal, rate: Decimal, early: int, d1: int, d2: int, grace: int
) -> None:
    policy = PenaltyPolicy(grace_days=grace)
    b = InstallmentBalance(
        number=1, due_date=DUE, principal_due=principal, interest_due=D("0"), fee_due=D("0")
    )

    def late(days: int) -> Decimal:
        return accrue_penalty(
            balance=b, as_of=DUE + timedelta(days=days), annual_rate=rate, policy=policy
        ).penalty_accrued

    assert late(-early) == 0
    assert late(min(d1, grace)) == 0
    low, high = sorted((d1, d2))
    assert 0 <= late(low) <= late(high)
    assert late(high) <= principal * rate * D("1.5") * high / 360 + D("0.005")


@settings(max_examples=100)
@given(
    principal=principals,
    rate=rates,
    steps=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=8),
    grace=st.integers(min_value=0, max_value=10),
)
def test_stepwise_accrual_equals_one_step(
    principal: Decimal, rate: Decimal, steps: list[int], grace: int
) -> None:
    policy = PenaltyPolicy(grace_days=grace)
    b = InstallmentBalance(
        number=1, due_date=DUE, principal_due=principal, interest_due=D("0"), fee_due=D("0")
    )
    day = DUE
    stepped = b
    for step in steps:
        day += timedelta(days=step)
        stepped = accrue_penalty(balance=stepped, as_of=day, annual_rate=rate, policy=policy)
    once = accrue_penalty(balance=b, as_of=day, annual_rate=rate, policy=policy)
    assert stepped == once
    days = (day - DUE).days
    exact = principal * rate * D("1.5") * days / 360  # independent of domain.money
    expected = exact.quantize(D("0.01"), rounding=ROUND_HALF_UP) if days > grace else D(0)
    assert stepped.penalty_accrued == expected
