"""The one Settings object: environment variables prefixed ``LOANOPS_`` and an optional ``.env``."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.shapes import ProcessSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"
DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"


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
    business_timezone: str = "Asia/Shanghai"
    demo_password: str = "demo1234"
    public_base_url: str = "http://127.0.0.1:8000"
    lender_name: str = "LoanOps 示范小额贷款有限公司"
    penalty_multiple: Decimal = Decimal("1.5")
    penalty_grace_days: int = 0
    lpr_multiple: Decimal = Decimal("4")
    absolute_rate_cap: Decimal | None = Decimal("0.24")

    # Human-task SLAs (hours) and deadlines (days). Policy that changes with the company.
    sla_hours: dict[str, float] = Field(
        default_factory=lambda: {
            "intake_review": 8.0,
            "supplement_documents": 24.0,
            "risk_review": 24.0,
            "product_matching": 8.0,
            "offer_confirmation": 24.0,
            "disbursement": 4.0,
        }
    )
    supplement_deadline_days: int = 7
    offer_valid_days: int = 7
    contract_sign_days: int = 5
    reminder_days_before_due: int = 3
    # Collection conduct: borrowers are contacted only inside these local hours.
    contact_hours_start: time = time(8, 0)
    contact_hours_end: time = time(21, 0)
    continue_as_new_after_events: int = 5000
    overpayment: Literal["next_installment", "credit"] = "next_installment"

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "LOANOPS_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production"
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)

    def sla(self, kind: str) -> timedelta:
        return timedelta(hours=self.sla_hours.get(kind, 24))

    def process_settings(self) -> ProcessSettings:
        """The policy snapshot a new loan workflow starts with."""
        return ProcessSettings(
            sla_hours=dict(self.sla_hours),
            supplement_deadline_days=self.supplement_deadline_days,
            offer_valid_days=self.offer_valid_days,
            contract_sign_days=self.contract_sign_days,
            reminder_days_before_due=self.reminder_days_before_due,
            business_timezone=self.business_timezone,
            penalty_multiple=self.penalty_multiple,
            penalty_grace_days=self.penalty_grace_days,
            lpr_multiple=self.lpr_multiple,
            absolute_rate_cap=self.absolute_rate_cap,
            continue_as_new_after_events=self.continue_as_new_after_events,
            overpayment=self.overpayment,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
