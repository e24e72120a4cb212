"""The versioned assessment rules held as data: the scorecard with the intake checks' thresholds
it carries (``domain.scorecard.Scorecard``), seeded from ``SCORECARD_V1``. An assessment takes the
newest version in force on its business date and records the number; rows are only ever added."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.scorecard import SCORECARD_V1, Scorecard
from loanops.db import session_scope
from models.tables import ScorecardRow

EMPTY_SCORECARD_TABLE = "the scorecard table is empty: run `loanops migrate` to seed it"


def seed_scorecard(engine: Engine) -> int:
    """Insert ``SCORECARD_V1`` when no version is on record; returns 1 if it did, else 0."""
    row = ScorecardRow(
        version=SCORECARD_V1.version,
        effective_from=SCORECARD_V1.effective_from,
        source=SCORECARD_V1.source,
        rules=SCORECARD_V1.rules(),
    )
    try:
        with session_scope(engine) as s:
            if s.exec(select(ScorecardRow).limit(1)).first() is not None:
                return 0
            s.add(row)
    except IntegrityError:  # a concurrent `loanops migrate` seeded it first
        return 0
    return 1


def add_scorecard(
    engine: Engine, *, rules: dict[str, Any], effective_from: date, source: str, recorded_by: str
) -> Scorecard:
    """Record the next version: the newest version's rules with ``rules`` laid over them (a
    change names only what changes; ``intake`` is merged rule by rule). ValueError naming the
    rule for an invalid card, a change of nothing, or an effective date before the newest
    version's (rules are never changed retroactively); nothing is written then."""
    if not source.strip() or len(source) > 200:
        raise ValueError("source: must be between 1 and 200 characters")
    if not recorded_by.strip() or len(recorded_by) > 64:
        raise ValueError("recorded_by: must be between 1 and 64 characters")
    with session_scope(engine) as s:
        newest = s.exec(select(ScorecardRow).order_by(col(ScorecardRow.version).desc())).first()
        if newest is None:
            raise LookupError(EMPTY_SCORECARD_TABLE)
        if effective_from < newest.effective_from:
            raise ValueError(
                f"effective_from: {effective_from} is before {newest.effective_from}, when "
                f"version {newest.version} took effect; rules are never changed retroactively"
            )
        previous = _card(newest)
        merged = previous.rules()
        for name, value in rules.items():
            if name == "intake" and isinstance(value, dict):
                merged[name] = {**merged[name], **value}
            else:
                merged[name] = value
        card = Scorecard.from_rules(
            version=newest.version + 1, effective_from=effective_from, source=source, rules=merged
        )
        if card.rules() == previous.rules():
            raise ValueError(f"rules: the same as version {previous.version}; nothing would change")
        s.add(
            ScorecardRow(
                version=card.version,
                effective_from=card.effective_from,
                source=card.source,
                rules=card.rules(),
                recorded_by=recorded_by,
            )
        )
        try:
            s.flush()
        except IntegrityError:
            raise ValueError(
                f"version: version {card.version} was recorded meanwhile; add the change again"
            ) from None
    return card


def scorecard_in_force(session: Session, on: date) -> Scorecard:
    """The version an assessment on ``on`` uses: the newest whose effective date has come."""
    row = session.exec(
        select(ScorecardRow)
        .where(col(ScorecardRow.effective_from) <= on)
        .order_by(col(ScorecardRow.effective_from).desc(), col(ScorecardRow.version).desc())
    ).first()
    if row is not None:
        return _card(row)
    first = session.exec(select(ScorecardRow).order_by(col(ScorecardRow.version))).first()
    if first is None:
        raise LookupError(EMPTY_SCORECARD_TABLE)
    raise LookupError(
        f"no scorecard is in force on {on}: the first version takes effect on "
        f"{first.effective_from}"
    )


def scorecard_version(engine: Engine, version: int) -> Scorecard:
    """A version on record (what an assessment recorded); LookupError when there is none."""
    with Session(engine) as s:
        row = s.get(ScorecardRow, version)
    if row is None:
        raise LookupError(f"scorecard version {version} is not on record")
    return _card(row)


def scorecards(engine: Engine) -> list[Scorecard]:
    """Every version on record, oldest first (empty before ``loanops migrate``)."""
    with Session(engine) as s:
        rows = s.exec(select(ScorecardRow).order_by(col(ScorecardRow.version))).all()
    return [_card(r) for r in rows]


def _card(row: ScorecardRow) -> Scorecard:
    return Scorecard.from_rules(
        version=row.version, effective_from=row.effective_from, source=row.source, rules=row.rules
    )
