"""The Alembic migrations build exactly the schema the SQLModel tables describe, and unwind fully."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from loanops.db import make_engine
from loanops.migrate import alembic_config, downgrade, upgrade

EXPECTED_TABLES = {
    "users",
    "lpr_rates",
    "borrowers",
    "borrower_versions",
    "applications",
    "documents",
    "loans",
    "installments",
    "payments",
    "disbursements",
    "tasks",
    "notices",
    "audit_events",
    "loan_policies",
}


def _diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(ctx, SQLModel.metadata))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


@pytest.fixture
def migrated_engine(database_url: str) -> Any:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def test_metadata_describes_the_expected_tables() -> None:
    assert set(SQLModel.metadata.tables) == EXPECTED_TABLES


def test_upgraded_schema_matches_metadata(database_url: str, migrated_engine: Engine) -> None:
    assert _tables(migrated_engine) == EXPECTED_TABLES
    assert _current_revision(migrated_engine) == _head(database_url)
    assert _diff(migrated_engine) == []


def test_fresh_sqlite_file_upgrades_to_metadata(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    eng = make_engine(url)
    try:
        assert _tables(eng) == EXPECTED_TABLES
        assert _diff(eng) == []
    finally:
        eng.dispose()


def test_upgrade_at_head_is_a_no_op(database_url: str, migrated_engine: Engine) -> None:
    upgrade(database_url)
    assert _current_revision(migrated_engine) == _head(database_url)
    assert _diff(migrated_engine) == []


def test_downgrade_to_base_drops_everything_and_upgrade_rebuilds(
    database_url: str, migrated_engine: Engine
) -> None:
    downgrade(database_url, "base")
    migrated_engine.dispose()
    assert _tables(migrated_engine) == set()
    assert _current_revision(migrated_engine) is None
    insp = inspect(migrated_engine)
    for table in EXPECTED_TABLES:
        assert not insp.has_table(table)

    upgrade(database_url)
    migrated_engine.dispose()
    assert _tables(migrated_engine) == EXPECTED_TABLES
    assert _current_revision(migrated_engine) == _head(database_url)
    assert _diff(migrated_engine) == []
