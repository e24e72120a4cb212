"""The versioned assessment rules held as data: the scorecard with the intake checks' thresholds
it carries (``domain.scorecard.Scorecard``), seeded from ``SCORECARD_V1``. An assessment takes the
newest version in force on its business date and records the number; rows are only ever added."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from domain.scorecard import SCORECARD_V1, Scorecard
from loanops.versioned import add_version, all_versions, in_force, seed_first, version_of
from models.tables import ScorecardRow

EMPTY_SCORECARD_TABLE = "the scorecard table is empty: run `loanops migrate` to seed it"


def seed_scorecard(engine: Engine) -> int:
    """Insert ``SCORECARD_V1`` when no version is on record; returns 1 if it did, else 0."""
    return seed_first(engine, ScorecardRow, SCORECARD_V1)


def add_scorecard(
    engine: Engine, *, rules: dict[str, Any], effective_from: date, source: str, recorded_by: str
) -> Scorecard:
    """Record the next version: the newest version's rules with ``rules`` laid over them (a
    change names only what changes; ``intake`` is merged rule by rule). ValueError naming the
    rule for an invalid card, a change of nothing, or an effective date before the newest
    version's (rules are never changed retroactively); nothing is written then."""
    return add_version(
        engine,
        ScorecardRow,
        _build,
        rules=rules,
        effective_from=effective_from,
        source=source,
        recorded_by=recorded_by,
        empty=EMPTY_SCORECARD_TABLE,
    )


def scorecard_in_force(session: Session, on: date) -> Scorecard:
    """The version an assessment on ``on`` uses: the newest whose effective date has come."""
    return in_force(session, ScorecardRow, _build, on, what="scorecard")


def scorecard_version(engine: Engine, version: int) -> Scorecard:
    """A version on record (what an assessment recorded); LookupError when there is none."""
    return version_of(engine, ScorecardRow, _build, version, what="scorecard")


def scorecards(engine: Engine) -> list[Scorecard]:
    """Every version on record, oldest first (empty before ``loanops migrate``)."""
    return all_versions(engine, ScorecardRow, _build)


def _build(version: int, effective_from: date, source: str, rules: dict[str, Any]) -> Scorecard:
    return Scorecard.from_rules(
        version=version, effective_from=effective_from, source=source, rules=rules
    )
