"""The one Settings object: environment variables prefixed ``LOANOPS_`` and an optional ``.env``.

Infrastructure only (addresses, secrets, names). Business rules are the versioned loan policy
(``domain.policy``), stored in the database.
"""

from __future__ import annotations

import os
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"
# Values once published in this repository (here and in the sandboxes): never accepted as a key
# in production, whatever their length.
DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEFAULT_SMS_CALLBACK_SECRET = "dev-sms-callback-secret-change-me"
DEFAULT_BANK_CALLBACK_SECRET = "dev-only-bank-callback-secret"
KNOWN_DEFAULTS = frozenset(
    {
        DEFAULT_SECRET,
        DEFAULT_SMS_CALLBACK_SECRET,
        DEFAULT_BANK_CALLBACK_SECRET,
        "sandbox-bank-callback-secret",
        "test-bank-callback-secret",
        "test-sms-callback-secret",
    }
)
# The secrets a deployment must configure (environment variable LOANOPS_<NAME upper-cased>).
SECRET_FIELDS = ("secret_key", "sms_callback_secret", "bank_callback_secret")
MIN_SECRET_CHARS = 32
MIN_SECRET_DISTINCT = 10


def secret_problem(value: str) -> str | None:
    """Why ``value`` is not a key of real entropy (None when it is): at least 32 characters
    (``secrets.token_urlsafe(32)`` gives 43), at least 10 distinct characters (refuses "k" * 40
    and similar), and never a value published in this repository."""
    if value in KNOWN_DEFAULTS:
        return "is a published default"
    if len(value) < MIN_SECRET_CHARS:
        return f"must be at least {MIN_SECRET_CHARS} characters"
    if len(set(value)) < MIN_SECRET_DISTINCT:
        return "has too little entropy (generate one with secrets.token_urlsafe(32))"
    return None


def local_secret(key_dir: Path, name: str) -> str:
    """The development install's own key ``name``: read from ``key_dir/name``, generated there on
    first use (32 random bytes, url-safe; the file created exclusively with mode 0600, so two
    processes starting at once agree on one key)."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = key_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process created it a moment ago: wait for its content
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it to generate a new key") from None
    with os.fdopen(fd, "w") as f:
        value = secrets.token_urlsafe(32)
        f.write(value + "\n")
    return value


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

    # The keys (JWT and signing links; the SMS gateway's and the bank's callback HMACs). Left
    # empty, a development or test install uses its own, generated on first run under
    # ``key_dir`` (``local_secret``); production refuses to start without explicit ones of real
    # entropy (``secret_problem``).
    secret_key: str = ""
    key_dir: Path = VAR_DIR / "keys"
    # Short access tokens; a refresh token (rotated on each use) keeps a working day's session.
    access_token_minutes: int = 15
    refresh_token_minutes: int = 12 * 60
    # Login throttling (per username, known or not, persisted in the database): after this many
    # consecutive failures the username is locked for ``login_lockout_minutes``.
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    # And per client address, across usernames (password spraying): this many consecutive
    # failures from one address hold it back for the same time (429); 0 turns it off.
    login_max_failures_per_address: int = 20
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
    sms_callback_secret: str = ""
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
    bank_callback_secret: str = ""
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
    # The API process's threads for its blocking routes (database sessions, Temporal calls made
    # from them), and how many of them may wait on Temporal at once: a call beyond that bound is
    # a 503 with Retry-After at once, so ``api_threads - api_temporal_calls`` threads always
    # serve the database-only routes. /healthz, /readyz and the inbox's long-poll hold no thread.
    api_threads: int = 40
    api_temporal_calls: int = 32

    @model_validator(mode="after")
    def _check_api_threads(self) -> Settings:
        if self.api_temporal_calls < 1:
            raise ValueError("LOANOPS_API_TEMPORAL_CALLS must be at least 1")
        if self.api_threads <= self.api_temporal_calls:
            raise ValueError(
                "LOANOPS_API_THREADS must be greater than LOANOPS_API_TEMPORAL_CALLS (threads "
                "must remain for the routes that do not call Temporal)"
            )
        return self

    @model_validator(mode="after")
    def _resolve_secrets(self) -> Settings:
        """Production: every key explicit and of real entropy, else a configuration error naming
        the variable. Development and test: an empty key is the install's own (generated under
        ``key_dir`` on first run); an explicit one is taken as given."""
        for name in SECRET_FIELDS:
            value: str = getattr(self, name)
            variable = f"LOANOPS_{name.upper()}"
            if self.environment == "production":
                problem = "must be set" if not value else secret_problem(value)
                if problem:
                    raise ValueError(
                        f"{variable} {problem}: production needs a random value of at least "
                        f"{MIN_SECRET_CHARS} characters"
                    )
            elif not value:
                setattr(self, name, local_secret(self.key_dir, name))
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

    # --- Performance (issue 13) ---
    # The render worker (``loanops worker --queue render``): how many documents it renders at
    # once. Rendering is CPU-bound Python (WeasyPrint), so more than the cores gains nothing.
    render_concurrency: int = 2
    # The loans' worker keeps this much memory (MiB) for its workflow cache: a cached loan
    # answers a signal, update or timer without replaying its history. ``max_cached_workflows``
    # is the budget divided by ``workflow_cache_mib_per_loan``, the worker RSS one live loan
    # adds, as ``bench/memory.py`` measured it (see the README's "Measured speed" section).
    # Loans beyond it are evicted (least recently used) and replayed on their next wake. Measured:
    # 0.275 MiB per loan waiting on a task (1,000 live loans; a bare workflow on a timer: 0.083).
    worker_memory_budget_mib: float = 512.0
    workflow_cache_mib_per_loan: float = 0.3
    # Explicitly, instead of the budget (0: from the budget).
    max_cached_workflows_override: int = 0

    @property
    def render_task_queue(self) -> str:
        """The render worker's task queue: the loans' queue with ``-render`` (``loanops`` →
        ``loanops-render``), the very name the workflows derive from their own queue
        (``domain.identifiers.render_queue_of``), so the two can never disagree."""
        from domain.identifiers import render_queue_of

        return render_queue_of(self.temporal_task_queue)

    @property
    def max_cached_workflows(self) -> int:
        """The loans' worker's workflow cache size: the override if set, else the memory budget
        divided by the measured cost of one cached loan (never below 10: a worker that evicts
        the loan it is running replays on every step)."""
        if self.max_cached_workflows_override > 0:
            return self.max_cached_workflows_override
        return max(10, int(self.worker_memory_budget_mib / self.workflow_cache_mib_per_loan))

    # --- end of performance ---

    # --- Borrowers' personal data at rest (issue 11 §3, loanops.pii) ---
    # The PII keyring (key id → base64 of 32 random bytes, JSON in LOANOPS_PII_KEYS; the current
    # key id encrypts, every key decrypts) and the blind index's HMAC key. Empty in
    # development/test: generated under key_dir on first use; required in production.
    pii_keys: dict[str, str] = {}
    pii_key_id: str | None = None
    pii_index_key: str = ""

    @model_validator(mode="after")
    def _check_pii_keys(self) -> Settings:
        from loanops.codec import parse_key

        if self.environment == "production":
            if not self.pii_keys:
                raise ValueError(
                    "LOANOPS_PII_KEYS must be set in production (a JSON object of key id to "
                    "base64 of 32 random bytes)"
                )
            problem = (
                "must be set" if not self.pii_index_key else secret_problem(self.pii_index_key)
            )
            if problem:
                raise ValueError(
                    f"LOANOPS_PII_INDEX_KEY {problem}: production needs a random value of at "
                    f"least {MIN_SECRET_CHARS} characters"
                )
        for key_id, key in self.pii_keys.items():
            if ":" in key_id:
                raise ValueError(f"LOANOPS_PII_KEYS: key id {key_id!r} must not contain ':'")
            parse_key(key_id, key)
        current = self.pii_key_id
        if self.pii_keys and current is None and len(self.pii_keys) > 1:
            raise ValueError("LOANOPS_PII_KEY_ID must name the current key")
        if current is not None and current not in self.pii_keys:
            raise ValueError(f"LOANOPS_PII_KEY_ID {current!r} is not in the keyring")
        return self

    # --- end of personal data at rest ---


@lru_cache
def get_settings() -> Settings:
    return Settings()
