"""``loanops user add|disable|enable|roles|reset-password|list`` against a SQLite database
migrated by ``migrate``: production starts with one administrator made here, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from loanops.cli import app
from loanops.db import make_engine
from loanops.security import verify_password
from loanops.settings import get_settings
from models.tables import AuditEvent, User

PASSWORD = "a long enough passphrase"
OTHER = "another long passphrase"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOANOPS_DATABASE_URL", url)
    monkeypatch.setenv("LOANOPS_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    try:
        assert CliRunner().invoke(app, ["migrate"]).exit_code == 0
        yield url
    finally:
        get_settings.cache_clear()


def _users(url: str) -> dict[str, User]:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return {u.username: u for u in s.exec(select(User)).all()}
    finally:
        engine.dispose()


def _audit(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return [(e.action, e.actor) for e in s.exec(select(AuditEvent)).all()]
    finally:
        engine.dispose()


def test_migrate_creates_no_account_and_the_first_administrator_comes_from_the_cli(
    db: str,
) -> None:
    assert _users(db) == {}
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "user",
            "add",
            "chief",
            "--roles",
            "department_manager",
            "--full-name",
            "主任",
            "--by",
            "ops-team",
        ],
        input=f"{PASSWORD}\n{PASSWORD}\n",  # the hidden prompt, confirmed
    )
    assert r.exit_code == 0, r.output
    chief = _users(db)["chief"]
    assert chief.roles == ["department_manager"] and chief.is_active
    assert verify_password(PASSWORD, chief.password_hash)
    assert _audit(db) == [("user.created", "ops-team")]
    listed = runner.invoke(app, ["user", "list"])
    assert "chief\tdepartment_manager\tactive\t主任" in listed.stdout


def test_the_password_policy_and_the_roles_are_checked(db: str) -> None:
    runner = CliRunner()
    weak = runner.invoke(app, ["user", "add", "li", "--roles", "auditor", "--password", "short"])
    assert weak.exit_code == 2 and "password: must be at least 12 characters" in weak.stderr
    bad = runner.invoke(app, ["user", "add", "li", "--roles", "king", "--password", PASSWORD])
    assert bad.exit_code == 2 and "roles: unknown role king" in bad.stderr
    assert _users(db) == {}


def test_disable_enable_roles_and_reset_password(db: str) -> None:
    runner = CliRunner()
    for name, roles in (("chief", "department_manager"), ("wang", "business_officer")):
        r = runner.invoke(app, ["user", "add", name, "--roles", roles, "--password", PASSWORD])
        assert r.exit_code == 0, r.output
    # The last active department manager stays: nobody could administer accounts otherwise.
    last = runner.invoke(app, ["user", "disable", "chief"])
    assert last.exit_code == 2 and "last active department_manager" in last.stderr
    assert runner.invoke(app, ["user", "disable", "wang"]).exit_code == 0
    assert not _users(db)["wang"].is_active
    assert _users(db)["wang"].token_version == 1
    assert runner.invoke(app, ["user", "enable", "wang"]).exit_code == 0
    r = runner.invoke(app, ["user", "roles", "wang", "business_officer,customer_service"])
    assert r.exit_code == 0, r.output
    assert _users(db)["wang"].roles == ["business_officer", "customer_service"]
    r = runner.invoke(app, ["user", "reset-password", "wang"], input=f"{OTHER}\n{OTHER}\n")
    assert r.exit_code == 0, r.output
    assert verify_password(OTHER, _users(db)["wang"].password_hash)
    missing = runner.invoke(app, ["user", "disable", "nobody"])
    assert missing.exit_code == 2 and "nobody does not exist" in missing.stderr
    actions = [a for a, _ in _audit(db)]
    assert actions == [
        "user.created",
        "user.created",
        "user.disabled",
        "user.enabled",
        "user.roles_changed",
        "user.password_reset",
    ]


def test_demo_users_are_seeded_only_in_development(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANOPS_ENVIRONMENT", "test")
    get_settings.cache_clear()
    r = CliRunner().invoke(app, ["seed", "--demo"])
    assert r.exit_code == 2 and "only seeded when LOANOPS_ENVIRONMENT=development" in r.stderr
    assert _users(db) == {}


def test_the_permission_matrix_is_printed_with_every_action() -> None:
    from domain.permissions import MATRIX

    r = CliRunner().invoke(app, ["permissions"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("| action | business_officer |")
    assert len(lines) == 2 + len(MATRIX)
    manage = next(line for line in lines if line.startswith("| `manage_users` |"))
    cells = [c.strip() for c in manage.split("|")[2:-1]]
    header = [c.strip() for c in lines[0].split("|")[2:-1]]
    assert [h for h, c in zip(header, cells, strict=True) if c] == ["department_manager"]
