"""The audit trail is a hash chain: appends from many threads never fork it; an edited, a deleted
and a reordered entry are each reported by ``verify_chain`` / ``loanops audit verify``; on
PostgreSQL the application role cannot change audit rows; an upgraded database's existing
entries are chained by the migration."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from domain.audit_chain import GENESIS
from loanops.audit import verify_chain
from loanops.cli import app
from loanops.db import make_engine, session_scope
from loanops.migrate import upgrade
from loanops.settings import get_settings
from models.audit import append_audit
from models.tables import AuditChainHead, AuditEvent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _append(engine: Engine, n: int, prefix: str = "e") -> None:
    for i in range(n):
        with session_scope(engine) as s:
            append_audit(
                s,
                key=f"{prefix}/{i}",
                actor="alice",
                action="thing.done",
                occurred_at=T0 + timedelta(minutes=i),
                application_no=f"A{i:03d}",
                detail={"before": {"n": i}, "after": {"n": i + 1}, "note": "说明", "f": 1.5},
            )


def _rows(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as s:
        return list(s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all())


def _raw(engine: Engine, sql: str, **params: object) -> None:
    """Tamper as the database's owner would (PostgreSQL: the superuser the tests connect as)."""
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def test_entries_are_chained_in_order(engine: Engine) -> None:
    _append(engine, 3)
    rows = _rows(engine)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    report = verify_chain(engine)
    assert report.intact and report.entries == 3
    assert str(report) == f"3 entries, chain intact (head {rows[2].hash})"
    with Session(engine) as s:
        head = s.get(AuditChainHead, 1)
        assert head is not None and (head.seq, head.hash) == (3, rows[2].hash)


def test_a_key_appended_twice_in_one_transaction_is_written_once(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert append_audit(s, key="k", actor="a", action="x", occurred_at=T0)
        assert not append_audit(s, key="k", actor="a", action="x", occurred_at=T0)
    with session_scope(engine) as s:
        assert not append_audit(s, key="k", actor="a", action="x", occurred_at=T0)
    assert len(_rows(engine)) == 1


def test_a_rolled_back_transaction_writes_no_entry(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        append_audit(s, key="gone", actor="a", action="x", occurred_at=T0)
        raise RuntimeError("refused")
    _append(engine, 1)
    assert [r.event_key for r in _rows(engine)] == ["e/0"]
    assert verify_chain(engine).intact


def test_concurrent_writers_never_fork_the_chain(engine: Engine) -> None:
    threads, per_thread = 6, 8
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            _append(engine, per_thread, prefix=f"t{t}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    rows = _rows(engine)
    assert [r.seq for r in rows] == list(range(1, threads * per_thread + 1))
    assert len({r.prev_hash for r in rows}) == len(rows)  # no two entries follow the same one
    report = verify_chain(engine)
    assert report.intact and report.entries == threads * per_thread


def test_an_edited_entry_is_detected(engine: Engine) -> None:
    _append(engine, 5)
    _raw(engine, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    report = verify_chain(engine)
    assert not report.intact
    assert report.problem == "entry 3 (e/2) is altered: its hash does not match"


def test_an_edited_detail_is_detected(engine: Engine) -> None:
    _append(engine, 5)
    _raw(engine, """UPDATE audit_events SET detail = '{"note": "x"}' WHERE seq = 4""")
    assert verify_chain(engine).problem == "entry 4 (e/3) is altered: its hash does not match"


def test_a_deleted_entry_is_detected(engine: Engine) -> None:
    _append(engine, 5)
    _raw(engine, "DELETE FROM audit_events WHERE seq = 2")
    assert verify_chain(engine).problem == "entry 2 is missing (the next entry on record is 3)"


def test_a_deleted_last_entry_is_detected(engine: Engine) -> None:
    _append(engine, 5)
    _raw(engine, "DELETE FROM audit_events WHERE seq = 5")
    assert verify_chain(engine).problem == "entry 5 is missing (the chain head records 5 entries)"


def test_a_reordered_entry_is_detected(engine: Engine) -> None:
    _append(engine, 5)
    _raw(engine, "UPDATE audit_events SET seq = -1 WHERE seq = 2")
    _raw(engine, "UPDATE audit_events SET seq = 2 WHERE seq = 3")
    _raw(engine, "UPDATE audit_events SET seq = 3 WHERE seq = -1")
    assert verify_chain(engine).problem == "entry 2 (e/2) is reordered: it was written as entry 3"


def test_audit_verify_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("LOANOPS_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    engine = make_engine(sqlite_url)
    runner = CliRunner()
    try:
        _append(engine, 4)
        ok = runner.invoke(app, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert ok.stdout.startswith("4 entries, chain intact")
        _raw(engine, "UPDATE audit_events SET action = 'nothing' WHERE seq = 1")
        broken = runner.invoke(app, ["audit", "verify"])
        assert broken.exit_code == 1
        assert "entry 1 (e/0) is altered" in broken.stderr
    finally:
        engine.dispose()
        get_settings.cache_clear()


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_the_application_role_cannot_change_audit_rows(database_url: str, engine: Engine) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("database roles and triggers are PostgreSQL's")
    _append(engine, 2)
    with psycopg.connect(_pg_dsn(database_url)) as conn:
        conn.execute("SET ROLE loanops_app")
        # The role reads and appends...
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (2,)
        for sql in (
            "UPDATE audit_events SET actor = 'mallory'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
            conn.rollback()
            conn.execute("SET ROLE loanops_app")
    # The owner, if not a superuser, is stopped by the trigger even though it may UPDATE.
    with psycopg.connect(_pg_dsn(database_url)) as conn:
        conn.execute("DROP ROLE IF EXISTS loanops_test_owner")
        conn.execute("CREATE ROLE loanops_test_owner NOLOGIN")
        conn.execute("GRANT SELECT, UPDATE, DELETE ON audit_events TO loanops_test_owner")
        conn.execute("SET ROLE loanops_test_owner")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE audit_events SET actor = 'mallory'")
        conn.rollback()  # the role is never committed
    assert verify_chain(engine).intact


def test_the_owner_changes_audit_rows_only_when_it_says_so(
    database_url: str, engine: Engine
) -> None:
    """An owner that is not a superuser (managed PostgreSQL) is refused too, unless the session
    set ``loanops.audit_maintenance = on`` (an owner-run retention job)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("database roles and triggers are PostgreSQL's")
    _append(engine, 2)
    with psycopg.connect(_pg_dsn(database_url)) as conn:
        conn.execute("DROP ROLE IF EXISTS loanops_test_owner3")
        conn.execute("CREATE ROLE loanops_test_owner3 NOLOGIN")
        conn.execute("GRANT USAGE, CREATE ON SCHEMA public TO loanops_test_owner3")
        conn.execute("ALTER TABLE audit_events OWNER TO loanops_test_owner3")
        conn.execute("SET ROLE loanops_test_owner3")
        conn.execute("SAVEPOINT before_update")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM audit_events WHERE seq = 2")
        conn.execute("ROLLBACK TO SAVEPOINT before_update")
        conn.execute("SET loanops.audit_maintenance = 'on'")
        assert conn.execute("DELETE FROM audit_events WHERE seq = 2").rowcount == 1
        conn.rollback()  # the role, the owner change and the deletion are never committed
    assert verify_chain(engine).entries == 2


def test_the_application_role_can_append(database_url: str, engine: Engine) -> None:
    """A deployment connecting as (a member of) loanops_app works: append and commit."""
    if not database_url.startswith("postgresql"):
        pytest.skip("database roles are PostgreSQL's")
    role_engine = make_engine(database_url)

    @sa.event.listens_for(role_engine, "connect")
    def _as_app(dbapi_conn: object, _record: object) -> None:
        with dbapi_conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute("SET ROLE loanops_app")
        dbapi_conn.commit()  # type: ignore[attr-defined]

    try:
        _append(role_engine, 3)
    finally:
        role_engine.dispose()
    report = verify_chain(engine)
    assert report.intact and report.entries == 3


def test_the_migration_chains_existing_entries(fresh_database_url: str) -> None:
    """Entries written before 0014 are chained in their current order on upgrade."""
    from loanops.migrate import downgrade

    url = fresh_database_url
    downgrade(url, "0013")
    engine = make_engine(url)
    try:
        old = sa.table(
            "audit_events",
            sa.column("id", sa.Uuid()),
            sa.column("event_key", sa.String()),
            sa.column("application_no", sa.String()),
            sa.column("actor", sa.String()),
            sa.column("action", sa.String()),
            sa.column("detail", sa.JSON()),
            sa.column("occurred_at", sa.DateTime(timezone=True)),
            sa.column("recorded_at", sa.DateTime(timezone=True)),
        )
        import uuid

        with engine.begin() as conn:
            for i in range(4):
                at = (T0 + timedelta(hours=i)).replace(tzinfo=None)
                conn.execute(
                    old.insert().values(
                        id=uuid.uuid4(),
                        event_key=f"old/{i}",
                        application_no=None,
                        actor="system",
                        action="old.thing",
                        detail={"i": i},
                        occurred_at=at if url.startswith("sqlite") else at.replace(tzinfo=UTC),
                        recorded_at=at if url.startswith("sqlite") else at.replace(tzinfo=UTC),
                    )
                )
        engine.dispose()
        upgrade(url)
        _append(engine, 2, prefix="new")
        assert [r.event_key for r in _rows(engine)] == [
            "old/0",
            "old/1",
            "old/2",
            "old/3",
            "new/0",
            "new/1",
        ]
        report = verify_chain(engine)
        assert report.intact and report.entries == 6, report
    finally:
        engine.dispose()
