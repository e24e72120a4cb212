"""Policy held as data in the database: the dated LPR table, seeded from the packaged file, and
the versioned loan policy, seeded from ``domain.policy.DEFAULT_POLICY``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.lpr import LprRate, LprTable, default_lpr_table
from domain.policy import DEFAULT_POLICY, LoanPolicy
from loanops.db import session_scope
from loanops.versioned import add_version, all_versions, in_force, seed_first, version_of
from models.tables import LoanPolicyRow, LprRateRow

EMPTY_POLICY_TABLE = "the loan policy table is empty: run `loanops migrate` to seed it"


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


def seed_loan_policy(engine: Engine) -> int:
    """Insert ``DEFAULT_POLICY`` as version 1 when no version is on record; returns how many
    versions were added (1 or 0). Versions already there are left as they are."""
    return seed_first(engine, LoanPolicyRow, DEFAULT_POLICY)


def add_loan_policy(
    engine: Engine, *, rules: dict[str, Any], effective_from: date, source: str, recorded_by: str
) -> LoanPolicy:
    """Record the next version: the newest version's rules with ``rules`` laid over them (a
    change names only what changes; ``sla_hours`` is merged per task kind). ValueError naming
    the field for an invalid rule, a change of nothing, or an effective date before the newest
    version's (policy is never changed retroactively); nothing is written then."""
    return add_version(
        engine,
        LoanPolicyRow,
        _build,
        rules=rules,
        effective_from=effective_from,
        source=source,
        recorded_by=recorded_by,
        empty=EMPTY_POLICY_TABLE,
    )


def loan_policy_in_force(engine: Engine, on: date) -> LoanPolicy:
    """The version a loan starting on ``on`` takes: the newest whose effective date has come."""
    with Session(engine) as s:
        return in_force(s, LoanPolicyRow, _build, on, what="loan policy")


def loan_policy_version(engine: Engine, version: int) -> LoanPolicy:
    """The version a loan recorded when it started; LookupError when there is no such version."""
    return version_of(engine, LoanPolicyRow, _build, version, what="loan policy")


def loan_policies(engine: Engine) -> list[LoanPolicy]:
    """Every version on record, oldest first (empty before ``loanops migrate``)."""
    return all_versions(engine, LoanPolicyRow, _build)


def _build(version: int, effective_from: date, source: str, rules: dict[str, Any]) -> LoanPolicy:
    return LoanPolicy.from_rules(
        version=version, effective_from=effective_from, source=source, rules=rules
    )


def loan_policy_version_in(session: Session, version: int) -> LoanPolicy:
    """``loan_policy_version`` read through ``session``'s own connection: a request that already
    holds one does not take a second from the pool (twenty concurrent requests each waiting for
    a second connection would exhaust it)."""
    row = session.get(LoanPolicyRow, version)
    if row is None:
        raise LookupError(f"loan policy version {version} is not on record")
    return _build(row.version, row.effective_from, row.source, row.rules)
