"""The funding pool's pure rules: amounts, maker-checker, and the liquidity indicators' edges."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.funding import (
    CommittedLoan,
    FundingError,
    InstallmentDue,
    MakerCheckerViolation,
    MovementKind,
    check_amount,
    check_checker,
    liquidity,
    signed,
)

D = Decimal
TODAY = date(2026, 11, 29)


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (D("0"), "amount: must be greater than 0"),
        (D("-1.00"), "amount: must be greater than 0"),
        (D("1.001"), "amount: must be in whole fen"),
        (D("NaN"), "amount: must be a decimal number"),
    ],
)
def test_bad_amounts_are_refused_naming_the_field(amount: Decimal, reason: str) -> None:
    with pytest.raises(FundingError, match=reason):
        check_amount(amount)


def test_amount_is_kept_to_the_fen() -> None:
    assert check_amount(D("12.5")) == D("12.50")


def test_maker_may_not_be_checker() -> None:
    check_checker("manager", "risk")
    with pytest.raises(MakerCheckerViolation, match="maker-checker: manager requested"):
        check_checker("manager", "manager")


def test_signs() -> None:
    assert [signed(k, D("5.00")) for k in MovementKind] == [
        D("5.00"),
        D("-5.00"),
        D("5.00"),
        D("-5.00"),
        D("5.00"),
        D("-5.00"),  # a refund (settlement-refund-v1)
    ]


def test_nothing_available_with_outflows_is_low_with_no_ratio() -> None:
    f = liquidity(
        as_of=TODAY,
        balance=D("1000.00"),
        reserved=D("1000.00"),
        threshold=D("0.00"),
        committed=[CommittedLoan("A1", "CONTRACT_SIGNING", D("500.00"), reserved=False)],
        installments=[],
    )
    assert (f.available, f.expected_outflows, f.coverage_ratio) == (D("0.00"), D("500.00"), None)
    assert f.low_liquidity
    assert f.warnings == ["expected outflows 500.00 exceed available 0.00"]


def test_coverage_above_one_warns_even_above_the_threshold() -> None:
    f = liquidity(
        as_of=TODAY,
        balance=D("3000.00"),
        reserved=D("0.00"),
        threshold=D("1000.00"),
        committed=[
            CommittedLoan("A1", "OFFER_CONFIRMATION", D("2000.00"), reserved=False),
            CommittedLoan("A2", "DISBURSEMENT", D("2000.00"), reserved=False),
        ],
        installments=[InstallmentDue(TODAY, D("0.00"))],
    )
    assert f.coverage_ratio == D("1.3333")
    assert f.warnings == ["expected outflows 4000.00 exceed available 3000.00"]


def test_a_healthy_pool_has_no_warning() -> None:
    f = liquidity(
        as_of=TODAY,
        balance=D("5000000.00"),
        reserved=D("0.00"),
        threshold=D("1000000.00"),
        committed=[],
        installments=[],
    )
    assert (f.coverage_ratio, f.low_liquidity, f.warnings) == (D("0.0000"), False, [])
