"""Repayment schedules (还款计划) for the four repayment methods, to the fen.

Fixed conventions: monthly rate = annual / 12 unrounded; each amount rounded half-up to the fen.
"""

import calendar
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum

from domain.money import FEN, ZERO, to_fen

MAX_TERM_MONTHS = 360
_PRECISION = 40


class UpfrontFeeDue(StrEnum):
    """When the upfront service fee (一次性服务费) falls due. It is never taken out of the
    principal: the borrower receives the whole principal and owes the fee on the loan's account."""

    # Due with the first installment, allocated like any other amount due (the default rule).
    FIRST_INSTALLMENT = "first_installment"
    # Legacy: loans priced before fee-not-deducted-v1 had the fee deducted from the payout.
    DEDUCTED_FROM_PAYOUT = "deducted_from_payout"


class RepaymentMethod(StrEnum):
    """How principal and interest are spread over the term."""

    EQUAL_INSTALLMENT = "equal_installment"  # 等额本息: level payment
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金: level principal, falling interest
    INTEREST_ONLY = "interest_only"  # 先息后本: interest monthly, principal at the end
    BULLET = "bullet"  # 到期一次还本付息: everything once, at maturity


@dataclass(frozen=True)
class ScheduledInstallment:
    """One row of a schedule; payment = principal + interest + fee. ``fee`` includes
    ``upfront_fee``, the part of it that is the one-off upfront service fee (installment 1)."""

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    payment: Decimal
    remaining_principal: Decimal  # principal still owed after this installment is paid
    upfront_fee: Decimal = ZERO


@dataclass(frozen=True)
class Schedule:
    """A whole schedule with its totals."""

    installments: tuple[ScheduledInstallment, ...]
    total_principal: Decimal
    total_interest: Decimal
    total_fees: Decimal
    total_payment: Decimal


def add_months(d: date, k: int) -> date:
    """d plus k calendar months, clamped to the month end (Jan 31 + 1 → Feb 28 or 29)."""
    return month_day(d.year, d.month + k, d.day)


def month_day(year: int, month: int, day: int) -> date:
    """The given day of a month (month may run past 12 or below 1), clamped to its last day."""
    y, m0 = divmod(year * 12 + month - 1, 12)
    last = calendar.monthrange(y, m0 + 1)[1]
    return date(y, m0 + 1, min(day, last))


def require_decimal(name: str, value: object) -> Decimal:
    """Accept a Decimal (or int) argument; floats and other types are refused by name."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"{name}: expected a Decimal, got {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{name}: must be a finite number, got {value}")
    return result


def require_fen(name: str, value: object, *, positive: bool = False) -> Decimal:
    """A money argument: a Decimal with at most two decimals, ≥ 0 (or > 0 if positive)."""
    amount = require_decimal(name, value)
    if amount != amount.quantize(FEN):
        raise ValueError(f"{name}: {amount} has more than 2 decimal places")
    if positive and amount <= 0:
        raise ValueError(f"{name}: must be greater than 0, got {amount}")
    if amount < 0:
        raise ValueError(f"{name}: must not be negative, got {amount}")
    return to_fen(amount)


def require_rate(name: str, value: object) -> Decimal:
    """An annual rate as a fraction in [0, 1]."""
    rate = require_decimal(name, value)
    if rate < 0 or rate > 1:
        raise ValueError(f"{name}: must be a fraction between 0 and 1, got {rate}")
    return rate


def require_method(value: object) -> RepaymentMethod:
    try:
        return RepaymentMethod(str(value))
    except ValueError:
        raise ValueError(f"method: unknown repayment method {value!r}") from None


def require_term(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an int, got {type(value).__name__}")
    if not 1 <= value <= MAX_TERM_MONTHS:
        raise ValueError(f"{name}: must be between 1 and {MAX_TERM_MONTHS}, got {value}")
    return value


def level_payment(*, principal: Decimal, monthly_rate: Decimal, terms: int) -> Decimal:
    """Level payment P·r·(1+r)^n / ((1+r)^n − 1), rounded half-up to the fen (r = 0: P/n)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if monthly_rate == 0:
            return to_fen(principal / terms)
        growth = (1 + monthly_rate) ** terms
        return to_fen(principal * monthly_rate * growth / (growth - 1))


def build_schedule(
    *,
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: RepaymentMethod,
    start_date: date,
    monthly_fee: Decimal = Decimal("0"),
    upfront_fee: Decimal = Decimal("0"),
) -> Schedule:
    """The schedule of a new loan; installment k falls due on start_date + k months (clamped).

    The bullet method has one installment at month n whose interest is P·r·n and whose fee is
    monthly_fee·n (the fee is monthly, so a single installment carries every month's fee).
    ``upfront_fee`` (the one-off service fee, never deducted from the principal) falls due with
    the first installment: it is added to that installment's fee and payment.
    Raises ValueError naming the argument on bad input.
    """
    principal = require_fen("principal", principal, positive=True)
    annual_rate = require_rate("annual_rate", annual_rate)
    term_months = require_term("term_months", term_months)
    method = require_method(method)
    if not isinstance(start_date, date):
        raise ValueError(f"start_date: expected a date, got {type(start_date).__name__}")
    monthly_fee = require_fen("monthly_fee", monthly_fee)
    upfront_fee = require_fen("upfront_fee", upfront_fee)
    due_dates = [add_months(start_date, k) for k in range(1, term_months + 1)]
    schedule = schedule_for(
        principal=principal,
        annual_rate=annual_rate,
        due_dates=due_dates,
        method=method,
        monthly_fee=monthly_fee,
    )
    return with_upfront_fee(schedule, upfront_fee) if upfront_fee else schedule


def with_upfront_fee(schedule: Schedule, upfront_fee: Decimal) -> Schedule:
    """The schedule with the upfront service fee added to the first installment (its due rule)."""
    first, *rest = schedule.installments
    first = dataclasses.replace(
        first,
        fee=first.fee + upfront_fee,
        payment=first.payment + upfront_fee,
        upfront_fee=first.upfront_fee + upfront_fee,
    )
    return dataclasses.replace(
        schedule,
        installments=(first, *rest),
        total_fees=schedule.total_fees + upfront_fee,
        total_payment=schedule.total_payment + upfront_fee,
    )


def schedule_for(
    *,
    principal: Decimal,
    annual_rate: Decimal,
    due_dates: Sequence[date],
    method: RepaymentMethod,
    monthly_fee: Decimal,
    payment: Decimal | None = None,
) -> Schedule:
    """Schedule over the given monthly due dates (arguments already validated).

    `payment` fixes the equal-installment payment (or the equal-principal principal part)
    instead of computing it; the schedule then stops as soon as the principal is repaid, and
    the last due date takes whatever principal remains.
    """
    n = len(due_dates)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        r = annual_rate / 12
        rows: list[tuple[date, Decimal, Decimal, Decimal]] = []  # due, principal, interest, fee
        if method is RepaymentMethod.BULLET:
            rows.append((due_dates[-1], principal, to_fen(principal * r * n), monthly_fee * n))
        else:
            shorten = payment is not None
            level = payment if payment is not None else ZERO
            if method is RepaymentMethod.EQUAL_INSTALLMENT and payment is None:
                level = level_payment(principal=principal, monthly_rate=r, terms=n)
            elif method is RepaymentMethod.EQUAL_PRINCIPAL and payment is None:
                level = to_fen(principal / n)
            remaining = principal
            for k, due in enumerate(due_dates, start=1):
                interest = to_fen(remaining * r)
                if k == n:
                    part = remaining
                elif method is RepaymentMethod.INTEREST_ONLY:
                    part = ZERO
                elif method is RepaymentMethod.EQUAL_INSTALLMENT:
                    # Never more than what is owed: rounding must not overshoot the principal.
                    part = min(max(level - interest, ZERO), remaining)
                else:
                    part = min(level, remaining)
                rows.append((due, part, interest, monthly_fee))
                remaining -= part
                if shorten and remaining == 0:
                    break  # keep-installment re-amortization: the term ends early
    return _assemble(principal, rows)


def _assemble(principal: Decimal, rows: list[tuple[date, Decimal, Decimal, Decimal]]) -> Schedule:
    installments: list[ScheduledInstallment] = []
    remaining = principal
    for number, (due, part, interest, fee) in enumerate(rows, start=1):
        remaining -= part
        installments.append(
            ScheduledInstallment(
                number=number,
                due_date=due,
                principal=to_fen(part),
                interest=to_fen(interest),
                fee=to_fen(fee),
                payment=to_fen(part + interest + fee),
                remaining_principal=to_fen(remaining),
            )
        )
    return Schedule(
        installments=tuple(installments),
        total_principal=to_fen(sum((i.principal for i in installments), ZERO)),
        total_interest=to_fen(sum((i.interest for i in installments), ZERO)),
        total_fees=to_fen(sum((i.fee for i in installments), ZERO)),
        total_payment=to_fen(sum((i.payment for i in installments), ZERO)),
    )
