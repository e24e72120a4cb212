"""Payment reversal (冲正): a payment that bounced is taken out of the ledger, and the ledger is
re-computed from that point as if it had never been received.

``apply_posting`` is the one way a posted payment changes the ledger (a repayment, a payoff, a
partial prepayment, or credit held applied on a due date); ``reverse_payment`` starts from the
balances just before the reversed payment and re-applies every later posting in order with it,
so penalties are re-accrued on the principal that is really outstanding, a paid installment can
fall overdue again, and the figures are those of a ledger that never saw the payment.

Decisions where the rules are silent (a lending operations team's usual practice):
- A later early repayment that no longer does what it did (a payoff that no longer covers the
  payoff total, a partial prepayment that no longer covers what is due) is re-applied as an
  ordinary repayment (``installments``): the money was received and goes to what is due, and
  the reversal never refuses because of it.
- A later application of credit held (mode ``credit``) is re-applied with the credit held at
  that point of the re-computation (possibly less, or none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, cast

from domain.allocation import (
    AllocationLine,
    AllocationResult,
    InstallmentBalance,
    Overpayment,
    PaymentMode,
    allocate_payment,
    apply_credit,
)
from domain.money import ZERO
from domain.penalty import PenaltyPolicy, accrue_penalties
from domain.prepayment import ReamortizeMode, apply_partial_prepayment, apply_payoff
from domain.schedule import RepaymentMethod

__all__ = [
    "LedgerTerms",
    "Posting",
    "Reapplied",
    "ReversalResult",
    "apply_posting",
    "reverse_payment",
]


@dataclass(frozen=True)
class LedgerTerms:
    """The contract's terms the money engine needs to apply a payment."""

    annual_rate: Decimal
    start_date: date
    method: RepaymentMethod
    penalty_policy: PenaltyPolicy = field(default_factory=PenaltyPolicy)
    max_annual_rate: Decimal | None = None
    overpayment: Overpayment = "next_installment"
    prepayment_fee_rate: Decimal = Decimal("0")
    monthly_fee: Decimal = Decimal("0")


@dataclass(frozen=True)
class Posting:
    """A payment as booked: its reference, amount, business date and mode."""

    ref: str
    amount: Decimal
    paid_on: date
    mode: PaymentMode = PaymentMode.INSTALLMENTS


def apply_posting(
    installments: Sequence[InstallmentBalance],
    credit: Decimal,
    posting: Posting,
    terms: LedgerTerms,
) -> AllocationResult:
    """The ledger after ``posting``; ValueError says why it cannot be applied.

    Released amounts (interest or fees paid early on installments an early repayment waives or
    replaces) appear as negative lines, so the lines still say where every fen went.
    """
    engine: dict[str, Any] = {
        "annual_rate": terms.annual_rate,
        "penalty_policy": terms.penalty_policy,
        "max_annual_rate": terms.max_annual_rate,
    }
    if posting.mode == PaymentMode.CREDIT:
        return apply_credit(
            installments=installments, credit=credit, as_of=posting.paid_on, **engine
        )
    common: dict[str, Any] = {
        "installments": installments,
        "amount": posting.amount,
        "as_of": posting.paid_on,
        "credit": credit,
        **engine,
    }
    if posting.mode == PaymentMode.INSTALLMENTS:
        return allocate_payment(**common, overpayment=terms.overpayment)
    if posting.mode == PaymentMode.PAYOFF:
        early = apply_payoff(
            **common,
            start_date=terms.start_date,
            prepayment_fee_rate=terms.prepayment_fee_rate,
        )
    elif posting.mode in (PaymentMode.KEEP_TERM, PaymentMode.KEEP_INSTALLMENT):
        early = apply_partial_prepayment(
            **common,
            start_date=terms.start_date,
            method=terms.method,
            mode=cast(ReamortizeMode, posting.mode.value),
            monthly_fee=terms.monthly_fee,
            prepayment_fee_rate=terms.prepayment_fee_rate,
        )
    else:
        raise ValueError(f"mode: {posting.mode!r} is not a payment mode")
    lines = early.lines + tuple(replace(r, amount=-r.amount) for r in early.released)
    return AllocationResult(
        lines=lines,
        installments=early.installments,
        applied=sum((line.amount for line in lines), ZERO),
        credit=early.credit,
        principal_prepaid=Decimal("0"),
    )


@dataclass(frozen=True)
class Reapplied:
    """A later posting as the re-computation applied it: the ledger just before it, the mode it
    was applied in (``installments`` when its own no longer applies), where its money went and
    the credit after it."""

    ref: str
    installments_before: tuple[InstallmentBalance, ...]
    credit_before: Decimal
    mode: PaymentMode
    lines: tuple[AllocationLine, ...]
    installments: tuple[InstallmentBalance, ...]
    credit: Decimal


@dataclass(frozen=True)
class ReversalResult:
    """The ledger without the reversed payment, penalties accrued to ``as_of``."""

    installments: tuple[InstallmentBalance, ...]
    credit: Decimal
    reapplied: tuple[Reapplied, ...]
    as_of: date


def reverse_payment(
    *,
    before: Sequence[InstallmentBalance],
    credit_before: Decimal,
    later: Sequence[Posting],
    as_of: date,
    terms: LedgerTerms,
) -> ReversalResult:
    """Re-compute the ledger from the point of a reversed payment.

    ``before`` and ``credit_before`` are the ledger just before the reversed payment was booked;
    ``later`` the postings booked after it (in order, reversed ones left out). Each is re-applied
    with ``apply_posting``; one that no longer applies in its early-repayment mode is applied as
    an ordinary repayment (see the module's decisions). Penalties are then accrued to ``as_of``
    (the business date of the reversal), which is never before the last posting.
    """
    installments = tuple(before)
    credit = credit_before
    done: list[Reapplied] = []
    for posting in later:
        mode = posting.mode
        try:
            result = apply_posting(installments, credit, posting, terms)
        except ValueError:
            if mode in (PaymentMode.INSTALLMENTS, PaymentMode.CREDIT):
                raise
            mode = PaymentMode.INSTALLMENTS
            result = apply_posting(installments, credit, replace(posting, mode=mode), terms)
        done.append(
            Reapplied(
                ref=posting.ref,
                installments_before=installments,
                credit_before=credit,
                mode=mode,
                lines=result.lines,
                installments=result.installments,
                credit=result.credit,
            )
        )
        installments = result.installments
        credit = result.credit
    last = max((p.paid_on for p in later), default=as_of)
    as_of = max(as_of, last)
    installments = accrue_penalties(
        installments=installments,
        as_of=as_of,
        annual_rate=terms.annual_rate,
        policy=terms.penalty_policy,
        max_annual_rate=terms.max_annual_rate,
    )
    return ReversalResult(
        installments=tuple(installments), credit=credit, reapplied=tuple(done), as_of=as_of
    )
