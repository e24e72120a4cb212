"""Early repayment (提前还款): the payoff quote for settling today, and re-amortization after a
partial prepayment."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from domain.balances import InstallmentBalance
from domain.money import ZERO, to_fen
from domain.penalty import PenaltyPolicy, accrue_penalties
from domain.schedule import (
    RepaymentMethod,
    Schedule,
    month_day,
    require_fen,
    require_method,
    require_rate,
    require_term,
    schedule_for,
)

ReamortizeMode = Literal["keep_term", "keep_installment"]


@dataclass(frozen=True)
class PayoffQuote:
    """Amount that settles the loan on as_of, by part; total is what the borrower pays.

    remaining_principal: all principal unpaid (overdue and not yet due).
    accrued_interest: interest on the not-yet-due principal from the last due date on or before
      as_of (or the loan start) to as_of, actual days / 360.
    overdue_interest, fees: unpaid interest and fees of installments due on or before as_of;
      fees of later installments are not charged.
    penalty: penalty accrued to as_of, unpaid.
    prepayment_fee: prepayment_fee_rate × the not-yet-due principal (the principal prepaid).
    prepaid_credit: interest and fees already paid on installments not yet due, credited back
      because the loan ends today.
    """

    as_of: date
    remaining_principal: Decimal
    accrued_interest: Decimal
    overdue_interest: Decimal
    fees: Decimal
    penalty: Decimal
    prepayment_fee: Decimal
    prepaid_credit: Decimal
    total: Decimal


def payoff_quote(
    *,
    installments: Sequence[InstallmentBalance],
    as_of: date,
    annual_rate: Decimal,
    start_date: date,
    prepayment_fee_rate: Decimal = Decimal("0"),
    penalty_policy: PenaltyPolicy = PenaltyPolicy(),
    max_annual_rate: Decimal | None = None,
    day_basis: int = 360,
) -> PayoffQuote:
    """What settles the loan on as_of (see PayoffQuote for each part).

    An installment falling due on as_of itself counts as due (its interest is owed in full and
    no extra interest accrues). Daily interest is annual_rate / day_basis (360, the PBoC
    convention for RMB loans, and the penalty's basis), times actual calendar days, rounded
    half-up to the fen once. Overdue principal bears penalty, not contract interest.
    """
    annual_rate = require_rate("annual_rate", annual_rate)
    fee_rate = require_rate("prepayment_fee_rate", prepayment_fee_rate)
    if as_of < start_date:
        raise ValueError(f"as_of: {as_of} is before the loan start {start_date}")
    balances = accrue_penalties(
        installments=installments,
        as_of=as_of,
        annual_rate=annual_rate,
        policy=penalty_policy,
        max_annual_rate=max_annual_rate,
    )
    fallen_due = [b for b in balances if b.due_date <= as_of]
    later = [b for b in balances if b.due_date > as_of]
    later_principal = sum((b.principal_outstanding for b in later), ZERO)
    period_start = max((b.due_date for b in fallen_due), default=start_date)
    accrued = to_fen(later_principal * annual_rate * (as_of - period_start).days / day_basis)
    remaining_principal = sum((b.principal_outstanding for b in balances), ZERO)
    overdue_interest = sum((b.interest_outstanding for b in fallen_due), ZERO)
    fees = sum((b.fee_outstanding for b in fallen_due), ZERO)
    penalty = sum((b.penalty_outstanding for b in balances), ZERO)
    prepayment_fee = to_fen(later_principal * fee_rate)
    prepaid_credit = sum((b.interest_paid + b.fee_paid for b in later), ZERO)
    total = (
        remaining_principal
        + accrued
        + overdue_interest
        + fees
        + penalty
        + prepayment_fee
        - prepaid_credit
    )
    return PayoffQuote(
        as_of=as_of,
        remaining_principal=remaining_principal,
        accrued_interest=accrued,
        overdue_interest=overdue_interest,
        fees=fees,
        penalty=penalty,
        prepayment_fee=prepayment_fee,
        prepaid_credit=prepaid_credit,
        total=total,
    )


def reamortize(
    *,
    remaining_principal: Decimal,
    annual_rate: Decimal,
    remaining_terms: int,
    next_due_date: date,
    method: RepaymentMethod,
    mode: ReamortizeMode,
    current_payment: Decimal | None = None,
    monthly_fee: Decimal = Decimal("0"),
    day_of_month: int | None = None,
) -> Schedule:
    """New schedule for the principal left after a partial prepayment, numbered from 1.

    Due dates: next_due_date, then monthly on day_of_month (default next_due_date's day; pass
    the loan's original day, e.g. 31, when next_due_date was clamped to a month end).
    - keep_term: same number of terms, the payment recomputed by the method's conventions
      (bullet: one installment on next_due_date with interest P·r·remaining_terms).
    - keep_installment (equal_installment, equal_principal only): the payment is kept and the
      term shortens; the installment where the principal runs out takes the rest. For
      equal_installment current_payment is the level payment (it must exceed the first
      month's interest); for equal_principal it is the fixed monthly principal part. The term
      never lengthens: after remaining_terms installments the last takes what is left.
    """
    remaining_principal = require_fen("remaining_principal", remaining_principal, positive=True)
    annual_rate = require_rate("annual_rate", annual_rate)
    remaining_terms = require_term("remaining_terms", remaining_terms)
    method = require_method(method)
    monthly_fee = require_fen("monthly_fee", monthly_fee)
    day = next_due_date.day if day_of_month is None else day_of_month
    if not 1 <= day <= 31:
        raise ValueError(f"day_of_month: must be between 1 and 31, got {day}")
    # A bullet loan's only due date is its maturity: its remaining months end on next_due_date.
    first = 1 - remaining_terms if method is RepaymentMethod.BULLET else 0
    due_dates = [
        next_due_date if k == 0 else month_day(next_due_date.year, next_due_date.month + k, day)
        for k in range(first, first + remaining_terms)
    ]
    if mode == "keep_term":
        payment = None
    elif mode == "keep_installment":
        if method not in (RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL):
            raise ValueError(
                f"mode: keep_installment applies to equal_installment and equal_principal, "
                f"not {method}"
            )
        if current_payment is None:
            raise ValueError("current_payment: required for keep_installment")
        payment = require_fen("current_payment", current_payment, positive=True)
        first_interest = to_fen(remaining_principal * annual_rate / 12)
        if method is RepaymentMethod.EQUAL_INSTALLMENT and payment <= first_interest:
            raise ValueError(
                f"current_payment: {payment} does not exceed the month's interest {first_interest}"
            )
    else:
        raise ValueError(f"mode: must be keep_term or keep_installment, got {mode!r}")
    return schedule_for(
        principal=remaining_principal,
        annual_rate=annual_rate,
        due_dates=due_dates,
        method=method,
        monthly_fee=monthly_fee,
        payment=payment,
    )
