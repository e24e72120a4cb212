"""Business dates and the contact window, in Asia/Shanghai (UTC+8, no daylight saving)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from domain.calendar import business_date, end_of_business_day, next_contact_time

TZ = "Asia/Shanghai"
OPENS, CLOSES = time(8, 0), time(21, 0)


def test_business_date_is_the_shanghai_day() -> None:
    assert business_date(datetime(2026, 11, 28, 15, 59, tzinfo=UTC), TZ) == date(2026, 11, 28)
    assert business_date(datetime(2026, 11, 28, 16, 0, tzinfo=UTC), TZ) == date(2026, 11, 29)


def test_an_installment_is_overdue_from_shanghai_midnight() -> None:
    assert end_of_business_day(date(2026, 12, 31), TZ) == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_contact_inside_the_window_is_immediate() -> None:
    at = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert next_contact_time(at, TZ, opens=OPENS, closes=CLOSES) == at


def test_contact_after_hours_waits_for_the_next_morning() -> None:
    late = datetime(2026, 11, 28, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai
    assert next_contact_time(late, TZ, opens=OPENS, closes=CLOSES) == datetime(
        2026, 11, 29, 0, 0, tzinfo=UTC
    )  # 08:00 on the 29th


def test_contact_before_hours_waits_for_opening_the_same_day() -> None:
    early = datetime(2026, 11, 28, 16, 5, tzinfo=UTC)  # 00:05 on the 29th in Shanghai
    assert next_contact_time(early, TZ, opens=OPENS, closes=CLOSES) == datetime(
        2026, 11, 29, 0, 0, tzinfo=UTC
    )


def test_the_window_closes_at_its_end() -> None:
    closing = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)  # 21:00 sharp
    assert next_contact_time(closing, TZ, opens=OPENS, closes=CLOSES) == datetime(
        2026, 11, 29, 0, 0, tzinfo=UTC
    )


def test_business_days_skip_weekends() -> None:
    from domain.calendar import add_business_days

    friday = date(2026, 11, 27)
    assert add_business_days(friday, 1) == date(2026, 11, 30)  # Monday
    assert add_business_days(friday, 5) == date(2026, 12, 4)  # next Friday
    assert add_business_days(date(2026, 11, 28), 1) == date(2026, 11, 30)  # from a Saturday
    assert add_business_days(friday, 0) == friday
    monday = date(2026, 11, 30)
    assert add_business_days(monday, 4) == date(2026, 12, 4)
    assert add_business_days(monday, 10) == date(2026, 12, 14)
