"""``loanops backup`` → wipe → ``loanops restore`` gives back every table row by row, on SQLite
and PostgreSQL; a corrupted backup, a missing checksum and a non-empty target (without --force)
are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel
from typer.testing import CliRunner

import models.tables  # noqa: F401  (registers the tables)
from loanops.audit import verify_chain
from loanops.backup import BackupError, backup, checksum_path, is_empty, restore
from loanops.cli import app
from loanops.db import make_engine, session_scope
from loanops.seed import seed_demo_users
from loanops.settings import get_settings
from models.audit import append_audit
from tests.conftest import PG_ADMIN_DSN
from tests.portfolio import build_portfolio


def _fill(url: str) -> None:
    """Rows across the tables: the report tests' portfolio (borrowers, applications, loans,
    installments, assessments, classifications, tasks), staff users, audit entries, and the
    policy and catalog seeded by the migration."""
    engine = make_engine(url)
    try:
        build_portfolio(engine)
        seed_demo_users(engine, password="demo1234")
        with session_scope(engine) as s:
            for i in range(3):
                append_audit(
                    s,
                    key=f"backup-test/{i}",
                    actor="manager",
                    action="setting.changed",
                    occurred_at=datetime(2026, 6, 1, 9, i, tzinfo=UTC),
                    detail={"before": i, "after": i + 1},
                )
    finally:
        engine.dispose()


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, ordered by primary key (and the schema revision)."""
    engine = make_engine(url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                out[table.name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
            out["alembic_version"] = [
                tuple(r) for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            ]
        return out
    finally:
        engine.dispose()


def _wipe(url: str) -> None:
    """The database gone, an empty one of the same name in its place."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(str(parsed.database))
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        return
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def test_backup_wipe_restore_gives_every_row_back(fresh_database_url: str, tmp_path: Path) -> None:
    url = fresh_database_url
    _fill(url)
    before = _snapshot(url)
    assert all(before[t] for t in ("applications", "loans", "installments", "users", "tasks"))
    assert len(before["audit_events"]) == 3

    file = tmp_path / "backups" / "loanops.backup"
    info = backup(url, file)
    assert file.is_file() and checksum_path(file).read_text().startswith(info.sha256)

    _wipe(url)
    assert is_empty(url)
    restore(url, file)
    assert _snapshot(url) == before
    engine = make_engine(url)
    try:
        report = verify_chain(engine)
        assert report.intact and report.entries == 3
        # The restored database keeps appending to the same chain.
        with session_scope(engine) as s:
            append_audit(
                s, key="after-restore", actor="x", action="y", occurred_at=datetime.now(UTC)
            )
        assert verify_chain(engine).entries == 4
    finally:
        engine.dispose()


def test_restore_over_a_database_that_holds_rows_needs_force(
    fresh_database_url: str, tmp_path: Path
) -> None:
    url = fresh_database_url
    _fill(url)
    before = _snapshot(url)
    file = tmp_path / "b.backup"
    backup(url, file)
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            append_audit(s, key="later", actor="x", action="y", occurred_at=datetime.now(UTC))
    finally:
        engine.dispose()
    with pytest.raises(BackupError, match=r"not empty.*--force"):
        restore(url, file)
    assert len(_snapshot(url)["audit_events"]) == 4  # nothing changed
    restore(url, file, force=True)
    assert _snapshot(url) == before


def test_a_corrupted_backup_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    _fill(sqlite_url)
    file = tmp_path / "c.backup"
    backup(sqlite_url, file)
    target = f"sqlite:///{tmp_path / 'target.db'}"

    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.backup"
    bad.write_bytes(bytes(data))
    checksum_path(bad).write_text(checksum_path(file).read_text().replace("c.backup", "bad.backup"))
    with pytest.raises(BackupError, match="corrupted"):
        restore(target, bad)

    checksum_path(file).unlink()
    with pytest.raises(BackupError, match="checksum file is missing"):
        restore(target, file)
    assert is_empty(target)


def test_a_backup_of_the_other_kind_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    file = tmp_path / "s.backup"
    backup(sqlite_url, file)
    with pytest.raises(BackupError, match="is a sqlite backup; the database is postgresql"):
        restore("postgresql+psycopg://nobody@127.0.0.1:1/none", file)


def test_backup_and_restore_commands(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(sqlite_url)
    before = _snapshot(sqlite_url)
    runner = CliRunner()
    file = tmp_path / "cli.backup"
    try:
        monkeypatch.setenv("LOANOPS_DATABASE_URL", sqlite_url)
        get_settings.cache_clear()
        done = runner.invoke(app, ["backup", "--out", str(file)])
        assert done.exit_code == 0, done.output
        assert "sqlite backup" in done.stderr and checksum_path(file).is_file()

        refused = runner.invoke(app, ["restore", str(file)])
        assert refused.exit_code == 2 and "--force" in refused.stderr

        new_url = f"sqlite:///{tmp_path / 'new' / 'loanops.db'}"
        monkeypatch.setenv("LOANOPS_DATABASE_URL", new_url)
        get_settings.cache_clear()
        restored = runner.invoke(app, ["restore", str(file)])
        assert restored.exit_code == 0, restored.output
        assert _snapshot(new_url) == before
        verified = runner.invoke(app, ["audit", "verify"])
        assert verified.exit_code == 0 and verified.stdout.startswith("3 entries, chain intact")
    finally:
        get_settings.cache_clear()


def test_the_restored_postgresql_database_keeps_the_audit_protection(
    fresh_database_url: str, tmp_path: Path
) -> None:
    url = fresh_database_url
    if not url.startswith("postgresql"):
        pytest.skip("roles and triggers are PostgreSQL's")
    _fill(url)
    file = tmp_path / "p.backup"
    backup(url, file)
    _wipe(url)
    restore(url, file)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("SET ROLE loanops_app")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM audit_events")
        conn.rollback()
        conn.execute("CREATE ROLE loanops_test_owner2 NOLOGIN")
        conn.execute("GRANT DELETE ON audit_events TO loanops_test_owner2")
        conn.execute("SET ROLE loanops_test_owner2")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM audit_events")
        conn.rollback()
