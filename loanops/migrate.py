"""Run the Alembic migrations programmatically (``loanops migrate``, tests, ``loanops dev``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> int:
    """Migrate the schema, then seed the policy tables (the LPR, the loan policy's and the
    scorecard's version 1) and the product catalog with what the packaged data has and the
    database does not; returns how many rows were added."""
    from loanops.db import make_engine

    command.upgrade(alembic_config(database_url), revision)
    if revision != "head":
        return 0
    engine = make_engine(database_url)
    try:
        return seed_policy(engine)
    finally:
        engine.dispose()


def seed_policy(engine: Engine) -> int:
    """Seed every policy table from the packaged data (rows already there are kept); returns
    how many rows were added."""
    from loanops.policy import seed_loan_policy, seed_lpr
    from loanops.products import seed_products
    from loanops.scorecards import seed_scorecard

    return (
        seed_lpr(engine) + seed_loan_policy(engine) + seed_scorecard(engine) + seed_products(engine)
    )


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
