"""Settings: the production secret guard and the LOANOPS_ environment (infrastructure only)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from loanops.settings import (
    DEFAULT_BANK_CALLBACK_SECRET,
    DEFAULT_SECRET,
    DEFAULT_SMS_CALLBACK_SECRET,
    Settings,
)

GOOD_SECRET = "Zq3v9Lr0xT7mWb2NcY5pKd8sHf1gJa4e"  # 32 characters of 32 distinct
GOOD_SMS = "m1N2b3V4c5X6z7L8k9J0h-G_fDsApOiU"
GOOD_BANK = "Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc"
GOOD_KEYRING = {"prod-1": "A" * 43 + "="}  # base64 of 32 bytes
GOOD: dict[str, Any] = {
    "secret_key": GOOD_SECRET,
    "sms_callback_secret": GOOD_SMS,
    "bank_callback_secret": GOOD_BANK,
    "temporal_payload_keys": GOOD_KEYRING,
    "pii_keys": GOOD_KEYRING,
    "pii_index_key": "Pm4Wq7Zr2Tx9Lb5Nc8Yk3Jd6Hf1Gs0Va",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LOANOPS_ variable and no .env file from the machine running the tests; the install's
    generated keys in a folder of this test's own."""
    for name in list(os.environ):
        if name.upper().startswith("LOANOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOANOPS_KEY_DIR", str(tmp_path / "keys"))


def make(**kw: Any) -> Settings:
    return Settings(**kw)


def test_defaults_are_development() -> None:
    s = make()
    assert s.environment == "development"
    assert s.temporal_address == "127.0.0.1:7233"


def test_development_generates_its_own_keys_once_in_files_only_the_owner_reads(
    tmp_path: Path,
) -> None:
    first = make()
    keys = {
        "secret_key": first.secret_key,
        "sms_callback_secret": first.sms_callback_secret,
        "bank_callback_secret": first.bank_callback_secret,
    }
    for name, value in keys.items():
        assert value not in (
            DEFAULT_SECRET,
            DEFAULT_SMS_CALLBACK_SECRET,
            DEFAULT_BANK_CALLBACK_SECRET,
        )
        assert len(value) >= 32 and len(set(value)) >= 10
        path = tmp_path / "keys" / name
        assert path.read_text().strip() == value
        assert path.stat().st_mode & 0o777 == 0o600
    assert len(set(keys.values())) == 3  # three keys, not one
    # The next start (another process: the worker, the API) reads the same keys.
    again = make(environment="test")
    assert (again.secret_key, again.sms_callback_secret, again.bank_callback_secret) == tuple(
        keys.values()
    )


def test_another_install_generates_other_keys(tmp_path: Path) -> None:
    mine = make()
    other = make(key_dir=tmp_path / "elsewhere")
    assert mine.secret_key != other.secret_key


def test_an_explicit_key_is_used_and_nothing_generated(tmp_path: Path) -> None:
    s = make(**GOOD)
    assert s.secret_key == GOOD_SECRET
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize("field", ["secret_key", "sms_callback_secret", "bank_callback_secret"])
@pytest.mark.parametrize(
    "bad",
    [
        "",
        DEFAULT_SECRET,
        DEFAULT_SMS_CALLBACK_SECRET,
        DEFAULT_BANK_CALLBACK_SECRET,
        "x" * 31,
        "k" * 40,
        "ab" * 20,
    ],
)
def test_production_refuses_to_start_without_an_explicit_key_of_real_entropy(
    field: str, bad: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=f"LOANOPS_{field.upper()}"):
        make(environment="production", **{**GOOD, field: bad})
    assert not (tmp_path / "keys").exists()  # and production never generates one


def test_production_with_random_keys_passes() -> None:
    s = make(environment="production", **GOOD)
    assert s.environment == "production"
    assert (s.secret_key, s.sms_callback_secret, s.bank_callback_secret) == (
        GOOD_SECRET,
        GOOD_SMS,
        GOOD_BANK,
    )


def test_the_api_process_refuses_to_start_in_production_with_a_default_secret(
    tmp_path: Path,
) -> None:
    """``loanops api`` as a real process: a configuration error naming the variable, exit 2."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LOANOPS_")}
    env.update(
        LOANOPS_ENVIRONMENT="production",
        LOANOPS_SECRET_KEY=DEFAULT_SECRET,
        LOANOPS_SMS_CALLBACK_SECRET=GOOD_SMS,
        LOANOPS_BANK_CALLBACK_SECRET=GOOD_BANK,
        LOANOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
    )
    done = subprocess.run(
        [sys.executable, "-m", "loanops", "api", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert "LOANOPS_SECRET_KEY is a published default" in said


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
    monkeypatch.setenv("LOANOPS_BANK_CALLBACK_SECRET", GOOD_BANK)
    monkeypatch.setenv("LOANOPS_TEMPORAL_PAYLOAD_KEYS", json.dumps(GOOD_KEYRING))
    monkeypatch.setenv("LOANOPS_PII_KEYS", json.dumps(GOOD_KEYRING))
    monkeypatch.setenv("LOANOPS_PII_INDEX_KEY", GOOD["pii_index_key"])
    assert make().environment == "production"


def test_dotenv_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOANOPS_TEMPORAL_NAMESPACE=lending\n")
    assert make().temporal_namespace == "lending"


def test_settings_hold_no_business_rules() -> None:
    """Policy lives in domain.policy (versioned in the database), not in the environment."""
    fields = set(Settings.model_fields)
    assert not fields & {"penalty_multiple", "sla_hours", "offer_valid_days", "overpayment"}


def test_the_render_queue_follows_the_loans_queue() -> None:
    assert make().render_task_queue == "loanops-render"
    assert make(temporal_task_queue="east").render_task_queue == "east-render"


def test_the_workflow_cache_is_the_memory_budget_over_the_cost_of_a_loan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (
        make(worker_memory_budget_mib=512, workflow_cache_mib_per_loan=0.4).max_cached_workflows
        == 1280
    )
    monkeypatch.setenv("LOANOPS_WORKER_MEMORY_BUDGET_MIB", "2048")
    assert make(workflow_cache_mib_per_loan=0.5).max_cached_workflows == 4096
    # Never so small that a worker evicts the loans it is running; an override wins.
    assert make(worker_memory_budget_mib=1).max_cached_workflows == 10
    assert make(max_cached_workflows_override=300).max_cached_workflows == 300


@pytest.mark.parametrize(
    ("field", "bad", "variable"),
    [
        ("pii_keys", {}, "LOANOPS_PII_KEYS"),
        ("pii_index_key", "", "LOANOPS_PII_INDEX_KEY"),
        ("pii_index_key", "k" * 40, "LOANOPS_PII_INDEX_KEY"),
        ("pii_keys", {"a:b": "A" * 43 + "="}, "LOANOPS_PII_KEYS"),
        ("pii_key_id", "other", "LOANOPS_PII_KEY_ID"),
    ],
)
def test_production_refuses_to_start_without_pii_keys(
    field: str, bad: Any, variable: str, tmp_path: Path
) -> None:
    """Personal data at rest (loanops.pii): the keyring and the blind index key are explicit in
    production, never generated."""
    with pytest.raises(ValidationError, match=variable):
        make(environment="production", **{**GOOD, field: bad})
    assert not (tmp_path / "keys").exists()
