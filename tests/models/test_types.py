"""Column types: money and rates stay exact, timestamps stay UTC and aware, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Engine, func, type_coerce
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col, select

from loanops.db import make_engine
from models.tables import Borrower, Loan

CENT = Decimal("0.01")


def _loan(**overrides: Any) -> Loan:
    no = f"T{uuid.uuid4().hex[:20]}"
    fields: dict[str, Any] = {
        "application_no": no,
        "contract_no": f"C-{no}",
        "principal": Decimal("10000.00"),
        "annual_rate": Decimal("0.108000"),
        "term_months": 12,
        "method": "equal_installment",
        "apr": Decimal("0.108000"),
        "apr_compound": Decimal("0.113000"),
    }
    fields.update(overrides)
    return Loan(**fields)


def _borrower(income: Any) -> Borrower:
    return Borrower(
        name="张三",
        id_number=uuid.uuid4().hex[:18],
        phone="13800000000",
        bank_card="6222000000000000",
        monthly_income=income,
    )


def _store(engine: Engine, row: Any) -> uuid.UUID:
    with Session(engine) as s:
        s.add(row)
        s.commit()
        row_id: uuid.UUID = row.id
    return row_id


def _load_loan(engine: Engine, loan_id: uuid.UUID) -> Loan:
    with Session(engine) as s:
        loan = s.get(Loan, loan_id)
        assert loan is not None
        return loan


def _count_loans(engine: Engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(Loan)).one()


def _raw(engine: Engine, column: str, loan_id: uuid.UUID) -> Any:
    """The value as the database holds it (the integer count of units)."""
    with engine.connect() as conn:
        table = Loan.__table__  # type: ignore[attr-defined]
        raw = type_coerce(table.c[column], BigInteger)
        return conn.execute(select(raw).where(table.c.id == loan_id)).scalar_one()


# ---- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.01"), "0.01"),
        (Decimal("0.10"), "0.10"),
        (Decimal("0.1"), "0.10"),
        (Decimal("1234567.89"), "1234567.89"),
        (Decimal("99999999999.99"), "99999999999.99"),
        (Decimal("0"), "0.00"),
        (Decimal("0.00"), "0.00"),
        (Decimal("5"), "5.00"),
        (Decimal("1.2300"), "1.23"),
        (Decimal("1E+3"), "1000.00"),
    ],
)
def test_money_round_trips_exactly(engine: Engine, value: Decimal, text: str) -> None:
    loan_id = _store(
        engine, _loan(principal=value, upfront_fee=value, monthly_fee=value, credit=value)
    )
    loan = _load_loan(engine, loan_id)
    for got in (loan.principal, loan.upfront_fee, loan.monthly_fee, loan.credit):
        assert isinstance(got, Decimal)
        assert got == value
        assert str(got) == text
    # Stored as an integer number of fen, never as a float.
    assert _raw(engine, "principal", loan_id) == int(value * 100)


def test_money_on_borrower_round_trips(engine: Engine) -> None:
    borrower = _borrower(Decimal("12345.60"))
    borrower_id = _store(engine, borrower)
    with Session(engine) as s:
        got = s.get(Borrower, borrower_id)
        assert got is not None
        assert got.monthly_income == Decimal("12345.6")
        assert str(got.monthly_income) == "12345.60"


@pytest.mark.parametrize("value", [Decimal("0.001"), Decimal("1.005"), Decimal("99.999")])
def test_money_with_three_places_is_refused_and_nothing_written(
    engine: Engine, value: Decimal
) -> None:
    with Session(engine) as s:
        s.add(_loan(principal=value))
        with pytest.raises((ValueError, StatementError)) as exc:
            s.commit()
        s.rollback()
    assert "decimal places" in str(exc.value)
    assert _count_loans(engine) == 0


def test_one_bad_column_refuses_the_whole_row(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(_loan(principal=Decimal("100.00"), credit=Decimal("0.005")))
        with pytest.raises((ValueError, StatementError)):
            s.commit()
        s.rollback()
    assert _count_loans(engine) == 0


def test_float_is_converted_through_its_shortest_repr(engine: Engine) -> None:
    """Documented behaviour: a float is read as ``Decimal(str(f))``, so ``0.1`` is 0.10 exactly
    (not 0.1000000000000000055511151231257827...), and 1234567.89 stays 1234567.89."""
    loan_id = _store(engine, _loan(principal=0.1, upfront_fee=1234567.89, credit=7.0))
    loan = _load_loan(engine, loan_id)
    assert isinstance(loan.principal, Decimal)
    assert str(loan.principal) == "0.10"
    assert str(loan.upfront_fee) == "1234567.89"
    assert str(loan.credit) == "7.00"
    assert _raw(engine, "principal", loan_id) == 10


def test_inexact_float_is_refused_not_rounded(engine: Engine) -> None:
    """0.1 + 0.2 is 0.30000000000000004 as a float: it must not be silently stored as 0.30."""
    with Session(engine) as s:
        s.add(_loan(principal=0.1 + 0.2))
        with pytest.raises((ValueError, StatementError)):
            s.commit()
        s.rollback()
    assert _count_loans(engine) == 0


# ---- rates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.108000"), "0.108000"),
        (Decimal("0.108"), "0.108000"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("0.24"), "0.240000"),
        (Decimal("0"), "0.000000"),
        (Decimal("1.234567"), "1.234567"),
    ],
)
def test_rate_round_trips_with_six_places(engine: Engine, value: Decimal, text: str) -> None:
    loan_id = _store(engine, _loan(annual_rate=value, apr=value, apr_compound=value))
    loan = _load_loan(engine, loan_id)
    for got in (loan.annual_rate, loan.apr, loan.apr_compound):
        assert isinstance(got, Decimal)
        assert got == value
        assert str(got) == text
    assert _raw(engine, "annual_rate", loan_id) == int(value * 1_000_000)


def test_rate_with_seven_places_is_refused(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(_loan(annual_rate=Decimal("0.1080001")))
        with pytest.raises((ValueError, StatementError)):
            s.commit()
        s.rollback()
    assert _count_loans(engine) == 0


# ---- timestamps -----------------------------------------------------------------------------


def test_utc_timestamp_round_trips_aware(engine: Engine) -> None:
    at = datetime(2026, 3, 15, 9, 30, 12, 345678, tzinfo=UTC)
    loan_id = _store(engine, _loan(disbursed_at=at, created_at=at))
    loan = _load_loan(engine, loan_id)
    for got in (loan.disbursed_at, loan.created_at):
        assert got is not None
        assert got.tzinfo is not None
        assert got.utcoffset() == timedelta(0)
        assert got == at
        assert got.replace(tzinfo=None) == at.replace(tzinfo=None)


def test_offset_timestamp_comes_back_as_same_instant_in_utc(engine: Engine) -> None:
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2026, 1, 1, 7, 15, tzinfo=shanghai)  # 2025-12-31 23:15 UTC
    loan_id = _store(engine, _loan(disbursed_at=at))
    got = _load_loan(engine, loan_id).disbursed_at
    assert got is not None
    assert got == at
    assert got.utcoffset() == timedelta(0)
    assert (got.year, got.month, got.day, got.hour, got.minute) == (2025, 12, 31, 23, 15)


def test_filtering_by_aware_timestamp_uses_the_instant(engine: Engine) -> None:
    at = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    loan_id = _store(engine, _loan(disbursed_at=at))
    shanghai = timezone(timedelta(hours=8))
    with Session(engine) as s:
        found = s.exec(
            select(Loan.id).where(Loan.disbursed_at == datetime(2026, 1, 1, 8, tzinfo=shanghai))
        ).all()
        assert found == [loan_id]
        later = s.exec(
            select(Loan.id).where(
                col(Loan.disbursed_at) > datetime(2026, 1, 1, 7, 59, tzinfo=shanghai)
            )
        ).all()
        assert later == [loan_id]


def test_naive_timestamp_is_refused(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(_loan(disbursed_at=datetime(2026, 1, 1, 12, 0)))
        with pytest.raises((ValueError, StatementError)) as exc:
            s.commit()
        s.rollback()
    assert "timezone-aware" in str(exc.value)
    assert _count_loans(engine) == 0


def test_null_money_and_timestamp_stay_null(engine: Engine) -> None:
    loan_id = _store(engine, _loan())
    loan = _load_loan(engine, loan_id)
    assert loan.disbursed_at is None
    assert loan.settled_at is None


# ---- property: every 2-place amount below 10**11 round-trips (SQLite, fast) ------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    value=st.decimals(
        min_value=Decimal("0"),
        max_value=Decimal("99999999999.99"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_money_round_trip_property(sqlite_url: str, value: Decimal) -> None:
    eng = make_engine(sqlite_url)
    try:
        loan_id = _store(eng, _loan(principal=value, credit=value))
        loan = _load_loan(eng, loan_id)
        expected = value.quantize(CENT)
        assert loan.principal == value
        assert str(loan.principal) == str(expected)
        assert str(loan.credit) == str(expected)
    finally:
        eng.dispose()
