from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.money import (
    FEN,
    RATE_PLACES,
    fen_to_int,
    format_money,
    format_rate,
    int_to_fen,
    to_fen,
)


def test_constants() -> None:
    assert Decimal("0.01") == FEN
    assert Decimal("0.000001") == RATE_PLACES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.005", "0.01"),
        ("0.015", "0.02"),  # half-up, not banker's (which gives 0.02 too) …
        ("0.025", "0.03"),  # … here banker's would give 0.02
        ("2.675", "2.68"),
        ("0.0049", "0.00"),
        ("-0.005", "-0.01"),
        ("-0.004", "0.00"),
        (7, "7.00"),
        (Decimal("1234.5"), "1234.50"),
    ],
)
def test_to_fen_rounds_half_up(raw: Decimal | int | str, expected: str) -> None:
    result = to_fen(raw)
    assert result == Decimal(expected)
    assert str(result) == expected


def test_to_fen_refuses_float_and_garbage() -> None:
    with pytest.raises(TypeError):
        to_fen(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_fen("abc")
    with pytest.raises(ValueError):
        to_fen("NaN")


def test_fen_int_conversions() -> None:
    assert fen_to_int(Decimal("1234.50")) == 123450
    assert fen_to_int(Decimal("-0.01")) == -1
    assert int_to_fen(123450) == Decimal("1234.50")
    assert str(int_to_fen(5)) == "0.05"
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        fen_to_int(Decimal("1.005"))


@settings(max_examples=200)
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_fen_int_round_trip(n: int) -> None:
    assert fen_to_int(int_to_fen(n)) == n
    assert int_to_fen(n) == Decimal(n) / 100


def test_format_money_and_rate() -> None:
    assert format_money(Decimal("1234.5")) == "1234.50"
    assert format_money(Decimal("0")) == "0.00"
    assert format_money(Decimal("-0.001")) == "0.00"
    assert format_money(Decimal("1E+3")) == "1000.00"
    assert format_rate(Decimal("0.1280380185")) == "0.128038"
    assert format_rate(Decimal("0.0000005")) == "0.000001"
    assert format_rate(Decimal("0.24")) == "0.240000"
