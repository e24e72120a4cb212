"""Money and rate arithmetic: Decimal amounts quantized to the fen (0.01 CNY), half-up.

The one place money is rounded and formatted; every other module calls these helpers.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

FEN = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")
ZERO = Decimal("0.00")


def _as_decimal(x: Decimal | int | str, *, what: str) -> Decimal:
    if isinstance(x, bool) or not isinstance(x, Decimal | int | str):
        raise TypeError(f"{what}: expected Decimal, int or str, got {type(x).__name__}")
    try:
        value = Decimal(x.strip()) if isinstance(x, str) else Decimal(x)
    except InvalidOperation:
        raise ValueError(f"{what}: not a number: {x!r}") from None
    if not value.is_finite():
        raise ValueError(f"{what}: not a finite number: {x!r}")
    return value


def to_fen(x: Decimal | int | str) -> Decimal:
    """Round an amount to the fen, half-up (0.005 → 0.01). Floats are refused."""
    q = _as_decimal(x, what="amount").quantize(FEN, rounding=ROUND_HALF_UP)
    return q if q != 0 else ZERO  # no negative zero


def fen_to_int(x: Decimal) -> int:
    """Amount in yuan → integer fen (for storage); refuses amounts with sub-fen digits."""
    value = _as_decimal(x, what="amount")
    if value != value.quantize(FEN):
        raise ValueError(f"amount: {value} has more than 2 decimal places")
    return int(value.scaleb(2))


def int_to_fen(n: int) -> Decimal:
    """Integer fen (from storage) → amount in yuan with two decimals."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"fen: expected int, got {type(n).__name__}")
    return to_fen(Decimal(n).scaleb(-2))


def format_money(x: Decimal) -> str:
    """'1234.50': two decimals, no thousands separator, half-up."""
    return f"{to_fen(x):f}"


def format_rate(x: Decimal) -> str:
    """A rate as a fraction with six decimals, half-up: Decimal('0.128038018') → '0.128038'."""
    rate = _as_decimal(x, what="rate")
    with localcontext() as ctx:  # enough digits for any magnitude (an absurd cost too)
        ctx.prec = max(28, rate.adjusted() + 10)
        q = rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
    return f"{q if q != 0 else Decimal('0.000000'):f}"


def decimal_rule(name: str, raw: Any) -> Decimal:
    """A decimal rule read from its JSON form (policy, scorecard); ValueError naming the rule."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise ValueError(f"{name}: must be a decimal number, not {raw!r}")
    try:
        number = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"{name}: must be a decimal number, not {raw!r}") from None
    if not number.is_finite():
        raise ValueError(f"{name}: must be a finite number")
    return number
