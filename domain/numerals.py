"""Chinese financial capital numerals (大写金额) for amounts written on contracts and vouchers.

Rules follow the mainland rules for filling in bills and vouchers
(《支付结算办法》 and its 正确填写票据和结算凭证的基本规定):

* Digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟万亿, currency units 元角分.
* Every 拾 carries its digit, including the leading one: 10 → 壹拾元整, 100000 → 壹拾万元整.
* Inside a four-digit section a run of zeros between non-zero digits is one 零 (1005 → 壹仟零伍);
  a section that starts with zeros after a higher non-zero section gets one 零
  (10000001 → 壹仟万零壹); zeros at the end of a section are absorbed by 万/亿 and not written
  (107000 → 壹拾万柒仟).
* 整 follows 元 when there is neither 角 nor 分; no 整 after 角 or 分 (0.50 → 伍角).
* After 元, one 零 is written when 角 is 0 and 分 is not (10.05 → 壹拾元零伍分, mandatory) and
  when the 元 digit is 0 but 角 is not (1680.32 → 壹仟陆佰捌拾元零叁角贰分; the rules allow
  either form here, this is the first one they list).
* Amounts below one yuan have no 元 and no leading 零 (0.05 → 伍分); zero is 零元整.
"""

from __future__ import annotations

from decimal import Decimal

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SECTION_UNITS = ("仟", "佰", "拾", "")
_WAN = 10**4
_YI = 10**8
# Above 9999万亿 the words stop being standard (亿亿), so such amounts are refused.
_LIMIT = Decimal(10**16)
_CENT = Decimal("0.01")


def amount_in_capitals(amount: Decimal) -> str:
    """Return ``amount`` (yuan, >= 0, at most two decimals) in Chinese capital numerals.

    Raises ``TypeError`` for anything but a ``Decimal`` and ``ValueError`` for a negative,
    non-finite or too large amount, or one with a non-zero third decimal.
    """
    if isinstance(amount, bool) or not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"amount must be finite: {amount}")
    if amount < 0:
        raise ValueError(f"amount must not be negative: {amount}")
    if amount >= _LIMIT:
        raise ValueError(f"amount is too large for capital numerals: {amount}")
    if amount != amount.quantize(_CENT):
        raise ValueError(f"amount has more than two decimals: {amount}")

    fen_total = int(amount.quantize(_CENT).scaleb(2))
    yuan, cents = divmod(fen_total, 100)
    jiao, fen = divmod(cents, 10)

    if yuan == 0 and cents == 0:
        return "零元整"
    words = f"{_integer(yuan)}元" if yuan else ""
    if cents == 0:
        return words + "整"
    if yuan and (jiao == 0 or yuan % 10 == 0):
        words += "零"
    if jiao:
        words += f"{_DIGITS[jiao]}角"
    if fen:
        words += f"{_DIGITS[fen]}分"
    return words


def _integer(n: int) -> str:
    """Words for a positive integer below 10**16, without the currency unit."""
    if n >= _YI:
        high, low = divmod(n, _YI)
        return _integer(high) + "亿" + _lower(low, _YI)
    if n >= _WAN:
        high, low = divmod(n, _WAN)
        return _section(high) + "万" + _lower(low, _WAN)
    return _section(n)


def _lower(low: int, unit: int) -> str:
    """Words for the part below a written 万/亿, with 零 when its leading digit is 0."""
    if low == 0:
        return ""
    zero = "零" if low < unit // 10 else ""
    return zero + _integer(low)


def _section(n: int) -> str:
    """Words for 1..9999; leading zeros are not written, inner runs of zeros become one 零."""
    words = ""
    pending_zero = False
    for digit_char, unit in zip(f"{n:04d}", _SECTION_UNITS, strict=True):
        digit = int(digit_char)
        if digit == 0:
            pending_zero = bool(words)
            continue
        if pending_zero:
            words += "零"
            pending_zero = False
        words += _DIGITS[digit] + unit
    return words
