"""Allocation of a repayment to the installments' penalty, fee, interest and principal.

Also the outstanding position of a loan on a date, for the loan view and collections.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from domain.balances import Component, InstallmentBalance
from domain.money import ZERO
from domain.penalty import PenaltyPolicy, accrue_penalties
from domain.schedule import Schedule, require_fen

__all__ = [
    "DEFAULT_ORDER",
    "AllocationLine",
    "AllocationResult",
    "Bucket",
    "Component",
    "InstallmentBalance",
    "OrderStep",
    "Outstanding",
    "Overpayment",
    "allocate_payment",
    "apply_credit",
    "balances_from_schedule",
    "outstanding",
]

Bucket = Literal["overdue", "current"]
OrderStep = tuple[Bucket, Component]
Overpayment = Literal["credit", "next_installment", "principal"]

DEFAULT_ORDER: tuple[OrderStep, ...] = (
    ("overdue", Component.PENALTY),
    ("overdue", Component.FEE),
    ("overdue", Component.INTEREST),
    ("overdue", Component.PRINCIPAL),
    ("current", Component.FEE),
    ("current", Component.INTEREST),
    ("current", Component.PRINCIPAL),
)
"""Overdue before current; within overdue, component-major: every overdue installment's
penalty (oldest first), then every overdue fee, interest, principal; then the current
installment's fee, interest, principal. The overdue fee sits where the current fee sits
(before interest), as in Civil Code art. 561: costs, then interest, then principal."""

_EARLY_ORDER = (Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL)
_BUCKETS = ("overdue", "current")
_OVERPAYMENTS = ("credit", "next_installment", "principal")


class PaymentMode(StrEnum):
    """What a payment does to the ledger."""

    # Pay what is due, then the next installments in order (or hold the rest as credit).
    INSTALLMENTS = "installments"
    # Settle the whole loan (interest only to date).
    PAYOFF = "payoff"
    # A partial prepayment that re-amortizes the rest, keeping the term or the installment.
    KEEP_TERM = "keep_term"
    KEEP_INSTALLMENT = "keep_installment"
    # Recorded by the workflow itself when credit held pays an installment on its due date.
    CREDIT = "credit"


# The modes a person may post (credit is the workflow's own).
POSTED_MODES = (
    PaymentMode.INSTALLMENTS,
    PaymentMode.PAYOFF,
    PaymentMode.KEEP_TERM,
    PaymentMode.KEEP_INSTALLMENT,
)


@dataclass(frozen=True)
class AllocationLine:
    """Amount applied to one component of one installment."""

    installment: int
    component: Component
    amount: Decimal


@dataclass(frozen=True)
class AllocationResult:
    """Lines applied, the installments after the payment (penalty accrued to as_of), the total
    applied, the credit carried forward, and how much principal was paid before it was due
    (on installments after the current one)."""

    lines: tuple[AllocationLine, ...]
    installments: tuple[InstallmentBalance, ...]
    applied: Decimal
    credit: Decimal
    principal_prepaid: Decimal


@dataclass(frozen=True)
class Outstanding:
    """A loan's position on a date; penalty accrued to that date.

    overdue_* cover installments due before as_of; current_due is what remains of the current
    installment (earliest unpaid one due on or after as_of, = next_due); due_now is everything
    payable today (overdue + penalty + current_due); total_outstanding is everything still
    scheduled, future interest and fees included (for an early payoff see payoff_quote).
    days_past_due counts from the due date of the oldest installment with anything unpaid.
    """

    overdue_principal: Decimal
    overdue_interest: Decimal
    overdue_fee: Decimal
    penalty: Decimal
    current_due: Decimal
    total_outstanding: Decimal
    next_due: InstallmentBalance | None
    days_past_due: int
    due_now: Decimal


def balances_from_schedule(schedule: Schedule) -> tuple[InstallmentBalance, ...]:
    """Fresh (unpaid) balances for every installment of a schedule."""
    return tuple(
        InstallmentBalance(
            number=i.number,
            due_date=i.due_date,
            principal_due=i.principal,
            interest_due=i.interest,
            fee_due=i.fee,
            fixed_fee=i.upfront_fee,
        )
        for i in schedule.installments
    )


PAID_FIELD = {
    Component.PENALTY: "penalty_paid",
    Component.INTEREST: "interest_paid",
    Component.PRINCIPAL: "principal_paid",
    Component.FEE: "fee_paid",
}


class Ledger:
    """Working state of one application of money: balances (in the order given), funds left,
    and what was applied to each (installment, component). Shared by allocation and
    prepayment, so money is applied one way everywhere."""

    def __init__(self, balances: Sequence[InstallmentBalance], funds: Decimal) -> None:
        self.balances = list(balances)
        self.funds = funds
        self.applied: dict[tuple[int, Component], Decimal] = {}

    def pay(self, index: int, component: Component, limit: Decimal | None = None) -> None:
        """Apply what is outstanding on one component (at most ``limit``) from the funds."""
        balance = self.balances[index]
        amount = min(self.funds, balance.outstanding_of(component))
        if limit is not None:
            amount = min(amount, limit)
        if amount <= 0:
            return
        field = PAID_FIELD[component]
        self.balances[index] = dataclasses.replace(
            balance, **{field: getattr(balance, field) + amount}
        )
        self.funds -= amount
        key = (balance.number, component)
        self.applied[key] = self.applied.get(key, ZERO) + amount

    def lines(self) -> tuple[AllocationLine, ...]:
        return tuple(
            AllocationLine(installment=number, component=component, amount=amount)
            for (number, component), amount in self.applied.items()
        )


def _split(balances: Sequence[InstallmentBalance], as_of: date) -> tuple[list[int], list[int]]:
    overdue = [i for i, b in enumerate(balances) if b.due_date < as_of and not b.is_paid]
    current = next(
        (i for i, b in enumerate(balances) if b.due_date >= as_of and not b.is_paid), None
    )
    return overdue, ([] if current is None else [current])


def _validate_order(order: Sequence[OrderStep]) -> None:
    for step in order:
        if (
            not isinstance(step, tuple)
            or len(step) != 2
            or step[0] not in _BUCKETS
            or not isinstance(step[1], Component)
        ):
            raise ValueError(f"order: {step!r} is not a (bucket, Component) pair")


def _allocate(
    *,
    installments: Sequence[InstallmentBalance],
    funds: Decimal,
    as_of: date,
    annual_rate: Decimal,
    order: Sequence[OrderStep],
    overpayment: Overpayment,
    penalty_policy: PenaltyPolicy,
    max_annual_rate: Decimal | None,
) -> AllocationResult:
    _validate_order(order)
    if overpayment not in _OVERPAYMENTS:
        raise ValueError(f"overpayment: must be one of {', '.join(_OVERPAYMENTS)}")
    accrued = accrue_penalties(
        installments=installments,
        as_of=as_of,
        annual_rate=annual_rate,
        policy=penalty_policy,
        max_annual_rate=max_annual_rate,
    )
    ledger = Ledger(accrued, funds)
    overdue, current = _split(ledger.balances, as_of)
    buckets = {"overdue": overdue, "current": current}
    for bucket, component in order:
        for index in buckets[bucket]:
            ledger.pay(index, component)
    everything = range(len(ledger.balances))
    if overpayment == "next_installment":
        for index in everything:
            for component in _EARLY_ORDER:
                ledger.pay(index, component)
    elif overpayment == "principal":
        for index in reversed(everything):
            ledger.pay(index, Component.PRINCIPAL)
    later = set(everything) - set(overdue) - set(current)
    later_numbers = {ledger.balances[i].number for i in later}
    lines = ledger.lines()
    return AllocationResult(
        lines=lines,
        installments=tuple(ledger.balances),
        applied=sum((line.amount for line in lines), ZERO),
        credit=ledger.funds,
        principal_prepaid=sum(
            (
                line.amount
                for line in lines
                if line.component is Component.PRINCIPAL and line.installment in later_numbers
            ),
            ZERO,
        ),
    )


def allocate_payment(
    *,
    installments: Sequence[InstallmentBalance],
    amount: Decimal,
    as_of: date,
    annual_rate: Decimal,
    credit: Decimal = Decimal("0"),
    order: Sequence[OrderStep] = DEFAULT_ORDER,
    overpayment: Overpayment = "next_installment",
    penalty_policy: PenaltyPolicy = PenaltyPolicy(),
    max_annual_rate: Decimal | None = None,
) -> AllocationResult:
    """Apply a repayment received on as_of (plus any credit held) to the installments.

    Penalties are first accrued to as_of. "Overdue" = unpaid and due before as_of; "current" =
    the earliest unpaid installment due on or after as_of. Funds go through `order` (see
    DEFAULT_ORDER), then what remains depends on `overpayment`:
    - "next_installment": pays the following installments early, one installment at a time
      (fee, interest, principal; anything a custom order skipped is swept up the same way);
    - "credit": held as credit for the next allocation;
    - "principal": pays principal of the latest installments first (their scheduled interest is
      left as it is: re-amortize with prepayment.reamortize afterwards).
    Whatever cannot be applied (the loan is fully paid) is returned as credit (refundable).
    Every fen is kept: sum(lines) + credit out == amount + credit in. Installments come back
    in due order. ValueError for amount ≤ 0 or amounts with more than two decimals.
    """
    amount = require_fen("amount", amount, positive=True)
    credit = require_fen("credit", credit)
    return _allocate(
        installments=installments,
        funds=amount + credit,
        as_of=as_of,
        annual_rate=annual_rate,
        order=order,
        overpayment=overpayment,
        penalty_policy=penalty_policy,
        max_annual_rate=max_annual_rate,
    )


def apply_credit(
    *,
    installments: Sequence[InstallmentBalance],
    credit: Decimal,
    as_of: date,
    annual_rate: Decimal,
    order: Sequence[OrderStep] = DEFAULT_ORDER,
    penalty_policy: PenaltyPolicy = PenaltyPolicy(),
    max_annual_rate: Decimal | None = None,
) -> AllocationResult:
    """Apply credit held (no new money), e.g. on a due date; what is left stays credit."""
    credit = require_fen("credit", credit)
    return _allocate(
        installments=installments,
        funds=credit,
        as_of=as_of,
        annual_rate=annual_rate,
        order=order,
        overpayment="credit",
        penalty_policy=penalty_policy,
        max_annual_rate=max_annual_rate,
    )


def outstanding(
    *,
    installments: Sequence[InstallmentBalance],
    as_of: date,
    annual_rate: Decimal,
    penalty_policy: PenaltyPolicy = PenaltyPolicy(),
    max_annual_rate: Decimal | None = None,
) -> Outstanding:
    """The loan's position on as_of, penalty accrued to that day (see Outstanding)."""
    balances = list(
        accrue_penalties(
            installments=installments,
            as_of=as_of,
            annual_rate=annual_rate,
            policy=penalty_policy,
            max_annual_rate=max_annual_rate,
        )
    )
    overdue_idx, current_idx = _split(balances, as_of)
    overdue = [balances[i] for i in overdue_idx]
    current = balances[current_idx[0]] if current_idx else None
    overdue_principal = sum((b.principal_outstanding for b in overdue), ZERO)
    overdue_interest = sum((b.interest_outstanding for b in overdue), ZERO)
    overdue_fee = sum((b.fee_outstanding for b in overdue), ZERO)
    penalty = sum((b.penalty_outstanding for b in balances), ZERO)
    current_due = ZERO if current is None else current.total_outstanding
    return Outstanding(
        overdue_principal=overdue_principal,
        overdue_interest=overdue_interest,
        overdue_fee=overdue_fee,
        penalty=penalty,
        current_due=current_due,
        total_outstanding=sum((b.total_outstanding for b in balances), ZERO),
        next_due=current,
        days_past_due=(as_of - overdue[0].due_date).days if overdue else 0,
        due_now=sum((b.total_outstanding for b in overdue), ZERO) + current_due,
    )
