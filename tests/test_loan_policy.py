"""The loan policy as data: version 1 seeded from the defaults by ``loanops migrate``, later
versions added with an effective date (never retroactively), read back exactly as recorded."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, delete, select
from typer.testing import CliRunner

from domain.classification import Category
from domain.policy import DEFAULT_POLICY, DEFAULT_SLA_HOURS, LoanPolicy, Overpayment
from loanops.cli import app
from loanops.db import make_engine
from loanops.migrate import upgrade
from loanops.policy import (
    EMPTY_POLICY_TABLE,
    add_loan_policy,
    loan_policies,
    loan_policy_in_force,
    loan_policy_version,
    seed_loan_policy,
)
from loanops.settings import get_settings
from models.tables import AuditEvent, LoanPolicyRow, blacklisted

D = Decimal
HEADER = ("version", "effective_from", "source")


def _rows(engine: Engine) -> list[LoanPolicyRow]:
    with Session(engine) as s:
        return list(s.exec(select(LoanPolicyRow).order_by(col(LoanPolicyRow.version))).all())


def _add(engine: Engine, rules: dict[str, Any], on: date, source: str = "test") -> LoanPolicy:
    return add_loan_policy(
        engine, rules=rules, effective_from=on, source=source, recorded_by="tester"
    )


def test_migrating_seeds_the_defaults_as_version_1_once(database_url: str, engine: Engine) -> None:
    assert loan_policies(engine) == [DEFAULT_POLICY]  # the fixture's database was migrated
    assert seed_loan_policy(engine) == 0
    assert upgrade(database_url) == 0
    [row] = _rows(engine)
    assert (row.version, row.recorded_by) == (1, "system")
    assert row.rules == DEFAULT_POLICY.rules()


def test_a_new_version_changes_only_what_it_names(engine: Engine) -> None:
    second = _add(
        engine, {"penalty_multiple": "1.3", "sla_hours": {"risk_review": 12}}, date(2026, 1, 1)
    )
    expected = replace(
        DEFAULT_POLICY,
        version=2,
        effective_from=date(2026, 1, 1),
        source="test",
        penalty_multiple=D("1.3"),
        sla_hours={**DEFAULT_SLA_HOURS, "risk_review": 12.0},
    )
    assert second == expected
    assert loan_policy_version(engine, 2) == expected
    assert loan_policy_version(engine, 1) == DEFAULT_POLICY  # never updated

    third = _add(engine, {"offer_valid_days": 5}, date(2026, 7, 1))
    assert third == replace(
        expected, version=3, effective_from=date(2026, 7, 1), offer_valid_days=5
    )
    assert [r.recorded_by for r in _rows(engine)] == ["system", "tester", "tester"]
    with pytest.raises(LookupError, match="version 4"):
        loan_policy_version(engine, 4)


def test_the_version_in_force_follows_the_effective_dates(engine: Engine) -> None:
    _add(engine, {"penalty_grace_days": 1}, date(2026, 1, 1))
    _add(engine, {"penalty_grace_days": 2}, date(2026, 6, 1))
    _add(engine, {"penalty_grace_days": 3}, date(2026, 6, 1))  # same day: the later one wins

    def version_on(day: date) -> int:
        return loan_policy_in_force(engine, day).version

    assert version_on(date(2025, 1, 1)) == 1
    assert version_on(date(2025, 12, 31)) == 1
    assert version_on(date(2026, 1, 1)) == 2
    assert version_on(date(2026, 5, 31)) == 2
    assert version_on(date(2026, 6, 1)) == 4
    assert loan_policy_in_force(engine, date(2040, 1, 1)).penalty_grace_days == 3
    with pytest.raises(LookupError, match="2025-01-01"):
        loan_policy_in_force(engine, date(2024, 12, 31))


REFUSED: list[tuple[dict[str, Any], date, str]] = [
    ({"penalty_multiple": "1.3"}, date(2024, 12, 31), "effective_from"),  # retroactive
    ({"penalty_multiple": "5"}, date(2026, 1, 1), "penalty_multiple"),
    ({"penalty_multiple": "abc"}, date(2026, 1, 1), "penalty_multiple"),
    ({"penalty_grace_days": 1.5}, date(2026, 1, 1), "penalty_grace_days"),
    ({"offer_valid_days": None}, date(2026, 1, 1), "offer_valid_days"),
    ({"absolute_rate_cap": "1.2"}, date(2026, 1, 1), "absolute_rate_cap"),
    ({"sla_hours": {"risk_review": 0}}, date(2026, 1, 1), r"sla_hours\.risk_review"),
    ({"sla_hours": {"risk_reveiw": 8}}, date(2026, 1, 1), r"sla_hours\.risk_reveiw"),
    ({"reminder_time": "9am"}, date(2026, 1, 1), "reminder_time"),
    ({"contact_hours_end": "07:00"}, date(2026, 1, 1), "contact_hours_end"),
    ({"overpayment": "refund"}, date(2026, 1, 1), "overpayment"),
    ({"business_timezone": "Mars/Base"}, date(2026, 1, 1), "business_timezone"),
    ({"grace": 3}, date(2026, 1, 1), r"rules\.grace"),
    ({"version": 9}, date(2026, 1, 1), r"rules\.version"),
    ({"penalty_multiple": "1.5"}, date(2026, 1, 1), "rules"),  # changes nothing
    ({"archive_retention_years": 0}, date(2026, 1, 1), "archive_retention_years"),
    ({"pii_retention_years": 0}, date(2026, 1, 1), "pii_retention_years"),
    ({"pii_retention_years": 101}, date(2026, 1, 1), "pii_retention_years"),
    (
        {"classification_doubtful_after_days": 60},
        date(2026, 1, 1),
        "classification_doubtful_after_days",
    ),
    (
        {"classification_restructured_floor": "worse"},
        date(2026, 1, 1),
        "classification_restructured_floor",
    ),
]


def test_retroactive_or_invalid_changes_are_refused_and_nothing_is_written(
    engine: Engine,
) -> None:
    for rules, on, field in REFUSED:
        with pytest.raises(ValueError, match=rf"^{field}:"):
            _add(engine, rules, on)
    assert loan_policies(engine) == [DEFAULT_POLICY]


def test_the_effective_date_never_goes_back_behind_the_newest(engine: Engine) -> None:
    _add(engine, {"penalty_grace_days": 1}, date(2026, 6, 1))
    with pytest.raises(ValueError, match=r"^effective_from: 2026-05-31 is before 2026-06-01"):
        _add(engine, {"penalty_grace_days": 2}, date(2026, 5, 31))
    assert [p.version for p in loan_policies(engine)] == [1, 2]


def test_every_rule_type_round_trips_through_the_database(engine: Engine) -> None:
    expected = LoanPolicy(
        version=2,
        effective_from=date(2026, 3, 1),
        source="every rule changed",
        business_timezone="Asia/Urumqi",
        penalty_multiple=D("1.25"),
        penalty_grace_days=3,
        lpr_multiple=D("3.5"),
        absolute_rate_cap=None,
        sla_hours={kind: hours / 2 for kind, hours in DEFAULT_SLA_HOURS.items()},
        max_escalations=5,
        task_abandon_days=45,
        risk_approval_limit=D("150000.00"),
        risk_approval_worst_grade="B",
        supplement_business_days=3,
        supplement_deadline_days=10,
        offer_valid_days=14,
        contract_sign_days=3,
        reminder_days_before_due=2,
        reminder_time=time(10, 30),
        follow_up_call_after_days=14,
        overpayment=Overpayment.CREDIT,
        contact_hours_start=time(9, 15),
        contact_hours_end=time(20, 45),
        collection_ladder={
            "sms_notice": 2,
            "reminder_call": 5,
            "collection_call": 10,
            "field_visit": 45,
            "legal_review": 75,
            "write_off_proposal": 120,
        },
        collection_max_contacts_per_day=2,
        collection_promise_max_days=7,
        continue_as_new_after_events=2000,
        disbursement_dual_limit=D("80000.00"),
        funds_recheck_minutes=30,
        payout_confirmation_minutes=5,
        archive_retention_years=10,
        follow_up_call_interval_days=60,
        post_loan_review_days=120,
        post_loan_review_days_close=30,
        post_loan_review_large_amount=D("50000.00"),
        pii_retention_years=7,
        classification_special_mention_after_days=3,
        classification_substandard_after_days=60,
        classification_doubtful_after_days=180,
        classification_loss_after_days=300,
        classification_technical_overdue_days=5,
        classification_restructured_floor=Category.DOUBTFUL,
        classification_legal_action_floor=Category.SPECIAL_MENTION,
    )
    for f in fields(LoanPolicy):  # the test covers every rule
        if f.name not in HEADER:
            assert getattr(expected, f.name) != getattr(DEFAULT_POLICY, f.name), f.name

    added = add_loan_policy(
        engine,
        rules=expected.rules(),
        effective_from=expected.effective_from,
        source=expected.source,
        recorded_by="tester",
    )
    for loaded in (
        added,
        loan_policy_version(engine, 2),
        loan_policy_in_force(engine, date(2026, 3, 1)),
        loan_policies(engine)[-1],
    ):
        assert loaded == expected
        for f in fields(LoanPolicy):  # Decimal stays Decimal, time stays time, enum stays enum
            assert type(getattr(loaded, f.name)) is type(getattr(expected, f.name)), f.name
    assert json.loads(json.dumps(_rows(engine)[-1].rules)) == expected.rules()


# The CLI, against a temporary SQLite database named by LOANOPS_DATABASE_URL.


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOANOPS_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")  # rich's table width, so change lines do not wrap
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    run.url = url  # type: ignore[attr-defined]
    yield run
    get_settings.cache_clear()


def test_cli_lists_shows_and_adds_versions(cli: Any, tmp_path: Path) -> None:
    migrated = cli("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert "loan policy version 1" in migrated.stderr
    listed = cli("policy", "list")
    assert listed.exit_code == 0, listed.output
    assert "(first version)" in listed.stdout

    rules = tmp_path / "rules.json"
    rules.write_text('{"penalty_multiple": 1.3, "sla_hours": {"risk_review": 12}}')
    added = cli(
        "policy", "add", "--file", str(rules), "--effective-from", "2026-01-01",
        "--source", "Board decision 2025-12", "--by", "alice",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "loan policy version 2 recorded, in force from 2026-01-01" in added.stderr

    listed = cli("policy", "list")
    assert listed.exit_code == 0, listed.output
    assert "Board decision 2025-12" in listed.stdout
    assert "penalty_multiple: 1.5 → 1.3" in listed.stdout
    assert "sla_hours.risk_review: 24.0 → 12.0" in listed.stdout
    assert "offer_valid_days" not in listed.stdout  # only what changed

    engine = make_engine(cli.url)
    try:
        second = loan_policy_version(engine, 2)
        assert _rows(engine)[-1].recorded_by == "alice"
    finally:
        engine.dispose()
    assert second.penalty_multiple == D("1.3")
    for args in (("policy", "show", "2"), ("policy", "show")):
        shown = cli(*args)
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout) == second.rules()
    shown = cli("policy", "show", "1")
    assert json.loads(shown.stdout) == DEFAULT_POLICY.rules()


def test_cli_refusals_are_one_line_with_exit_status_2(cli: Any, tmp_path: Path) -> None:
    assert cli("migrate").exit_code == 0
    good = tmp_path / "good.json"
    good.write_text('{"penalty_multiple": "1.3"}')
    bad = tmp_path / "bad.json"
    bad.write_text('{"reminder_time": "9am"}')
    broken = tmp_path / "broken.json"
    broken.write_text('{"penalty_multiple": ')
    array = tmp_path / "array.json"
    array.write_text("[1]")
    cases = [
        (("--file", str(good), "--effective-from", "2024-12-31"), "effective_from: 2024-12-31"),
        (("--file", str(good), "--effective-from", "2026-02-30"), "effective_from: '2026-02-30'"),
        (("--file", str(bad), "--effective-from", "2026-01-01"), "reminder_time: must be"),
        (("--file", str(broken), "--effective-from", "2026-01-01"), "is not valid JSON"),
        (("--file", str(array), "--effective-from", "2026-01-01"), "must hold a JSON object"),
        (("--file", str(tmp_path / "no.json"), "--effective-from", "2026-01-01"), "cannot read"),
    ]
    for args, message in cases:
        done = cli("policy", "add", *args, "--source", "x", "--by", "alice")
        assert done.exit_code == 2, done.output
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.output
    missing = cli("policy", "show", "7")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "loan policy version 7 is not on record"

    engine = make_engine(cli.url)
    try:
        assert loan_policies(engine) == [DEFAULT_POLICY]  # nothing was written
        with Session(engine) as s:
            s.exec(delete(LoanPolicyRow))
            s.commit()
    finally:
        engine.dispose()
    add = ("add", "--file", str(good), "--effective-from", "2026-01-01", "--source", "x")
    for command in (["list"], ["show"], [*add, "--by", "alice"]):
        empty = cli("policy", *command)
        assert empty.exit_code == 2, empty.output
        assert empty.stderr.strip() == EMPTY_POLICY_TABLE


def test_the_blacklist_is_kept_with_the_cli_and_audited(cli: Any) -> None:
    assert cli("migrate").exit_code == 0
    bad = cli("blacklist", "add", "110105194912310021", "--reason", "fraud", "--by", "manager")
    assert bad.exit_code == 2 and "check digit" in bad.output
    added = cli(
        "blacklist", "add", "11010519491231002x", "--reason", "forged papers", "--by", "manager"
    )
    assert added.exit_code == 0, added.output
    again = cli("blacklist", "add", "11010519491231002X", "--reason", "again", "--by", "manager")
    assert again.exit_code == 2 and "already on the list" in again.output
    listed = cli("blacklist", "list")
    assert "forged papers" in listed.output and "11010519491231002X" not in listed.output
    engine = make_engine(cli.url)
    try:
        with Session(engine) as s:
            assert blacklisted(s, "11010519491231002X") is not None
            actions = [e.action for e in s.exec(select(AuditEvent)).all()]
        assert actions.count("blacklist.added") == 1
        assert cli("blacklist", "remove", "11010519491231002X", "--by", "manager").exit_code == 0
        with Session(engine) as s:
            assert blacklisted(s, "11010519491231002X") is None
    finally:
        engine.dispose()
