"""Policy held as data in the database: the dated LPR table, seeded from the packaged file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.lpr import LprRate, LprTable, default_lpr_table
from loanops.db import session_scope
from models.tables import LprRateRow


def seed_lpr(engine: Engine, table: LprTable | None = None) -> int:
    """Insert the packaged announcements the database does not have yet; returns how many.
    Rows already there (including corrections made by hand) are left as they are."""
    table = table or default_lpr_table()
    with session_scope(engine) as s:
        known = {r.effective_date for r in s.exec(select(LprRateRow)).all()}
        missing = [r for r in table.rates if r.effective_date not in known]
        for r in missing:
            s.add(
                LprRateRow(
                    effective_date=r.effective_date,
                    one_year=r.one_year,
                    five_year=r.five_year,
                    source=r.source,
                )
            )
    return len(missing)


def add_lpr(
    engine: Engine,
    *,
    effective_date: date,
    one_year: Decimal,
    five_year: Decimal | None,
    source: str,
) -> None:
    """Record a new LPR announcement; refuses a date already on record or a rate outside (0, 1)."""
    for name, value in (("one_year", one_year), ("five_year", five_year)):
        if value is not None and not (0 < value < 1):
            raise ValueError(f"{name}: must be a fraction between 0 and 1, e.g. 0.0300")
    with session_scope(engine) as s:
        if s.get(LprRateRow, effective_date) is not None:
            raise ValueError(f"effective_date: an LPR for {effective_date} is already on record")
        s.add(
            LprRateRow(
                effective_date=effective_date, one_year=one_year, five_year=five_year, source=source
            )
        )


def lpr_table(engine: Engine) -> LprTable:
    """The LPR table on record (``loanops migrate`` seeds it from the packaged file)."""
    with Session(engine) as s:
        rows = s.exec(select(LprRateRow).order_by(col(LprRateRow.effective_date))).all()
    if not rows:
        raise LookupError("the LPR table is empty: run `loanops migrate` to seed it")
    return LprTable(
        rates=tuple(
            LprRate(
                effective_date=r.effective_date,
                one_year=r.one_year,
                five_year=r.five_year,
                source=r.source,
            )
            for r in rows
        )
    )
