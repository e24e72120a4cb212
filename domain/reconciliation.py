"""Reconciliation: the bank's ledger against the records, as a pure comparison.

What is compared (decisions where the issues are silent):

- Each executed **outgoing** payment order ↔ a ``disbursements`` row, matched on the order's
  idempotency key = ``Disbursement.idempotency_key``; the amount paid must equal the row's
  ``net_amount``. A disbursement row exists only once the bank executed the payout.
- Each **incoming** credit ↔ a repayment on record (a ``payments`` row), matched on the
  payment's ``external_ref`` = the credit's idempotency key or, failing that, its reference (the
  borrower's transfer reference is what operations types as the external reference); the amount
  must equal the payment's ``amount``.
- Everything on record and everything at the bank is compared, not one day's movements: a
  difference found once keeps its key (``Difference.key``) and is never reported again, so a
  difference that stays unresolved is not reopened as a duplicate the next day, and one the
  records catch up with (a late disbursement row) simply stops appearing.
- **Grace period**: a movement executed at the bank, or recorded by us, after ``cutoff`` (the
  run's time minus the grace period) is not yet a difference: the other side may be being
  recorded right now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class DifferenceKind(StrEnum):
    # At the bank, not on record.
    BANK_ONLY = "bank_only"
    # On record, not at the bank.
    RECORD_ONLY = "record_only"
    # On both sides, with different amounts.
    AMOUNT_MISMATCH = "amount_mismatch"


class Direction(StrEnum):
    OUT = "out"  # a payout (disbursement)
    IN = "in"  # a repayment


@dataclass(frozen=True)
class BankMovement:
    """One executed movement of the bank's ledger."""

    key: str
    direction: Direction
    amount: Decimal
    reference: str
    executed_at: datetime | None
    value_date: str = ""
    counterparty: str = ""


@dataclass(frozen=True)
class RecordedMovement:
    """A disbursement (OUT, by its idempotency key) or a repayment (IN, by its external ref)."""

    key: str
    direction: Direction
    amount: Decimal
    recorded_at: datetime
    application_no: str | None = None


@dataclass(frozen=True)
class Difference:
    kind: DifferenceKind
    direction: Direction
    # The bank's key for BANK_ONLY / AMOUNT_MISMATCH, the record's key for RECORD_ONLY.
    reference: str
    bank_amount: Decimal | None
    record_amount: Decimal | None
    application_no: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The difference's identity: the same difference found again has the same key."""
        return f"{self.kind.value}/{self.direction.value}/{self.reference}"

    @property
    def summary(self) -> str:
        what = "payout" if self.direction == Direction.OUT else "repayment"
        if self.kind == DifferenceKind.BANK_ONLY:
            return f"{what} {self.reference} of {self.bank_amount} at the bank, not on record"
        if self.kind == DifferenceKind.RECORD_ONLY:
            return f"{what} {self.reference} of {self.record_amount} on record, not at the bank"
        return (
            f"{what} {self.reference}: {self.bank_amount} at the bank, "
            f"{self.record_amount} on record"
        )


@dataclass(frozen=True)
class Comparison:
    differences: list[Difference]
    matched: int
    # Movements left for the next run because they are inside the grace period.
    in_grace: int


def compare(
    bank: Iterable[BankMovement],
    records: Iterable[RecordedMovement],
    *,
    cutoff: datetime,
) -> Comparison:
    """The differences between the bank's movements and the records, in a stable order."""
    by_key: dict[tuple[Direction, str], RecordedMovement] = {}
    for r in records:
        by_key[(r.direction, r.key)] = r
    seen: set[tuple[Direction, str]] = set()
    differences: list[Difference] = []
    matched = in_grace = 0
    for m in bank:
        record = by_key.get((m.direction, m.key))
        if record is None and m.direction == Direction.IN:
            record = by_key.get((m.direction, m.reference))
        if record is None:
            if m.executed_at is not None and m.executed_at > cutoff:
                in_grace += 1
                continue
            differences.append(
                Difference(
                    DifferenceKind.BANK_ONLY,
                    m.direction,
                    m.key,
                    bank_amount=m.amount,
                    record_amount=None,
                    detail=_bank_detail(m),
                )
            )
            continue
        seen.add((record.direction, record.key))
        if record.amount != m.amount:
            differences.append(
                Difference(
                    DifferenceKind.AMOUNT_MISMATCH,
                    m.direction,
                    m.key,
                    bank_amount=m.amount,
                    record_amount=record.amount,
                    application_no=record.application_no,
                    detail=_bank_detail(m),
                )
            )
        else:
            matched += 1
    for key, record in by_key.items():
        if key in seen:
            continue
        if record.recorded_at > cutoff:
            in_grace += 1
            continue
        differences.append(
            Difference(
                DifferenceKind.RECORD_ONLY,
                record.direction,
                record.key,
                bank_amount=None,
                record_amount=record.amount,
                application_no=record.application_no,
                detail={"recorded_at": record.recorded_at.isoformat()},
            )
        )
    differences.sort(key=lambda d: d.key)
    return Comparison(differences=differences, matched=matched, in_grace=in_grace)


def _bank_detail(m: BankMovement) -> dict[str, Any]:
    return {
        "bank_reference": m.reference,
        "value_date": m.value_date,
        "counterparty": m.counterparty,
        "executed_at": m.executed_at.isoformat() if m.executed_at else None,
    }
