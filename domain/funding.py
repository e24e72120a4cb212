"""The funding pool's rules (pure): movements and their signs, maker-checker on manual movements,
the refusals, and the liquidity indicators (seed §4, liquidity risk: sources matched to uses,
indicators watched, a warning when liquidity is tight).

Figures:

- ``balance``: money in the pool account (the bank's ledger and ours agree after reconciliation).
- ``reserved``: set aside for named loans (a reservation per payout key) and not yet paid out.
- ``available`` = balance − reserved: what new commitments and withdrawals may use.
- ``committed_not_disbursed``: applications past the offer and not yet paid (stages
  OFFER_CONFIRMATION, CONTRACT_SIGNING, DISBURSEMENT), each with the cash it will take (the
  loan's principal less its upfront fee once priced, else the amount applied for).
- ``expected_outflows``: the committed amounts that have no reservation yet (a reserved one is
  already out of ``available``; counting it again would double it).
- ``expected_inflows_7d`` / ``_30d``: what is still owed on installments falling due from today
  through today + 7 / + 30 days (principal, interest and fees; penalties excluded, they are not
  a plan). Installments already overdue are shown apart (``overdue_outstanding``), not expected.
- ``coverage_ratio`` = expected_outflows ÷ available (4 places; None when nothing is available):
  above 1 the pool cannot pay what it has promised.
- ``low_liquidity``: available below the pool's threshold, or coverage above 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.lifecycle import Stage
from domain.money import ZERO, format_money, to_fen

POOL_CODE = "main"
DEFAULT_LOW_LIQUIDITY_THRESHOLD = Decimal("1000000.00")
COMMITTED_STAGES = (Stage.OFFER_CONFIRMATION, Stage.CONTRACT_SIGNING, Stage.DISBURSEMENT)
RATIO_PLACES = Decimal("0.0001")


class MovementKind(StrEnum):
    TOP_UP = "top_up"  # manual, maker-checker
    WITHDRAWAL = "withdrawal"  # manual, maker-checker
    INFLOW = "inflow"  # a repayment received (servicing)
    PAYOUT = "payout"  # a disbursement executed by the bank (a reservation consumed)
    OPENING_BALANCE = "opening_balance"  # the demo seed's opening balance
    # A settled loan's credit paid back by the bank (settlement-refund-v1): the overpayment came
    # in as an inflow and goes out again.
    REFUND = "refund"


MANUAL_KINDS = frozenset({MovementKind.TOP_UP, MovementKind.WITHDRAWAL})
_SIGN = {
    MovementKind.TOP_UP: 1,
    MovementKind.WITHDRAWAL: -1,
    MovementKind.INFLOW: 1,
    MovementKind.PAYOUT: -1,
    MovementKind.OPENING_BALANCE: 1,
    MovementKind.REFUND: -1,
}


def signed(kind: MovementKind, amount: Decimal) -> Decimal:
    """The movement's effect on the balance."""
    return amount * _SIGN[kind]


class FundingError(Exception):
    """A refused funding operation; the message is ``"field: reason"`` where a field is at fault."""


class InsufficientFunds(FundingError):
    def __init__(self, amount: Decimal, available: Decimal) -> None:
        super().__init__(
            f"amount: {format_money(amount)} exceeds the pool's available funds "
            f"{format_money(available)}"
        )
        self.amount = amount
        self.available = available


class MakerCheckerViolation(FundingError):
    pass


class FundingConflict(FundingError):
    """The business key was used before for something else, or the object is past that step."""


def check_amount(amount: Decimal) -> Decimal:
    """A positive amount in whole fen (no rounding here: sub-fen input is refused)."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise FundingError("amount: must be a decimal number")
    if amount <= 0:
        raise FundingError("amount: must be greater than 0")
    if amount != amount.quantize(Decimal("0.01")):
        raise FundingError("amount: must be in whole fen (two decimal places)")
    return to_fen(amount)


def check_checker(requested_by: str, authorizer: str) -> None:
    """Maker-checker: a manual movement is authorized by someone other than its requester."""
    if requested_by == authorizer:
        raise MakerCheckerViolation(
            f"maker-checker: {authorizer} requested this movement and may not authorize it; "
            "a second person must"
        )


@dataclass(frozen=True)
class CommittedLoan:
    application_no: str
    stage: str
    amount: Decimal
    reserved: bool


@dataclass(frozen=True)
class InstallmentDue:
    due_date: date
    outstanding: Decimal


@dataclass(frozen=True)
class Liquidity:
    as_of: date
    balance: Decimal
    reserved: Decimal
    available: Decimal
    committed_count: int
    committed_amount: Decimal
    committed_by_stage: dict[str, tuple[int, Decimal]]
    expected_outflows: Decimal
    expected_inflows_7d: Decimal
    expected_inflows_30d: Decimal
    overdue_outstanding: Decimal
    coverage_ratio: Decimal | None
    threshold: Decimal
    low_liquidity: bool
    warnings: list[str] = field(default_factory=list)


def liquidity(
    *,
    as_of: date,
    balance: Decimal,
    reserved: Decimal,
    threshold: Decimal,
    committed: Iterable[CommittedLoan],
    installments: Iterable[InstallmentDue],
) -> Liquidity:
    committed = list(committed)
    available = balance - reserved
    by_stage: dict[str, tuple[int, Decimal]] = {s.value: (0, ZERO) for s in COMMITTED_STAGES}
    for c in committed:
        count, total = by_stage.get(c.stage, (0, ZERO))
        by_stage[c.stage] = (count + 1, total + c.amount)
    outflows = sum((c.amount for c in committed if not c.reserved), ZERO)
    in_7, in_30, overdue = ZERO, ZERO, ZERO
    for i in installments:
        if i.outstanding <= 0:
            continue
        if i.due_date < as_of:
            overdue += i.outstanding
        elif i.due_date <= as_of + timedelta(days=7):
            in_7 += i.outstanding
            in_30 += i.outstanding
        elif i.due_date <= as_of + timedelta(days=30):
            in_30 += i.outstanding
    ratio = (outflows / available).quantize(RATIO_PLACES) if available > 0 else None
    warnings = []
    if available < threshold:
        warnings.append(
            f"available {format_money(available)} is below the low-liquidity threshold "
            f"{format_money(threshold)}"
        )
    if (ratio is None and outflows > 0) or (ratio is not None and ratio > 1):
        warnings.append(
            f"expected outflows {format_money(outflows)} exceed available {format_money(available)}"
        )
    return Liquidity(
        as_of=as_of,
        balance=to_fen(balance),
        reserved=to_fen(reserved),
        available=to_fen(available),
        committed_count=len(committed),
        committed_amount=to_fen(sum((c.amount for c in committed), ZERO)),
        committed_by_stage=by_stage,
        expected_outflows=to_fen(outflows),
        expected_inflows_7d=to_fen(in_7),
        expected_inflows_30d=to_fen(in_30),
        overdue_outstanding=to_fen(overdue),
        coverage_ratio=ratio,
        threshold=to_fen(threshold),
        low_liquidity=bool(warnings),
        warnings=warnings,
    )
