"""Penalty interest (罚息) on overdue principal, accrued per calendar day, path-independently.

Rate = annual_rate × multiple (capped at the ceiling when given) / day_basis, on principal only.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from domain.balances import InstallmentBalance
from domain.money import to_fen


@dataclass(frozen=True)
class PenaltyPolicy:
    """Penalty rate multiple of the contract rate, grace days, and the day-count basis."""

    multiple: Decimal = Decimal("1.5")
    grace_days: int = 0
    day_basis: int = 360


def penalty_annual_rate(
    *, annual_rate: Decimal, policy: PenaltyPolicy, max_annual_rate: Decimal | None = None
) -> Decimal:
    """annual_rate × multiple, capped at max_annual_rate (the binding interest ceiling) if given.

    Capping the penalty rate itself at the ceiling keeps the cost of every overdue yuan within
    the ceiling, whatever the length of the delay; the DESIGN counts penalty toward the cost.
    """
    rate = annual_rate * policy.multiple
    if max_annual_rate is not None:
        rate = min(rate, max_annual_rate)
    return max(rate, Decimal(0))


def accrue_penalty(
    *,
    balance: InstallmentBalance,
    as_of: date,
    annual_rate: Decimal,
    policy: PenaltyPolicy,
    max_annual_rate: Decimal | None = None,
) -> InstallmentBalance:
    """Accrue penalty on the installment's outstanding principal for the days since the last
    accrual (or since its due date) up to and including as_of.

    - Day one is the day after the due date; a payment on day d has been charged d days.
    - Grace: nothing accrues while as_of ≤ due_date + grace_days; once the grace is exceeded the
      penalty counts from the day after the due date (bank practice: grace forgives, it does not
      shift the start). Principal paid within the grace therefore bears no penalty.
    - Rounding (one rule, path-independent): on a principal P, the penalty for days 1 … n after
      the due date is to_fen(P × rate × n / day_basis), rounded half-up once; an accrual from day
      a to day b adds to_fen(P·rate·b/basis) − to_fen(P·rate·a/basis). These steps telescope, so
      while P is unchanged any split of the days (a refresh every day, on business days only, or
      one jump, as a payoff quote does) accrues exactly the same fen, and the total on P stays
      within half a fen of the exact figure. The principal is the one outstanding now, so
      callers accrue before every payment (the allocation and the prepayments do); a payment
      that changes P starts a new run on the new principal from that day.
    - as_of on or before the last accrual date changes nothing (accrual never goes backwards).
    """
    if as_of <= balance.due_date + timedelta(days=policy.grace_days):
        return balance
    start = max(balance.penalty_accrued_through or balance.due_date, balance.due_date)
    days_before = (start - balance.due_date).days
    days_through = (as_of - balance.due_date).days
    if days_through <= days_before:
        return balance
    rate = penalty_annual_rate(
        annual_rate=annual_rate, policy=policy, max_annual_rate=max_annual_rate
    )

    def through(day: int) -> Decimal:  # penalty on this principal for days 1 … day, one rounding
        return to_fen(balance.principal_outstanding * rate * day / policy.day_basis)

    amount = through(days_through) - through(days_before)
    return dataclasses.replace(
        balance,
        penalty_accrued=balance.penalty_accrued + amount,
        penalty_accrued_through=as_of,
    )


def accrue_penalties(
    *,
    installments: Sequence[InstallmentBalance],
    as_of: date,
    annual_rate: Decimal,
    policy: PenaltyPolicy,
    max_annual_rate: Decimal | None = None,
) -> tuple[InstallmentBalance, ...]:
    """accrue_penalty on every installment; the result is in due order (due date, number),
    the order in which money is applied to installments."""
    return tuple(
        accrue_penalty(
            balance=b,
            as_of=as_of,
            annual_rate=annual_rate,
            policy=policy,
            max_annual_rate=max_annual_rate,
        )
        for b in sorted(installments, key=lambda b: (b.due_date, b.number))
    )
