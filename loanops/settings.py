"""The one Settings object: environment variables prefixed ``LOANOPS_`` and an optional ``.env``.

Infrastructure only (addresses, secrets, names). Business rules are the versioned loan policy
(``domain.policy``), stored in the database.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"
DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
# Shared with the sandbox SMS gateway's default (sandbox/sms.py), so `loanops dev` works as is.
DEFAULT_SMS_CALLBACK_SECRET = "dev-sms-callback-secret-change-me"
DEFAULT_BANK_CALLBACK_SECRET = "dev-only-bank-callback-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANOPS_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"

    database_url: str = f"sqlite:///{VAR_DIR / 'loanops.db'}"

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "loanops"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: str | None = None

    secret_key: str = DEFAULT_SECRET
    access_token_minutes: int = 8 * 60
    # The department's zone: application numbers and the choice of the policy version in force.
    # Each loan's own dates follow its policy snapshot (domain.policy.LoanPolicy).
    business_timezone: str = "Asia/Shanghai"
    demo_password: str = "demo1234"
    public_base_url: str = "http://127.0.0.1:8000"
    # The lender as contracts and settlement certificates name it.
    lender_name: str = "LoanOps 示范小额贷款有限公司"
    lender_credit_code: str = "91310000MA1LOANOPS"
    lender_address: str = "上海市浦东新区示范路 1 号"
    lender_complaint_phone: str = "400-000-0000"
    # The credit bureau (adapters.bureau); `loanops dev` runs the sandbox bureau here.
    bureau_url: str = "http://127.0.0.1:8091"
    # The SMS gateway (adapters.sms); `loanops dev` runs the sandbox gateway here. Its delivery
    # receipts come to {public_base_url}/api/v1/sms/receipts signed with this shared secret.
    sms_url: str = "http://127.0.0.1:8092"
    sms_callback_secret: str = DEFAULT_SMS_CALLBACK_SECRET
    sms_timeout_seconds: float = 5.0
    # The worker's notice relay (loanops.notice_relay): how often it looks for due notices, and
    # how it retries an SMS the gateway could not take (exponential back-off, then failed).
    notice_poll_seconds: float = 1.0
    notice_max_attempts: int = 6
    notice_retry_base_seconds: float = 5.0
    notice_retry_max_seconds: float = 600.0
    # The bank (adapters.bank); `loanops dev` runs the sandbox bank here. The callback secret is
    # the HMAC key of the bank's signed status callbacks; the pool account pays disbursements.
    bank_url: str = "http://127.0.0.1:8093"
    bank_callback_secret: str = DEFAULT_BANK_CALLBACK_SECRET
    bank_pool_account: str = "9558800200100000005"
    # Uploaded documents (ID cards, income proofs...): the folder of the default document store,
    # and the largest file accepted (413 above it).
    document_dir: Path = VAR_DIR / "documents"
    document_max_bytes: int = 10 * 1024 * 1024
    # The department's Temporal Schedules (loanops.schedules), at local times of the business
    # timezone: created or updated when the worker starts unless disabled.
    schedules_enabled: bool = True
    classification_time: str = "00:30"
    portfolio_snapshot_time: str = "00:45"
    reconciliation_time: str = "02:00"
    # The low-liquidity check runs every hour at this minute (and after a reservation).
    liquidity_check_minute: int = 5
    # Reconciliation: a movement younger than this is not yet a difference (its other side may
    # be being recorded right now).
    reconciliation_grace_minutes: float = 60.0

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "LOANOPS_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production"
            )
        if self.environment == "production" and (
            self.sms_callback_secret == DEFAULT_SMS_CALLBACK_SECRET
            or len(self.sms_callback_secret) < 32
        ):
            raise ValueError(
                "LOANOPS_SMS_CALLBACK_SECRET must be set to a random value of at least 32 "
                "characters in production"
            )
        return self

    @property
    def bank_callback_url(self) -> str:
        """Where the bank posts its signed payment-order callbacks."""
        return f"{self.public_base_url.rstrip('/')}/api/v1/bank/callbacks"

    @property
    def sms_receipt_url(self) -> str:
        """Where the SMS gateway posts its delivery receipts."""
        return f"{self.public_base_url.rstrip('/')}/api/v1/sms/receipts"

    # --- Temporal payload encryption (issue 11 §4, loanops.codec) ---
    # The keyring: key id → base64 of 32 random bytes (JSON in LOANOPS_TEMPORAL_PAYLOAD_KEYS);
    # the current key id encrypts (default: the only key), every key decrypts. Empty in
    # development/test: a key generated under var/ on first use; required in production.
    temporal_payload_keys: dict[str, str] = {}
    temporal_payload_key_id: str | None = None
    # The Temporal Web UI's origin, the only one allowed (CORS) to call the codec endpoint.
    temporal_ui_origin: str = "http://127.0.0.1:8233"

    @model_validator(mode="after")
    def _check_payload_keys(self) -> Settings:
        from loanops.codec import parse_key

        if self.environment == "production" and not self.temporal_payload_keys:
            raise ValueError(
                "LOANOPS_TEMPORAL_PAYLOAD_KEYS must be set in production (a JSON object of key "
                "id to base64 of 32 random bytes)"
            )
        for key_id, key in self.temporal_payload_keys.items():
            parse_key(key_id, key)
        current = self.temporal_payload_key_id
        if self.temporal_payload_keys and current is None and len(self.temporal_payload_keys) > 1:
            raise ValueError("LOANOPS_TEMPORAL_PAYLOAD_KEY_ID must name the current key")
        if current is not None and current not in self.temporal_payload_keys:
            raise ValueError(f"LOANOPS_TEMPORAL_PAYLOAD_KEY_ID {current!r} is not in the keyring")
        return self

    # --- end of Temporal payload encryption ---


@lru_cache
def get_settings() -> Settings:
    return Settings()
