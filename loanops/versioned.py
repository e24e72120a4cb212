"""Rules held as versioned rows (the loan policy, the scorecard): a version is never changed,
only added with an effective date that is never before the newest one's; the version in force on
a day is the newest whose effective date has come. One implementation for every such table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from loanops.db import session_scope


class Rules(Protocol):
    """A version of some rules (LoanPolicy, Scorecard): its header and its JSON form."""

    @property
    def version(self) -> int: ...
    @property
    def effective_from(self) -> date: ...
    @property
    def source(self) -> str: ...
    def rules(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Rules)
# Builds the rules object of a version from its header and JSON rules (ValueError naming a rule).
Build = Callable[[int, date, str, dict[str, Any]], R]


def seed_first(engine: Engine, table: type[SQLModel], first: Rules) -> int:
    """Insert ``first`` as the table's first version when it has none; 1 if it did, else 0.
    Versions already there are left as they are."""
    row = table(
        version=first.version,
        effective_from=first.effective_from,
        source=first.source,
        rules=first.rules(),
    )
    try:
        with session_scope(engine) as s:
            if s.exec(select(table).limit(1)).first() is not None:
                return 0
            s.add(row)
    except IntegrityError:  # a concurrent `loanops migrate` seeded it first
        return 0
    return 1


def add_version(
    engine: Engine,
    table: type[SQLModel],
    build: Build[R],
    *,
    rules: dict[str, Any],
    effective_from: date,
    source: str,
    recorded_by: str,
    empty: str,
) -> R:
    """Record the next version: the newest version's rules with ``rules`` laid over them (a
    change names only what changes; a rule that is an object is merged key by key). ValueError
    naming the field for an invalid rule, a change of nothing, or an effective date before the
    newest version's; LookupError (``empty``) when there is no version yet. Nothing is written
    then."""
    if not source.strip() or len(source) > 200:
        raise ValueError("source: must be between 1 and 200 characters")
    if not recorded_by.strip() or len(recorded_by) > 64:
        raise ValueError("recorded_by: must be between 1 and 64 characters")
    version_col = col(table.version)  # type: ignore[attr-defined]
    with session_scope(engine) as s:
        newest: Any = s.exec(select(table).order_by(version_col.desc())).first()
        if newest is None:
            raise LookupError(empty)
        if effective_from < newest.effective_from:
            raise ValueError(
                f"effective_from: {effective_from} is before {newest.effective_from}, when "
                f"version {newest.version} took effect; rules are never changed retroactively"
            )
        previous = of_row(newest, build)
        merged = previous.rules()
        for name, value in rules.items():
            if isinstance(value, dict) and isinstance(merged.get(name), dict):
                merged[name] = {**merged[name], **value}
            else:
                merged[name] = value
        added = build(newest.version + 1, effective_from, source, merged)
        if added.rules() == previous.rules():
            raise ValueError(f"rules: the same as version {previous.version}; nothing would change")
        s.add(
            table(
                version=added.version,
                effective_from=added.effective_from,
                source=added.source,
                rules=added.rules(),
                recorded_by=recorded_by,
            )
        )
        try:
            s.flush()
        except IntegrityError:
            raise ValueError(
                f"version: version {added.version} was recorded meanwhile; add the change again"
            ) from None
    return added


def in_force(session: Session, table: type[SQLModel], build: Build[R], on: date, *, what: str) -> R:
    """The version in force on ``on``: the newest whose effective date has come. LookupError
    when the table is empty or its first version comes later."""
    effective = col(table.effective_from)  # type: ignore[attr-defined]
    version = col(table.version)  # type: ignore[attr-defined]
    row = session.exec(
        select(table).where(effective <= on).order_by(effective.desc(), version.desc())
    ).first()
    if row is not None:
        return of_row(row, build)
    first: Any = session.exec(select(table).order_by(version)).first()
    if first is None:
        raise LookupError(f"the {what} table is empty: run `loanops migrate` to seed it")
    raise LookupError(
        f"no {what} is in force on {on}: the first version takes effect on {first.effective_from}"
    )


def of_row(row: Any, build: Build[R]) -> R:
    return build(row.version, row.effective_from, row.source, row.rules)


def version_of(
    engine: Engine, table: type[SQLModel], build: Build[R], version: int, *, what: str
) -> R:
    """One version on record (what a loan or an assessment recorded); LookupError if none."""
    with Session(engine) as s:
        row = s.get(table, version)
    if row is None:
        raise LookupError(f"{what} version {version} is not on record")
    return of_row(row, build)


def all_versions(engine: Engine, table: type[SQLModel], build: Build[R]) -> list[R]:
    """Every version on record, oldest first (empty before ``loanops migrate``)."""
    with Session(engine) as s:
        rows = s.exec(select(table).order_by(col(table.version))).all()  # type: ignore[attr-defined]
    return [of_row(r, build) for r in rows]
