"""Settings: the production secret guard and the LOANOPS_ environment (infrastructure only)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from loanops.settings import DEFAULT_SECRET, DEFAULT_SMS_CALLBACK_SECRET, Settings

GOOD_SECRET = "k" * 40
GOOD_SMS = "m" * 40


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
    s = make(environment="production", secret_key=GOOD_SECRET, sms_callback_secret=GOOD_SMS)
    assert s.environment == "production"
    assert s.secret_key == GOOD_SECRET
    assert (
        make(environment="production", secret_key="y" * 32, sms_callback_secret=GOOD_SMS).secret_key
        == "y" * 32
    )


def test_production_refuses_the_default_or_a_short_sms_callback_secret() -> None:
    with pytest.raises(ValidationError, match="LOANOPS_SMS_CALLBACK_SECRET"):
        make(environment="production", secret_key=GOOD_SECRET)
    with pytest.raises(ValidationError, match="LOANOPS_SMS_CALLBACK_SECRET"):
        make(environment="production", secret_key=GOOD_SECRET, sms_callback_secret="s" * 31)
    assert make(environment="development").sms_callback_secret == DEFAULT_SMS_CALLBACK_SECRET


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
    s = make()
    assert s.temporal_address == "temporal.internal:7233"
    assert s.database_url == "postgresql+psycopg://loanops@db/loanops"
    assert s.access_token_minutes == 15


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
    monkeypatch.setenv("LOANOPS_SMS_CALLBACK_SECRET", GOOD_SMS)
    assert make().environment == "production"


def test_dotenv_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOANOPS_TEMPORAL_NAMESPACE=lending\n")
    assert make().temporal_namespace == "lending"


def test_settings_hold_no_business_rules() -> None:
    """Policy lives in domain.policy (versioned in the database), not in the environment."""
    fields = set(Settings.model_fields)
    assert not fields & {"penalty_multiple", "sla_hours", "offer_valid_days", "overpayment"}
