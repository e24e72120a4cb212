"""Tests for Chinese capital numerals (大写金额) against literal expected strings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.numerals import amount_in_capitals


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        # Examples from the brief.
        ("12345.67", "壹万贰仟叁佰肆拾伍元陆角柒分"),
        ("100000", "壹拾万元整"),
        ("1005.00", "壹仟零伍元整"),
        ("0.50", "伍角"),
        ("10.05", "壹拾元零伍分"),
        # Zero, fen-only and jiao-only amounts.
        ("0", "零元整"),
        ("0.00", "零元整"),
        ("0.01", "壹分"),
        ("0.05", "伍分"),
        ("0.09", "玖分"),
        ("0.1", "壹角"),
        ("0.55", "伍角伍分"),
        # Small whole amounts; 拾 always carries its digit.
        ("1", "壹元整"),
        ("9.00", "玖元整"),
        ("10", "壹拾元整"),
        ("11", "壹拾壹元整"),
        ("19", "壹拾玖元整"),
        ("20", "贰拾元整"),
        ("110", "壹佰壹拾元整"),
        ("1010", "壹仟零壹拾元整"),
        ("10010", "壹万零壹拾元整"),
        # Zeros inside a section: one 零 per run.
        ("101", "壹佰零壹元整"),
        ("1001", "壹仟零壹元整"),
        ("1100", "壹仟壹佰元整"),
        ("1409.50", "壹仟肆佰零玖元伍角"),
        ("6007.14", "陆仟零柒元壹角肆分"),
        # Zeros across the 万 boundary.
        ("10000", "壹万元整"),
        ("10001", "壹万零壹元整"),
        ("10100", "壹万零壹佰元整"),
        ("100700", "壹拾万零柒佰元整"),
        ("107000", "壹拾万柒仟元整"),
        ("1000100", "壹佰万零壹佰元整"),
        ("10000001", "壹仟万零壹元整"),
        ("10000010", "壹仟万零壹拾元整"),
        ("10101010", "壹仟零壹拾万壹仟零壹拾元整"),
        ("50000.00", "伍万元整"),
        ("99999999.99", "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
        # 亿 range.
        ("100000000", "壹亿元整"),
        ("100000001", "壹亿零壹元整"),
        ("100010000", "壹亿零壹万元整"),
        ("101000000", "壹亿零壹佰万元整"),
        ("110000000", "壹亿壹仟万元整"),
        ("1000000000", "壹拾亿元整"),
        ("1234567890.12", "壹拾贰亿叁仟肆佰伍拾陆万柒仟捌佰玖拾元零壹角贰分"),
        ("20000000000", "贰佰亿元整"),
        ("100000000.01", "壹亿元零壹分"),
        ("1000000000000", "壹万亿元整"),
        ("1000100000000", "壹万零壹亿元整"),
        (
            "9999999999999999.99",
            "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分",
        ),
        # After 元: 零 when 角 is 0 and 分 is not (mandatory) ...
        ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
        ("325.04", "叁佰贰拾伍元零肆分"),
        ("1.01", "壹元零壹分"),
        ("100.05", "壹佰元零伍分"),
        # ... and when the 元 digit is 0 but 角 is not (the first of the two allowed forms).
        ("1680.32", "壹仟陆佰捌拾元零叁角贰分"),
        ("107000.53", "壹拾万柒仟元零伍角叁分"),
        ("10.50", "壹拾元零伍角"),
        ("10.5", "壹拾元零伍角"),
        ("1000010.07", "壹佰万零壹拾元零柒分"),
        ("24000", "贰万肆仟元整"),
        ("1000.5", "壹仟元零伍角"),
        # 元 digit non-zero with 角: no 零; no 整 after 角 or 分.
        ("1.50", "壹元伍角"),
        ("12345.60", "壹万贰仟叁佰肆拾伍元陆角"),
        ("3.07", "叁元零柒分"),
        # Trailing zeros beyond the fen are accepted when they are zeros.
        ("1.500", "壹元伍角"),
        ("1E+3", "壹仟元整"),
    ],
)
def test_amount_in_capitals(amount: str, expected: str) -> None:
    assert amount_in_capitals(Decimal(amount)) == expected


@pytest.mark.parametrize(
    "amount",
    ["-0.01", "-1", "0.001", "1.005", "12345.678", "NaN", "Infinity", "10000000000000000"],
)
def test_refuses_invalid_amounts(amount: str) -> None:
    with pytest.raises(ValueError):
        amount_in_capitals(Decimal(amount))


@pytest.mark.parametrize("amount", [1.5, 100, "100", True, None])
def test_refuses_non_decimal(amount: Any) -> None:
    with pytest.raises(TypeError):
        amount_in_capitals(amount)
