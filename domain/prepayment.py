"""Early repayment (提前还款): the payoff quote for settling today, re-amortization after a
partial prepayment, and the two ledger operations built on them (apply_payoff,
apply_partial_prepayment), which say where every fen of an early repayment goes."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from domain.allocation import PAID_FIELD, AllocationLine, Ledger
from domain.balances import Component, InstallmentBalance
from domain.money import FEN, ZERO, to_fen
from domain.penalty import PenaltyPolicy, accrue_penalties
from domain.schedule import (
    RepaymentMethod,
    Schedule,
    level_payment,
    month_day,
    require_fen,
    require_method,
    require_rate,
    require_term,
    schedule_for,
)

ReamortizeMode = Literal["keep_term", "keep_installment"]
PrepaymentMode = Literal["payoff", "keep_term", "keep_installment"]

_DAY_BASIS = 360  # interest accrued between due dates: actual days / 360, as in payoff_quote


@dataclass(frozen=True)
class PayoffQuote:
    """Amount that settles the loan on as_of, by part; total is what the borrower pays.

    remaining_principal: all principal unpaid (overdue and not yet due).
    accrued_interest: interest on the not-yet-due principal from the last due date on or before
      as_of (or the loan start) to as_of, actual days / 360.
    overdue_interest, fees: unpaid interest and fees of installments due on or before as_of;
      fees of later installments are not charged, except their one-off part (fixed_fee: the
      upfront service fee, owed in full whenever the loan ends).
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
    # Later installments' fees are waived, except a one-off fee (the upfront service fee).
    fees = sum((b.fee_outstanding for b in fallen_due), ZERO) + sum(
        (b.fixed_fee for b in later), ZERO
    )
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


@dataclass(frozen=True)
class PrepaymentResult:
    """An early repayment applied to the ledger (apply_payoff, apply_partial_prepayment).

    lines: where the money went, by installment and component (never negative).
    installments: the ledger afterwards, in due order, penalty accrued to as_of.
    credit: what is left over, held as credit for the borrower (refund or next payment).
    quote: the payoff quote the payoff was checked against (None for a partial prepayment).
    mode: "payoff", "keep_term" or "keep_installment".
    released: interest and fees (and, for a partial prepayment, principal) that had been paid
      early on installments not yet due, taken back from them because those installments are
      waived or replaced, and applied again with the payment. Every fen is kept:
      sum(lines) + credit == amount + credit in + sum(released), and for every installment and
      component, paid after − paid before == its lines − its released amounts.
    """

    lines: tuple[AllocationLine, ...]
    installments: tuple[InstallmentBalance, ...]
    credit: Decimal
    quote: PayoffQuote | None
    mode: PrepaymentMode
    released: tuple[AllocationLine, ...] = ()


_ORDER = (Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL)


def _paid_early(
    balance: InstallmentBalance, components: Sequence[Component]
) -> list[AllocationLine]:
    """What was paid on the given components of an installment not yet due (to release)."""
    lines = (
        AllocationLine(
            installment=balance.number,
            component=component,
            amount=getattr(balance, PAID_FIELD[component]),
        )
        for component in components
    )
    return [line for line in lines if line.amount > 0]


def _total(lines: Sequence[AllocationLine]) -> Decimal:
    return sum((line.amount for line in lines), ZERO)


def _funds_text(amount: Decimal, credit: Decimal) -> str:
    return f"{amount}" if credit == 0 else f"{amount} plus credit {credit}"


def apply_payoff(
    *,
    installments: Sequence[InstallmentBalance],
    amount: Decimal,
    as_of: date,
    annual_rate: Decimal,
    start_date: date,
    credit: Decimal = Decimal("0"),
    prepayment_fee_rate: Decimal = Decimal("0"),
    penalty_policy: PenaltyPolicy = PenaltyPolicy(),
    max_annual_rate: Decimal | None = None,
) -> PrepaymentResult:
    """Settle the loan on as_of with amount (plus credit held): the ledger comes back closed.

    The payment must cover payoff_quote(...).total. Installments due on or before as_of are
    paid in full (penalty, fee, interest, principal). Installments not yet due have their
    principal paid and their unearned interest and fees waived: whatever had been paid early on
    them (quote.prepaid_credit) is released (see PrepaymentResult.released) and their
    interest_due and fee_due become 0 (fee_due keeps the one-off fixed_fee), except that the
    first of them books the quote's accrued interest (interest_due) and prepayment fee
    (fee_due), so the ledger says where every fen went. Lines are component-major (every penalty, then fees, interest, principal; oldest
    installment first). Exact: sum(lines) == quote.total + quote.prepaid_credit,
    sum(released) == quote.prepaid_credit, credit == amount + credit in − quote.total (the
    overpayment), hence sum(lines) + credit == amount + credit in + sum(released).
    """
    amount = require_fen("amount", amount, positive=True)
    credit = require_fen("credit", credit)
    quote = payoff_quote(
        installments=installments,
        as_of=as_of,
        annual_rate=annual_rate,
        start_date=start_date,
        prepayment_fee_rate=prepayment_fee_rate,
        penalty_policy=penalty_policy,
        max_annual_rate=max_annual_rate,
    )
    if amount + credit < quote.total:
        raise ValueError(
            f"amount: {_funds_text(amount, credit)} is less than the payoff total "
            f"{quote.total} as of {as_of}"
        )
    balances = list(
        accrue_penalties(
            installments=installments,
            as_of=as_of,
            annual_rate=annual_rate,
            policy=penalty_policy,
            max_annual_rate=max_annual_rate,
        )
    )
    released: list[AllocationLine] = []
    first_later = True
    for index, balance in enumerate(balances):
        if balance.due_date <= as_of:
            continue
        released.extend(_paid_early(balance, (Component.INTEREST, Component.FEE)))
        balances[index] = dataclasses.replace(
            balance,
            interest_paid=ZERO,
            fee_paid=ZERO,
            interest_due=quote.accrued_interest if first_later else ZERO,
            fee_due=balance.fixed_fee + (quote.prepayment_fee if first_later else ZERO),
        )
        first_later = False
    book = Ledger(balances, amount + credit + _total(released))
    for component in _ORDER:
        for index in range(len(book.balances)):
            book.pay(index, component)
    return PrepaymentResult(
        lines=book.lines(),
        installments=tuple(book.balances),
        credit=book.funds,
        quote=quote,
        mode="payoff",
        released=tuple(released),
    )


def _principal_for(remainder: Decimal, fee_rate: Decimal) -> Decimal:
    """The largest principal x with x + to_fen(x × fee_rate) ≤ remainder."""
    x = max(to_fen(remainder / (1 + fee_rate)), ZERO)
    while x > 0 and x + to_fen(x * fee_rate) > remainder:
        x -= FEN
    while x + FEN + to_fen((x + FEN) * fee_rate) <= remainder:
        x += FEN
    return x


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def _kept_payment(
    method: RepaymentMethod,
    later: Sequence[InstallmentBalance],
    principal: Decimal,
    annual_rate: Decimal,
) -> Decimal:
    """The payment a keep_installment re-amortization keeps (equal_principal: the principal
    part): the largest scheduled one among the not-yet-due installments other than the last
    that nothing was paid on yet; failing those, the level payment (principal part) that
    repays the principal not yet due over the installments not yet due."""
    untouched = [
        b
        for b in (later[:-1] or later)
        if b.principal_paid == 0 and b.interest_paid == 0 and b.fee_paid == 0
    ]
    if method is RepaymentMethod.EQUAL_PRINCIPAL:
        if untouched:
            return max(b.principal_due for b in untouched)
        return max(to_fen(principal / len(later)), FEN)
    if untouched:
        return max(b.principal_due + b.interest_due for b in untouched)
    return max(
        level_payment(principal=principal, monthly_rate=annual_rate / 12, terms=len(later)), FEN
    )


def apply_partial_prepayment(
    *,
    installments: Sequence[InstallmentBalance],
    amount: Decimal,
    as_of: date,
    annual_rate: Decimal,
    start_date: date,
    method: RepaymentMethod,
    mode: ReamortizeMode,
    credit: Decimal = Decimal("0"),
    prepayment_fee_rate: Decimal = Decimal("0"),
    penalty_policy: PenaltyPolicy = PenaltyPolicy(),
    max_annual_rate: Decimal | None = None,
    monthly_fee: Decimal = Decimal("0"),
    current_payment: Decimal | None = None,
) -> PrepaymentResult:
    """Prepay part of the principal on as_of and re-amortize the rest (see reamortize).

    Out of amount + credit, in this order: everything due on or before as_of (penalty, fees,
    interest, principal; an installment due on as_of included); the interest accrued on the
    not-yet-due principal P from the last due date (or start_date) to as_of, actual days / 360
    (as payoff_quote); then the largest principal x with x + prepayment fee ≤ the rest, the fee
    being to_fen(x × prepayment_fee_rate). A fen that cannot buy principal plus its fee stays
    as credit. ValueError("amount: …") if the money does not cover what is due plus the
    accrued interest, leaves nothing to prepay, or would repay all principal (use a payoff).

    The not-yet-due installments are replaced by reamortize(P − x) from the next due date
    (bullet: over the months from start_date to maturity), numbered on after the last
    installment due; keep_term keeps their number, keep_installment keeps the payment
    (current_payment; by default the largest scheduled payment, for equal_principal principal
    part, among them other than the last and untouched, see _kept_payment) and the term
    shortens.

    Interest convention (no day charged twice or skipped): the first new installment's
    interest_due is the re-amortized full period's interest on P − x (from the last due date,
    as any period), and the accrued interest on P − x for last due date → as_of,
    to_fen((P − x) × rate × days / 360), is booked as already paid on it; the rest of the
    accrued interest (on the x prepaid, for those days) is booked, with x and the prepayment
    fee, on the last installment due on or before as_of (raising its due amounts by what is
    paid now). So the x prepaid bears interest to as_of and P − x bears the full period, and a
    payoff_quote afterwards (which credits back interest paid on installments not yet due and
    accrues again from the last due date) charges the same days exactly once. Before the
    first due date there is no installment due to book on, so x, its interest and the fee go on
    the first new installment (a payoff_quote before that installment falls due would then
    credit that interest and fee back). Interest, fees and principal paid early on the
    replaced installments are released and applied again (PrepaymentResult.released): every
    fen is kept, and the ledger's principal_due still sums to the loan's principal.
    """
    amount = require_fen("amount", amount, positive=True)
    credit = require_fen("credit", credit)
    annual_rate = require_rate("annual_rate", annual_rate)
    fee_rate = require_rate("prepayment_fee_rate", prepayment_fee_rate)
    method = require_method(method)
    monthly_fee = require_fen("monthly_fee", monthly_fee)
    if mode not in ("keep_term", "keep_installment"):
        raise ValueError(f"mode: must be keep_term or keep_installment, got {mode!r}")
    if mode == "keep_installment" and method not in (
        RepaymentMethod.EQUAL_INSTALLMENT,
        RepaymentMethod.EQUAL_PRINCIPAL,
    ):
        raise ValueError(
            f"mode: keep_installment applies to equal_installment and equal_principal, not {method}"
        )
    if current_payment is not None:
        current_payment = require_fen("current_payment", current_payment, positive=True)
    if as_of < start_date:
        raise ValueError(f"as_of: {as_of} is before the loan start {start_date}")
    balances = list(
        accrue_penalties(
            installments=installments,
            as_of=as_of,
            annual_rate=annual_rate,
            policy=penalty_policy,
            max_annual_rate=max_annual_rate,
        )
    )
    fallen = [b for b in balances if b.due_date <= as_of]
    later = [b for b in balances if b.due_date > as_of]
    if not later:
        raise ValueError(
            f"as_of: no installment falls due after {as_of}; nothing is left to prepay "
            f"(pay what is due, or use a payoff)"
        )
    for b in later:
        if b.penalty_outstanding != 0:
            raise ValueError(f"installments: #{b.number} bears penalty before its due date")

    released: list[AllocationLine] = []
    for b in later:
        released.extend(_paid_early(b, (Component.FEE, Component.INTEREST, Component.PRINCIPAL)))
    carried = sum((b.principal_paid for b in later), ZERO)  # principal already paid early
    principal = sum((b.principal_outstanding for b in later), ZERO)
    period_start = max((b.due_date for b in fallen), default=start_date)
    days = (as_of - period_start).days
    accrued = to_fen(principal * annual_rate * days / _DAY_BASIS)
    due_now = sum((b.total_outstanding for b in fallen), ZERO)
    needed = due_now + accrued
    available = amount + credit + _total(released) - carried
    funds_text = _funds_text(amount, credit)
    if available < needed:
        raise ValueError(
            f"amount: {funds_text} does not cover the {needed} needed on {as_of} "
            f"({due_now} due, {accrued} interest accrued since {period_start})"
        )
    prepaid = _principal_for(available - needed, fee_rate)
    if prepaid >= principal:
        raise ValueError("amount: covers the whole loan; use a payoff")
    if prepaid <= 0:
        raise ValueError(
            f"amount: {funds_text} only covers the {needed} needed on {as_of}; "
            f"nothing is left to prepay"
        )
    prepayment_fee = to_fen(prepaid * fee_rate)
    remaining = principal - prepaid

    if method is RepaymentMethod.BULLET:
        terms = max(_months_between(start_date, later[-1].due_date), 1)
        next_due = later[-1].due_date
    else:
        terms = len(later)
        next_due = later[0].due_date
    kept = None
    if mode == "keep_installment":
        kept = current_payment
        if kept is None:
            kept = _kept_payment(method, later, principal, annual_rate)
    schedule = reamortize(
        remaining_principal=remaining,
        annual_rate=annual_rate,
        remaining_terms=terms,
        next_due_date=next_due,
        method=method,
        mode=mode,
        current_payment=kept,
        monthly_fee=monthly_fee,
        day_of_month=start_date.day,
    )
    base = max(b.number for b in fallen) if fallen else later[0].number - 1
    # A one-off fee (the upfront service fee) of a replaced installment is not waived: the
    # first new installment, due when the replaced one was, carries it.
    fixed = sum((b.fixed_fee for b in later), ZERO)
    new = [
        InstallmentBalance(
            number=base + row.number,
            due_date=row.due_date,
            principal_due=row.principal,
            interest_due=row.interest,
            fee_due=row.fee + (fixed if k == 0 else ZERO),
            fixed_fee=fixed if k == 0 else ZERO,
        )
        for k, row in enumerate(schedule.installments)
    ]
    kept_accrued = min(to_fen(remaining * annual_rate * days / _DAY_BASIS), new[0].interest_due)
    prepaid_accrued = accrued - kept_accrued

    ledger = [*fallen, *new]
    first_new = len(fallen)
    booked_on = first_new - 1 if fallen else first_new
    target = ledger[booked_on]
    ledger[booked_on] = dataclasses.replace(
        target,
        principal_due=target.principal_due + prepaid + carried,
        interest_due=target.interest_due + prepaid_accrued,
        fee_due=target.fee_due + prepayment_fee,
    )
    book = Ledger(ledger, amount + credit + _total(released))
    for component in _ORDER:
        for index in range(first_new):
            book.pay(index, component)
    event = booked_on == first_new
    book.pay(first_new, Component.FEE, prepayment_fee if event else ZERO)
    book.pay(first_new, Component.INTEREST, kept_accrued + (prepaid_accrued if event else ZERO))
    book.pay(first_new, Component.PRINCIPAL, prepaid + carried if event else ZERO)
    return PrepaymentResult(
        lines=book.lines(),
        installments=tuple(book.balances),
        credit=book.funds,
        quote=None,
        mode=mode,
        released=tuple(released),
    )
