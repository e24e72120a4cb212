"""Business dates: due dates and payment dates are days in the business time zone (Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def business_date(instant: datetime, tz_name: str) -> date:
    """The calendar day ``instant`` falls on in the business time zone."""
    return instant.astimezone(zone(tz_name)).date()


def local_instant(day: date, at: time, tz_name: str) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in the business time zone."""
    return datetime.combine(day, at, tzinfo=zone(tz_name)).astimezone(UTC)


def end_of_business_day(day: date, tz_name: str) -> datetime:
    """The first instant after ``day`` ends: an installment unpaid by then is overdue."""
    return local_instant(day + timedelta(days=1), time(0, 0), tz_name)


def next_contact_time(at: datetime, tz_name: str, *, opens: time, closes: time) -> datetime:
    """The first instant at or after ``at`` inside the daily contact window [opens, closes) in
    the business time zone: collection conduct allows borrower contact only then."""
    local = at.astimezone(zone(tz_name))
    if opens <= local.time() < closes:
        return at
    day = local.date() if local.time() < opens else local.date() + timedelta(days=1)
    return local_instant(day, opens, tz_name)


def add_business_days(start: date, days: int) -> date:
    """The day ``days`` working days (Monday to Friday) after ``start``. Public holidays and the
    make-up working weekends of the State Council's calendar are not known here: a deadline that
    falls in a holiday is one a person may extend."""
    if days < 0:
        raise ValueError("days: must not be negative")
    day = start
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day
