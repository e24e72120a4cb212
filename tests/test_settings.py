"""Settings: the production secret guard, the LOANOPS_ environment, and the process policy."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from loanops.settings import DEFAULT_SECRET, Settings
from models.shapes import ProcessSettings

GOOD_SECRET = "k" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LOANOPS_ variable and no .env file from the machine running the tests."""
    for name in list(os.environ):
        if name.upper().startswith("LOANOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make(**kw: Any) -> Settings:
    return Settings(**kw)


def test_defaults_are_development() -> None:
    s = make()
    assert s.environment == "development"
    assert s.secret_key == DEFAULT_SECRET
    assert s.temporal_address == "127.0.0.1:7233"


def test_production_with_default_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="LOANOPS_SECRET_KEY"):
        make(environment="production")


def test_production_with_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError):
        make(environment="production", secret_key="x" * 31)


def test_production_with_long_random_secret_passes() -> None:
    s = make(environment="production", secret_key=GOOD_SECRET)
    assert s.environment == "production"
    assert s.secret_key == GOOD_SECRET
    assert make(environment="production", secret_key="y" * 32).secret_key == "y" * 32


def test_development_and_test_accept_the_default_secret() -> None:
    assert make(environment="development").secret_key == DEFAULT_SECRET
    assert make(environment="test").secret_key == DEFAULT_SECRET


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError):
        make(environment="staging")


def test_prefixed_env_vars_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANOPS_TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("LOANOPS_DATABASE_URL", "postgresql+psycopg://loanops@db/loanops")
    monkeypatch.setenv("LOANOPS_ACCESS_TOKEN_MINUTES", "15")
    monkeypatch.setenv("LOANOPS_PENALTY_MULTIPLE", "1.3")
    s = make()
    assert s.temporal_address == "temporal.internal:7233"
    assert s.database_url == "postgresql+psycopg://loanops@db/loanops"
    assert s.access_token_minutes == 15
    assert s.penalty_multiple == Decimal("1.3")
    assert isinstance(s.penalty_multiple, Decimal)


def test_unprefixed_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "wrong:1")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///wrong.db")
    s = make()
    assert s.temporal_address == "127.0.0.1:7233"
    assert s.database_url != "sqlite:///wrong.db"


def test_production_guard_applies_to_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANOPS_ENVIRONMENT", "production")
    with pytest.raises(ValidationError):
        make()
    monkeypatch.setenv("LOANOPS_SECRET_KEY", GOOD_SECRET)
    assert make().environment == "production"


def test_dotenv_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOANOPS_TEMPORAL_NAMESPACE=lending\n")
    assert make().temporal_namespace == "lending"


def test_sla_hours_from_env_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANOPS_SLA_HOURS", '{"risk_review": 48, "disbursement": 2.5}')
    s = make()
    assert s.sla("risk_review") == timedelta(hours=48)
    assert s.sla("disbursement") == timedelta(hours=2.5)


def test_sla_defaults_and_unknown_kind() -> None:
    s = make()
    assert s.sla("disbursement") == timedelta(hours=4)
    assert s.sla("intake_review") == timedelta(hours=8)
    assert s.sla("no_such_task") == timedelta(hours=24)


def test_process_settings_carries_policy() -> None:
    s = make(
        sla_hours={"risk_review": 12.0, "disbursement": 1.0},
        supplement_deadline_days=3,
        offer_valid_days=10,
        contract_sign_days=2,
        reminder_days_before_due=5,
        business_timezone="Asia/Shanghai",
        penalty_multiple=Decimal("1.3"),
        penalty_grace_days=1,
        lpr_multiple=Decimal("4"),
        absolute_rate_cap=Decimal("0.24"),
    )
    p = s.process_settings()
    assert isinstance(p, ProcessSettings)
    assert p.sla_hours == {"risk_review": 12.0, "disbursement": 1.0}
    assert p.supplement_deadline_days == 3
    assert p.offer_valid_days == 10
    assert p.contract_sign_days == 2
    assert p.reminder_days_before_due == 5
    assert p.business_timezone == "Asia/Shanghai"
    assert p.penalty_multiple == Decimal("1.3")
    assert p.penalty_grace_days == 1
    assert p.lpr_multiple == Decimal("4")
    assert p.absolute_rate_cap == Decimal("0.24")


def test_process_settings_defaults_match_settings_defaults() -> None:
    s = make()
    p = s.process_settings()
    assert p.sla_hours == s.sla_hours
    assert set(p.sla_hours) >= {
        "intake_review",
        "supplement_documents",
        "risk_review",
        "product_matching",
        "offer_confirmation",
        "disbursement",
    }
    assert (p.supplement_deadline_days, p.offer_valid_days, p.contract_sign_days) == (7, 7, 5)
    assert p.reminder_days_before_due == 3


def test_process_settings_snapshot_is_independent_of_settings() -> None:
    s = make()
    p = s.process_settings()
    p.sla_hours["risk_review"] = 999.0
    assert s.sla_hours["risk_review"] == 24.0
    s.sla_hours["intake_review"] = 1.0
    assert p.sla_hours["intake_review"] == 8.0
