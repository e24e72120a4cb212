"""Authenticity checks on what identifies a borrower: the PRC resident identity number
(GB 11643-1999, check digit by ISO 7064 MOD 11-2), a mainland mobile number and a bank card
number (Luhn). Each check returns the value normalized for storage, or raises ValueError with a
message naming the reason. Pure: no I/O, and "today" is the caller's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

# GB 11643-1999: weight of position i (1-based from the left) is 2**(18 - i) mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# The check character for each remainder 0..10 of the weighted sum mod 11.
ID_CHECK_CHARS = "10X98765432"

_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_DIGITS = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class ResidentId:
    number: str  # the 18 characters, a check character x upper-cased
    birth_date: date
    sex: Literal["male", "female"]  # from the parity of the 17th digit (odd: male)
    region_code: str  # the first six digits (GB/T 2260 administrative division)


def resident_id_check_char(first17: str) -> str:
    """The check character of the first 17 digits of a resident identity number."""
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def check_resident_id(value: str, *, today: date) -> ResidentId:
    """An 18-character resident identity number: 17 digits and a check character (a digit or
    X, either case), a real birth date not after ``today``, and the right check character."""
    number = value.strip().upper()
    if len(number) != 18:
        raise ValueError(f"must be 18 characters, got {len(number)}")
    if not _ID_SHAPE.fullmatch(number):
        raise ValueError("must be 17 digits followed by a digit or X")
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    try:
        birth_date = date(year, month, day)
    except ValueError:
        raise ValueError(
            f"birth date {number[6:10]}-{number[10:12]}-{number[12:14]} is not a real date"
        ) from None
    if birth_date > today:
        raise ValueError(f"birth date {birth_date.isoformat()} is in the future")
    if resident_id_check_char(number[:17]) != number[17]:
        raise ValueError("check digit does not match")
    return ResidentId(
        number=number,
        birth_date=birth_date,
        sex="male" if int(number[16]) % 2 else "female",
        region_code=number[:6],
    )


def age_on(birth_date: date, on: date) -> int:
    """Whole years of age on ``on``. Someone born on 29 February turns a year older on
    1 March in a common year."""
    if on < birth_date:
        raise ValueError(f"{on.isoformat()} is before the birth date {birth_date.isoformat()}")
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def check_mobile(value: str) -> str:
    """A mainland mobile number: 11 digits starting 13 to 19, optionally written with a +86 or
    86 prefix, spaces and hyphens. Returns the 11 digits."""
    number = _SEPARATORS.sub("", value)
    if number.startswith("+86"):
        number = number[3:]
    elif number.startswith("+"):
        raise ValueError("must be a mainland (+86) mobile number")
    elif number.startswith("86") and len(number) == 13:
        number = number[2:]
    if number and not _DIGITS.fullmatch(number):
        raise ValueError("must contain only digits (a +86 prefix, spaces and hyphens allowed)")
    if len(number) != 11:
        raise ValueError(f"must be 11 digits, got {len(number)}")
    if not _MOBILE.fullmatch(number):
        raise ValueError("must start with 13 to 19 (a mainland mobile number)")
    return number


def luhn_valid(digits: str) -> bool:
    """The Luhn (ISO/IEC 7812-1) check: from the right, every second digit doubled (its digits
    added), the total a multiple of 10."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def check_bank_card(value: str) -> str:
    """A bank card number: 16 to 19 digits (spaces allowed) passing the Luhn check. Returns the
    digits."""
    number = re.sub(r"\s+", "", value)
    if number and not _DIGITS.fullmatch(number):
        raise ValueError("must contain only digits (spaces allowed)")
    if not 16 <= len(number) <= 19:
        raise ValueError(f"must be 16 to 19 digits, got {len(number)}")
    if not luhn_valid(number):
        raise ValueError("check digit does not match (Luhn)")
    return number
