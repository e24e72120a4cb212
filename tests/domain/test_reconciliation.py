"""The comparison of the bank's ledger with the records: matches, the three kinds of difference,
the grace period, stable keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.reconciliation import (
    BankMovement,
    Difference,
    Direction,
    RecordedMovement,
    compare,
)

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(hours=1)
OLD = NOW - timedelta(hours=5)
RECENT = NOW - timedelta(minutes=10)


def out(key: str, amount: str, at: datetime = OLD) -> BankMovement:
    return BankMovement(key, Direction.OUT, Decimal(amount), f"ref {key}", at)


def inc(key: str, amount: str, reference: str = "", at: datetime = OLD) -> BankMovement:
    return BankMovement(key, Direction.IN, Decimal(amount), reference or key, at)


def disbursed(key: str, amount: str, at: datetime = OLD) -> RecordedMovement:
    return RecordedMovement(key, Direction.OUT, Decimal(amount), at, "A1")


def repaid(ref: str, amount: str, at: datetime = OLD) -> RecordedMovement:
    return RecordedMovement(ref, Direction.IN, Decimal(amount), at, "A2")


def kinds(diffs: list[Difference]) -> list[tuple[str, str, str]]:
    return [(d.kind.value, d.direction.value, d.reference) for d in diffs]


def test_matching_payouts_and_repayments_are_no_difference() -> None:
    result = compare(
        [out("payout-A1", "11800.00"), inc("BK-1", "4100.50", reference="PAY-1")],
        [disbursed("payout-A1", "11800.00"), repaid("PAY-1", "4100.50")],
        cutoff=CUTOFF,
    )
    assert result.differences == []
    assert result.matched == 2


def test_a_repayment_matches_the_credit_by_its_key_too() -> None:
    result = compare([inc("PAY-2", "10.00")], [repaid("PAY-2", "10.00")], cutoff=CUTOFF)
    assert (result.differences, result.matched) == ([], 1)


def test_each_kind_of_difference() -> None:
    result = compare(
        [out("payout-X", "5000.00"), out("payout-A1", "11800.00"), inc("BK-9", "7.00")],
        [disbursed("payout-A1", "11799.99"), repaid("PAY-GONE", "300.00")],
        cutoff=CUTOFF,
    )
    assert kinds(result.differences) == [
        ("amount_mismatch", "out", "payout-A1"),
        ("bank_only", "in", "BK-9"),
        ("bank_only", "out", "payout-X"),
        ("record_only", "in", "PAY-GONE"),
    ]
    mismatch = result.differences[0]
    assert (mismatch.bank_amount, mismatch.record_amount) == (
        Decimal("11800.00"),
        Decimal("11799.99"),
    )
    assert mismatch.application_no == "A1"
    assert mismatch.key == "amount_mismatch/out/payout-A1"
    assert "11800.00 at the bank, 11799.99 on record" in mismatch.summary


def test_movements_inside_the_grace_period_wait_for_the_next_run() -> None:
    result = compare(
        [out("payout-NOW", "100.00", at=RECENT)],
        [disbursed("payout-REC", "200.00", at=RECENT)],
        cutoff=CUTOFF,
    )
    assert result.differences == []
    assert result.in_grace == 2
    later = compare(
        [out("payout-NOW", "100.00", at=RECENT)],
        [disbursed("payout-REC", "200.00", at=RECENT)],
        cutoff=NOW,
    )
    assert kinds(later.differences) == [
        ("bank_only", "out", "payout-NOW"),
        ("record_only", "out", "payout-REC"),
    ]


def test_a_payout_being_recorded_now_is_matched_once_its_row_exists() -> None:
    """The bank executed a minute ago, the row is written a moment later: never a difference."""
    bank = [out("payout-A7", "900.00", at=RECENT)]
    assert compare(bank, [], cutoff=CUTOFF).differences == []
    assert compare(bank, [disbursed("payout-A7", "900.00", at=NOW)], cutoff=CUTOFF).matched == 1


def test_keys_are_stable_across_runs() -> None:
    first = compare([out("payout-X", "5.00")], [], cutoff=CUTOFF)
    again = compare([out("payout-X", "5.00"), out("payout-A", "1.00")], [], cutoff=NOW)
    assert first.differences[0].key in {d.key for d in again.differences}
