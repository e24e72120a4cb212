"""Resident identity numbers, mobile numbers and bank cards: tables of valid and invalid values,
and properties checked against check characters computed by independent formulas."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.identity import (
    ResidentId,
    age_on,
    check_bank_card,
    check_mobile,
    check_resident_id,
)

TODAY = date(2026, 11, 29)


def mod11_2_check(first17: str) -> str:
    """ISO 7064 MOD 11-2 from its defining congruence (not the module's weight table): the
    check value c makes sum(a_i * 2**(18 - i) for i in 1..18) ≡ 1 (mod 11), with a_18 = c and
    10 written X."""
    partial = sum(int(d) * 2 ** (17 - i) for i, d in enumerate(first17))
    (c,) = [c for c in range(11) if (partial + c) % 11 == 1]
    return "X" if c == 10 else str(c)


def with_check(first17: str) -> str:
    return first17 + mod11_2_check(first17)


def luhn_complete(payload: str) -> str:
    """The payload with the Luhn digit appended (the digit that makes the doubled sum end in 0),
    found by trying each, with the doubling written out plainly."""
    for last in "0123456789":
        digits = [int(c) for c in payload + last]
        total = 0
        for pos_from_right, d in enumerate(reversed(digits)):
            if pos_from_right % 2 == 1:
                d = sum(int(c) for c in str(2 * d))
            total += d
        if total % 10 == 0:
            return payload + last
    raise AssertionError("unreachable")


def test_the_formula_used_here_agrees_with_the_standards_example() -> None:
    # GB 11643-1999's own example number: 11010519491231002X (check character X).
    assert with_check("11010519491231002") == "11010519491231002X"


# ---- resident identity numbers ------------------------------------------------------------

VALID_IDS: list[tuple[str, ResidentId]] = [
    # The standard's example: X as the check character, a woman (17th digit 2 is even).
    (
        "11010519491231002X",
        ResidentId("11010519491231002X", date(1949, 12, 31), "female", "110105"),
    ),
    # A lower-case x is the same number.
    (
        "11010519491231002x",
        ResidentId("11010519491231002X", date(1949, 12, 31), "female", "110105"),
    ),
    # 29 February of leap years: 2000 (divisible by 400) and 2024.
    ("440304200002291236", ResidentId("440304200002291236", date(2000, 2, 29), "male", "440304")),
    ("310115202402294565", ResidentId("310115202402294565", date(2024, 2, 29), "female", "310115")),
    ("320582198706153010", ResidentId("320582198706153010", date(1987, 6, 15), "male", "320582")),
    (
        " 330106199003070049 ",
        ResidentId("330106199003070049", date(1990, 3, 7), "female", "330106"),
    ),
]


@pytest.mark.parametrize(("value", "expected"), VALID_IDS)
def test_valid_resident_ids(value: str, expected: ResidentId) -> None:
    assert check_resident_id(value, today=TODAY) == expected


INVALID_IDS: list[tuple[str, str]] = [
    ("", "must be 18 characters, got 0"),
    ("11010519491231", "must be 18 characters, got 14"),
    ("11010519491231002", "must be 18 characters, got 17"),
    ("11010519491231002X0", "must be 18 characters, got 19"),
    ("11010519491231002Y", "must be 17 digits followed by a digit or X"),
    ("1101051949123100X2", "must be 17 digits followed by a digit or X"),
    ("11O10519491231002X", "must be 17 digits followed by a digit or X"),  # letter O for 0
    (
        "１１０１０５１９４９１２３１００２X",
        "must be 17 digits followed by a digit or X",
    ),  # full-width
    ("110105194912310020", "check digit does not match"),
    ("110105194912310029", "check digit does not match"),
    ("11010519491231003X", "check digit does not match"),
    # 29 February of common years, with otherwise correct check characters: 2023, and 1900
    # (a century year not divisible by 400).
    ("310115202302294568", "birth date 2023-02-29 is not a real date"),
    ("110105190002291239", "birth date 1900-02-29 is not a real date"),
    (with_check("11010519901301001"), "birth date 1990-13-01 is not a real date"),
    (with_check("11010519900431001"), "birth date 1990-04-31 is not a real date"),
    (with_check("11010519900100001"), "birth date 1990-01-00 is not a real date"),
    ("110105209901010012", "birth date 2099-01-01 is in the future"),
    (with_check("11010520261130001"), "birth date 2026-11-30 is in the future"),  # tomorrow
]


@pytest.mark.parametrize(("value", "reason"), INVALID_IDS)
def test_invalid_resident_ids_name_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_resident_id(value, today=TODAY)
    assert str(exc.value) == reason


def test_a_birth_date_of_today_is_not_in_the_future() -> None:
    number = with_check("11010520261129001")
    assert check_resident_id(number, today=TODAY).birth_date == TODAY
    with pytest.raises(ValueError, match="is in the future"):
        check_resident_id(number, today=TODAY - timedelta(days=1))


ids = st.builds(
    lambda region, born, seq: f"{region:06d}{born:%Y%m%d}{seq:03d}",
    st.integers(0, 999_999),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.integers(0, 999),
)


@settings(max_examples=300)
@given(first17=ids, data=st.data())
def test_a_correct_check_character_passes_and_any_single_change_fails(
    first17: str, data: st.DataObject
) -> None:
    number = with_check(first17)
    parsed = check_resident_id(number, today=TODAY)
    assert parsed.number == number
    assert parsed.sex == ("male" if int(number[16]) % 2 else "female")

    pos = data.draw(st.integers(0, 17), label="position")
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    new = data.draw(st.sampled_from([c for c in alphabet if c != number[pos]]), label="new")
    changed = number[:pos] + new + number[pos + 1 :]
    with pytest.raises(ValueError) as exc:
        check_resident_id(changed, today=TODAY)
    if not 6 <= pos < 14:  # the birth date is untouched: only the check character can object
        assert str(exc.value) == "check digit does not match"


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1949, 12, 31), TODAY, 76),
        (date(1990, 11, 30), TODAY, 35),  # the day before the birthday
        (date(1990, 11, 29), TODAY, 36),  # the birthday
        (date(2026, 11, 29), TODAY, 0),
        (date(2000, 2, 29), date(2025, 2, 28), 24),  # born on 29 February: in a common year …
        (date(2000, 2, 29), date(2025, 3, 1), 25),  # … a year older on 1 March
        (date(2000, 2, 29), date(2028, 2, 29), 28),
        (date(2000, 2, 29), date(2028, 2, 28), 27),
    ],
)
def test_age_on(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_age_before_birth_is_refused() -> None:
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(date(2000, 1, 2), date(2000, 1, 1))


# ---- mobile numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("13800138000", "13800138000"),
        ("19912345678", "19912345678"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("86-138-0013-8000", "13800138000"),
    ],
)
def test_valid_mobiles_are_normalized(value: str, normalized: str) -> None:
    assert check_mobile(value) == normalized


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must be 11 digits, got 0"),
        ("1380013800", "must be 11 digits, got 10"),
        ("138001380001", "must be 11 digits, got 12"),
        ("+86 1380013800", "must be 11 digits, got 10"),
        ("12800138000", "must start with 13 to 19"),
        ("10086100861", "must start with 13 to 19"),
        ("02112345678", "must start with 13 to 19"),
        ("1380013800O", "must contain only digits"),  # letter O
        ("138.0013.8000", "must contain only digits"),
        ("+1 415 555 0100", "must be a mainland (+86) mobile number"),
        ("+852 9123 4567", "must be a mainland (+86) mobile number"),
    ],
)
def test_invalid_mobiles_name_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_mobile(value)
    assert str(exc.value).startswith(reason)


# ---- bank cards ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("6225880123456783", "6225880123456783"),  # 16 digits
        ("62284804025648900", "62284804025648900"),  # 17
        ("621700031000001231", "621700031000001231"),  # 18
        ("6222020200112233446", "6222020200112233446"),  # 19 (the demo borrower's)
        ("6225 8801 2345 6783", "6225880123456783"),
        ("4111111111111111", "4111111111111111"),
    ],
)
def test_valid_bank_cards_are_normalized(value: str, normalized: str) -> None:
    assert check_bank_card(value) == normalized


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must be 16 to 19 digits, got 0"),
        ("622588012345678", "must be 16 to 19 digits, got 15"),
        ("62220202001122334461", "must be 16 to 19 digits, got 20"),
        ("6222020200112233445", "check digit does not match (Luhn)"),
        ("6225880123456784", "check digit does not match (Luhn)"),
        ("6225880123456738", "check digit does not match (Luhn)"),  # two digits swapped
        ("6225a80123456783", "must contain only digits"),
        ("6225-8801-2345-6783", "must contain only digits"),
    ],
)
def test_invalid_bank_cards_name_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError) as exc:
        check_bank_card(value)
    assert str(exc.value).startswith(reason)


@settings(max_examples=300)
@given(
    payload=st.text("0123456789", min_size=15, max_size=18),
    data=st.data(),
)
def test_a_luhn_complete_card_passes_and_any_single_change_fails(
    payload: str, data: st.DataObject
) -> None:
    card = luhn_complete(payload)
    assert check_bank_card(card) == card
    pos = data.draw(st.integers(0, len(card) - 1), label="position")
    new = data.draw(st.sampled_from([c for c in "0123456789" if c != card[pos]]), label="new")
    with pytest.raises(ValueError, match="Luhn"):
        check_bank_card(card[:pos] + new + card[pos + 1 :])
