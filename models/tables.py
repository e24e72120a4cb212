"""The records the database owns: users, borrowers and the dated versions of their data,
applications, documents, loans, installments, payments, tasks, notices (an outbox) and audit
events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    UniqueConstraint,
    event,
    text,
)
from sqlmodel import Field, Session, SQLModel, col, select

from domain.balances import InstallmentBalance
from models.types import EncryptedString, Money, Rate, UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def _money(*, nullable: bool = False, default: Decimal | None = None) -> Any:
    return Field(default=default, sa_type=Money(), nullable=nullable)


def _pii(*, nullable: bool = False, default: str | None = None, **kw: Any) -> Any:
    """A column of personal data, encrypted at rest (``models.types.EncryptedString``)."""
    return Field(default=default, sa_type=EncryptedString(), nullable=nullable, **kw)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    full_name: str = Field(max_length=128)
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))
    password_hash: str
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Bumped when the user is disabled or their password is reset: every access token minted
    # before (it carries the version it was minted under) is refused from then on.
    token_version: int = 0


class Borrower(SQLModel, table=True):
    """A borrower's identity (the ID number). The data columns hold what was recorded first and
    are never changed: an application reads its own ``BorrowerVersion`` (``borrower_data_of``)."""

    __tablename__ = "borrowers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = _pii()
    id_number: str = _pii(unique=True, index=True)
    phone: str = _pii()
    bank_card: str = _pii()
    monthly_income: Decimal = _money()
    employment_years: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The blind index of ``id_number`` (``loanops.pii.blind_index``), set on every write: the
    # look-up by identity number. None once retention destroyed the borrower's data.
    id_number_index: str | None = Field(default=None, unique=True, index=True, max_length=64)


class BorrowerVersion(SQLModel, table=True):
    """One dated version of a borrower's data. Rows are never changed, only added: an application
    keeps the version it was submitted with, and a later application with other data (or a
    correction) records version N+1 (``models.borrowers.record_borrower_data``)."""

    __tablename__ = "borrower_versions"

    borrower_id: uuid.UUID = Field(foreign_key="borrowers.id", primary_key=True)
    version: int = Field(primary_key=True)
    name: str = _pii()
    phone: str = _pii()
    bank_card: str = _pii()
    monthly_income: Decimal = _money()
    employment_years: int | None = None
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str = Field(max_length=64)
    reason: str = Field(max_length=200)


class Application(SQLModel, table=True):
    __tablename__ = "applications"
    __table_args__ = (
        ForeignKeyConstraint(
            ["borrower_id", "borrower_version"],
            ["borrower_versions.borrower_id", "borrower_versions.version"],
            name="fk_applications_borrower_version",
        ),
        # The loan list (issue 13, migration 0015_perf): newest first, by stage or not, one
        # index walk per page (keyset pagination: ``api.routes.loans``).
        Index("ix_applications_created", "created_at", "application_no"),
        Index("ix_applications_stage_created", "stage", "created_at", "application_no"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(unique=True, index=True, max_length=32)
    borrower_id: uuid.UUID = Field(foreign_key="borrowers.id", index=True)
    amount: Decimal = _money()
    term_months: int
    purpose: str = Field(max_length=200)
    repayment_source: str = Field(max_length=200)
    stage: str = Field(index=True, max_length=32)
    submitted_by: str = Field(max_length=64)
    # The loan policy version the application was started with (domain.policy).
    policy_version: int | None = None
    # The version of the borrower's data the application was submitted with (None only for rows
    # written without one, which read the borrower row: see ``borrower_data_of``).
    borrower_version: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A second business officer who may see and act on it besides the submitter (collection):
    # the seam of the need-to-know rule (``domain.permissions.may_see_application``).
    assigned_officer: str | None = Field(default=None, index=True, max_length=64)


@dataclass(frozen=True)
class BorrowerData:
    """The borrower as one application knows them: the identity and that application's version."""

    borrower_id: uuid.UUID
    id_number: str
    version: int
    name: str
    phone: str
    bank_card: str
    monthly_income: Decimal
    employment_years: int | None


def borrower_data_of(session: Session, app: Application) -> BorrowerData | None:
    """The borrower data ``app`` was submitted with: its own version, never a newer one. An
    application without a version (rows written by hand) reads the borrower row, which is never
    changed after it is first recorded; ``version`` is then 0."""
    borrower = session.get(Borrower, app.borrower_id)
    if borrower is None:
        return None
    source: Borrower | BorrowerVersion | None = borrower
    if app.borrower_version is not None:
        source = session.get(BorrowerVersion, (app.borrower_id, app.borrower_version))
        if source is None:  # the foreign key makes this impossible short of manual edits
            return None
    assert source is not None
    return BorrowerData(
        borrower_id=borrower.id,
        id_number=borrower.id_number,
        version=app.borrower_version or 0,
        name=source.name,
        phone=source.phone,
        bank_card=source.bank_card,
        monthly_income=source.monthly_income,
        employment_years=source.employment_years,
    )


class Document(SQLModel, table=True):
    """A file of an application: the contract PDF the system renders (its bytes in ``content``)
    or a paper the business officer uploads (ID card, income proof...; its bytes in the document
    store under ``store_key``). Signing fields apply to documents the borrower signs."""

    __tablename__ = "documents"

    id: uuid.UUID = Field(primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=32)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    sha256: str = Field(index=True, max_length=64)
    # The bytes, when kept in the row (the contract); None when they are in the document store.
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    size: int = 0
    uploaded_by: str = Field(default="system", max_length=64)
    # The document store's key for the bytes (``loanops.documents``); None when in ``content``.
    store_key: str | None = Field(default=None, max_length=100)
    # The same file (sha256) is attached to an application of another borrower.
    duplicate_of_borrower: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    signer_name: str | None = _pii(nullable=True)
    signer_address: str | None = Field(default=None, max_length=64)
    signed_sha256: str | None = Field(default=None, max_length=64)
    sign_failures: int = 0
    # Issued documents (the contract) are immutable: a re-issue is a new version, and the
    # version it replaces is kept, marked superseded.
    version: int = 1
    superseded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A contract's payee account (the card it names for the payout); None on other documents
    # and on contracts issued before payout-v1 (their application's borrower data names it).
    payee_account: str | None = _pii(nullable=True)
    superseded_by: uuid.UUID | None = None


def contract_of(session: Session, application_no: str) -> Document | None:
    """The application's loan contract in force (the newest version not superseded), if any."""
    return session.exec(
        select(Document)
        .where(
            Document.application_no == application_no,
            Document.kind == "contract",
            col(Document.superseded_at).is_(None),
        )
        .order_by(col(Document.version).desc())
    ).first()


def settlement_certificate_of(session: Session, application_no: str) -> Document | None:
    """The settlement certificate (结清证明) of a settled loan, if issued."""
    return session.exec(
        select(Document).where(
            Document.application_no == application_no,
            Document.kind == "settlement_certificate",
        )
    ).first()


class Loan(SQLModel, table=True):
    __tablename__ = "loans"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(unique=True, index=True, max_length=32)
    contract_no: str = Field(unique=True, max_length=40)
    principal: Decimal = _money()
    annual_rate: Decimal = Field(sa_type=Rate())
    term_months: int
    method: str = Field(max_length=32)
    upfront_fee: Decimal = _money(default=Decimal("0"))
    monthly_fee: Decimal = _money(default=Decimal("0"))
    apr: Decimal = Field(sa_type=Rate())
    apr_compound: Decimal = Field(sa_type=Rate())
    start_date: date | None = None
    status: str = Field(default="pending", max_length=32)
    credit: Decimal = _money(default=Decimal("0"))
    disbursed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disbursed_by: str | None = Field(default=None, max_length=64)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The binding interest ceiling of the offer (caps the penalty rate for life).
    rate_cap: Decimal | None = Field(default=None, sa_type=Rate())
    # The product version's penalty multiple (None: the loan policy's applies).
    penalty_multiple: Decimal | None = Field(default=None, sa_type=Rate())
    # The product version's fee on principal repaid early (0: none).
    prepayment_fee_rate: Decimal = Field(default=Decimal("0"), sa_type=Rate())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Installment(SQLModel, table=True):
    __tablename__ = "installments"
    __table_args__ = (
        UniqueConstraint("application_no", "number"),
        # The reports' overdue scan: unpaid installments due before a date (migration 0011).
        Index("ix_installments_status_due_date", "status", "due_date"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    number: int
    due_date: date
    principal_due: Decimal = _money()
    interest_due: Decimal = _money()
    fee_due: Decimal = _money(default=Decimal("0"))
    principal_paid: Decimal = _money(default=Decimal("0"))
    interest_paid: Decimal = _money(default=Decimal("0"))
    fee_paid: Decimal = _money(default=Decimal("0"))
    penalty_accrued: Decimal = _money(default=Decimal("0"))
    penalty_paid: Decimal = _money(default=Decimal("0"))
    penalty_accrued_through: date | None = None
    status: str = Field(default="scheduled", max_length=16)
    paid_off_on: date | None = None

    def balance(self) -> InstallmentBalance:
        """The row as the money engine's installment balance."""
        return InstallmentBalance(
            number=self.number,
            due_date=self.due_date,
            principal_due=self.principal_due,
            interest_due=self.interest_due,
            fee_due=self.fee_due,
            principal_paid=self.principal_paid,
            interest_paid=self.interest_paid,
            fee_paid=self.fee_paid,
            penalty_accrued=self.penalty_accrued,
            penalty_paid=self.penalty_paid,
            penalty_accrued_through=self.penalty_accrued_through,
        )


class Payment(SQLModel, table=True):
    __tablename__ = "payments"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    external_ref: str = Field(unique=True, index=True, max_length=100)
    amount: Decimal = _money()
    mode: str = Field(default="installments", max_length=20)
    paid_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str = Field(max_length=64)
    allocation: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    credit_after: Decimal = _money(default=Decimal("0"))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A bounced payment reversed (maker: requested_by, checker: reversed_by); its allocation is
    # kept as it was, and the ledger no longer counts it.
    reversed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reversed_by: str | None = Field(default=None, max_length=64)
    reversal_requested_by: str | None = Field(default=None, max_length=64)
    reversal_reason: str | None = Field(default=None, max_length=500)


class Disbursement(SQLModel, table=True):
    __tablename__ = "disbursements"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(unique=True, index=True, max_length=32)
    idempotency_key: str = Field(unique=True, max_length=100)
    amount: Decimal = _money()
    net_amount: Decimal = _money()
    bank_card: str = _pii()
    approved_by: str = Field(max_length=64)
    status: str = Field(default="paid", max_length=16)
    checklist: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The bank's order and value date (payouts through the bank, payout-v1 on).
    bank_order_id: str | None = Field(default=None, max_length=64)
    value_date: date | None = None


class Task(SQLModel, table=True):
    """One human step. The id is derived from the business key, so a retried activity finds it."""

    __tablename__ = "tasks"
    id: uuid.UUID = Field(primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    kind: str = Field(index=True, max_length=32)
    candidate_role: str = Field(index=True, max_length=32)
    maker: str | None = Field(default=None, max_length=64)
    assignee: str | None = Field(default=None, max_length=64)
    status: str = Field(default="open", index=True, max_length=16)
    priority: int = 50
    due_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision: str | None = Field(default=None, max_length=32)
    decided_by: str | None = Field(default=None, max_length=64)
    comment: str | None = None
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # What the person deciding needs to know (a refusal's reasons, the installment called about).
    context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # People who may not decide it (maker-checker); ``maker`` is the first of them.
    excluded: list[str] | None = Field(default=None, sa_column=Column(JSON))
    escalation_level: int = 0
    policy_version: int | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The workflow deciding it when not the loan's own (``loan-<application_no>``).
    workflow_id: str | None = Field(default=None, max_length=128)


# The inbox (issue 13, migration 0015_perf), most urgent first (priority descending, then due
# time): a role's tasks of a status in the inbox's order; and the open tasks of every role (for
# those who oversee tasks), a partial index of the open ones only.
Index(
    "ix_tasks_inbox",
    Task.__table__.c.status,  # type: ignore[attr-defined]
    Task.__table__.c.candidate_role,  # type: ignore[attr-defined]
    Task.__table__.c.priority.desc(),  # type: ignore[attr-defined]
    Task.__table__.c.due_at,  # type: ignore[attr-defined]
    Task.__table__.c.created_at,  # type: ignore[attr-defined]
    Task.__table__.c.id,  # type: ignore[attr-defined]
)
Index(
    "ix_tasks_open_inbox",
    Task.__table__.c.priority.desc(),  # type: ignore[attr-defined]
    Task.__table__.c.due_at,  # type: ignore[attr-defined]
    Task.__table__.c.created_at,  # type: ignore[attr-defined]
    Task.__table__.c.id,  # type: ignore[attr-defined]
    sqlite_where=text("status = 'open'"),
    postgresql_where=text("status = 'open'"),
)


class Notice(SQLModel, table=True):
    """Outbox of messages to staff ("inbox") or borrowers ("sms"), delivered by the worker's
    notice relay (``loanops.notice_relay``): queued → sent (the gateway accepted it) →
    delivered / failed (its receipt, or the attempts ran out). Inbox notices are delivered at
    once (they are read in the app). ``key`` is the business key and the gateway's idempotency
    key."""

    __tablename__ = "notices"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    application_no: str | None = Field(default=None, index=True, max_length=32)
    channel: str = Field(max_length=16)
    recipient: str = Field(max_length=64)
    template: str = Field(max_length=64)
    # A secret template's payload (signing codes, links) is redacted once the gateway has it.
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="queued", max_length=16, index=True)
    # Borrower messages wait for the contact window (collection conduct); staff ones do not.
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    # Delivery: send attempts so far, when the next may start (a claim leases the row until
    # then; a retryable failure backs off), the gateway's id and times, the last error.
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider_message_id: str | None = Field(default=None, index=True, max_length=64)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class AuditEvent(SQLModel, table=True):
    """Append-only trail. ``event_key`` is the business key that makes writing it idempotent."""

    __tablename__ = "audit_events"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    event_key: str = Field(unique=True, max_length=200)
    application_no: str | None = Field(default=None, index=True, max_length=32)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    occurred_at: datetime = Field(sa_type=UTCDateTime, index=True)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The hash chain (domain.audit_chain): the entry's place in the trail, the previous entry's
    # hash and its own. Written by models.audit when the transaction commits.
    seq: int = Field(unique=True, index=True)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The one row (id 1) naming the last entry of the audit chain: appends lock it (SELECT …
    FOR UPDATE on PostgreSQL, the write lock on SQLite) so concurrent writers never fork the
    chain, and ``loanops audit verify`` compares the trail's end with it (a deleted tail)."""

    __tablename__ = "audit_chain"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)


class LprRateRow(SQLModel, table=True):
    """The dated one-year (and five-year) LPR: policy as data. Seeded from the packaged CSV;
    later announcements are added with ``loanops lpr add`` and apply to offers made from then."""

    __tablename__ = "lpr_rates"

    effective_date: date = Field(primary_key=True)
    one_year: Decimal = Field(sa_type=Rate())
    five_year: Decimal | None = Field(default=None, sa_type=Rate())
    source: str = Field(default="", max_length=200)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LoanPolicyRow(SQLModel, table=True):
    """One version of the loan policy (domain.policy.LoanPolicy): a new loan takes the newest
    version whose effective date has come, and keeps it. Rows are never changed, only added."""

    __tablename__ = "loan_policies"

    version: int = Field(primary_key=True)
    effective_from: date = Field(index=True)
    source: str = Field(max_length=200)
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    recorded_by: str = Field(default="system", max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Assessment(SQLModel, table=True):
    """One automatic assessment of an application before its intake review: the named checks,
    the bureau's answer and the score, with the scorecard version (reproducible). A resubmission
    after a supplement is assessed again (``seq``)."""

    __tablename__ = "assessments"
    __table_args__ = (UniqueConstraint("application_no", "seq"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    seq: int
    # found / no_record / unavailable (the specialist chose to go on without it)
    bureau_status: str = Field(max_length=16)
    bureau: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    checks: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    score: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    scorecard_version: int
    grade: str = Field(max_length=2)
    recommendation: str = Field(max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)


class BlacklistEntry(SQLModel, table=True):
    """An identity number the department does not lend to (a knock-out at intake)."""

    __tablename__ = "blacklist_entries"

    # Encrypted like the borrower's (a primary key only for the schema's sake: look entries up
    # by ``id_number_index``, ``models.tables.blacklisted``).
    id_number: str = Field(primary_key=True, sa_type=EncryptedString())
    reason: str = Field(max_length=200)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    id_number_index: str | None = Field(default=None, unique=True, index=True, max_length=64)


def blacklisted(session: Session, id_number: str) -> BlacklistEntry | None:
    """The blacklist entry of ``id_number`` (by its blind index), if any."""
    from loanops.pii import blind_index

    return session.exec(
        select(BlacklistEntry).where(BlacklistEntry.id_number_index == blind_index(id_number))
    ).first()


def borrower_by_id_number(session: Session, id_number: str) -> Borrower | None:
    """The borrower of ``id_number`` (by its blind index), if any."""
    from loanops.pii import blind_index

    return session.exec(
        select(Borrower).where(Borrower.id_number_index == blind_index(id_number))
    ).first()


class ScorecardRow(SQLModel, table=True):
    """One version of the assessment rules: the scorecard and the intake checks' thresholds it
    carries (domain.scorecard.Scorecard). An assessment uses the newest version whose effective
    date has come on the assessment's business date, and records its number. Rows are never
    changed, only added (``loanops scorecard add``)."""

    __tablename__ = "scorecards"

    version: int = Field(primary_key=True)
    effective_from: date = Field(index=True)
    source: str = Field(max_length=200)
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    recorded_by: str = Field(default="system", max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LoanClassification(SQLModel, table=True):
    """One change of a loan's five-category classification (domain.classification): rows are
    only added, ``seq`` 1, 2, … per loan; the newest is the loan's category. ``source`` is auto
    (the daily rules) or manual (the risk manager's override, with the reason)."""

    __tablename__ = "loan_classifications"
    __table_args__ = (UniqueConstraint("application_no", "seq"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    seq: int
    category: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    source: str = Field(max_length=8)
    days_past_due: int
    # The business date the rules were applied for.
    as_of: date
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_type=UTCDateTime)


class PortfolioSnapshot(SQLModel, table=True):
    """The portfolio report of one business day (``loanops.reports.snapshot_portfolio``), kept
    as it was that day; one row per day, the first taken wins."""

    __tablename__ = "portfolio_snapshots"

    as_of: date = Field(primary_key=True)
    loan_count: int
    outstanding_principal: Decimal = _money()
    overdue_principal: Decimal = _money()
    par30: Decimal = Field(sa_type=Rate())
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    taken_at: datetime = Field(sa_type=UTCDateTime)


class Product(SQLModel, table=True):
    """A loan product of the catalog (``domain.products``): its code and when it was created.
    What it lends is in its versions; this row is never changed."""

    __tablename__ = "products"

    code: str = Field(primary_key=True, max_length=32)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProductVersionRow(SQLModel, table=True):
    """One version of a product's definition (``domain.products.ProductDefinition`` as JSON).
    Rows are never changed, only added: the version in force on a date is the newest whose
    effective date has come, and an offer records the version it used."""

    __tablename__ = "product_versions"

    code: str = Field(foreign_key="products.code", primary_key=True, max_length=32)
    version: int = Field(primary_key=True)
    effective_from: date = Field(index=True)
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=200)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SigningCode(SQLModel, table=True):
    """A one-time code sent to the borrower's phone to prove the signer holds it. Only its
    HMAC is kept (``loanops.security.signing_code_hash``); it counts wrong tries and locks at
    the limit, expires, and is used at most once. A new code replaces the open ones."""

    __tablename__ = "signing_codes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    document_id: uuid.UUID = Field(index=True)
    application_no: str = Field(index=True, max_length=32)
    code_hash: str = Field(max_length=64)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    tries: int = 0
    # active / used / locked (too many wrong tries) / replaced (a newer code was sent)
    status: str = Field(default="active", max_length=16)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ContractSignature(SQLModel, table=True):
    """The borrower's signature of one contract document and the lender's seal on it: the
    evidence the API verified (never the code itself), the signed PDF the worker made from it
    (the signing record appended as its last page), and who sealed it for the lender, when."""

    __tablename__ = "contract_signatures"

    # The contract document the borrower was sent (kind "contract").
    document_id: uuid.UUID = Field(primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    signer_name: str = _pii()
    client_address: str = Field(max_length=64)
    user_agent: str = Field(max_length=300)
    # The disclosure item ids the borrower confirmed (domain.signing.DISCLOSURE_ITEMS).
    confirmed: list[str] = Field(sa_column=Column(JSON, nullable=False))
    code_id: uuid.UUID
    code_issued_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    # The contract's sha256 as issued (what the borrower signed).
    document_sha256: str = Field(max_length=64)
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The signed PDF (kind "contract_signed") and its own sha256.
    signed_document_id: uuid.UUID | None = None
    signed_sha256: str | None = Field(default=None, max_length=64)
    sealed_by: str | None = Field(default=None, max_length=64)
    sealed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    seal_refused_by: str | None = Field(default=None, max_length=64)
    seal_refused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    seal_refused_reason: str | None = Field(default=None, max_length=500)


class FundingPool(SQLModel, table=True):
    """The lender's funding pool (one row, ``domain.funding.POOL_CODE``): the bank account that
    pays disbursements and receives repayments. ``balance`` and ``reserved`` change only through
    ``models.funding`` (conditional updates, so two payouts cannot both take the last yuan).
    ``low_liquidity_threshold`` is the pool's warning line (data, not the loan policy)."""

    __tablename__ = "funding_pools"

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=128)
    account_no: str = Field(max_length=32)
    balance: Decimal = _money(default=Decimal("0"))
    reserved: Decimal = _money(default=Decimal("0"))
    low_liquidity_threshold: Decimal = _money(default=Decimal("0"))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FundingReservation(SQLModel, table=True):
    """Money set aside for one loan's payout, by business key: reserved → consumed (paid out)
    or released (the payout will not happen)."""

    __tablename__ = "funding_reservations"

    key: str = Field(primary_key=True, max_length=100)
    pool_code: str = Field(foreign_key="funding_pools.code", max_length=32)
    application_no: str = Field(index=True, max_length=32)
    amount: Decimal = _money()
    status: str = Field(default="reserved", index=True, max_length=16)
    reserved_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=64)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FundingMovement(SQLModel, table=True):
    """A movement of the pool's balance, by business key: manual top-ups and withdrawals
    (pending until a second person authorizes them), repayment inflows and payouts (posted at
    once). ``amount`` is positive; ``domain.funding.signed`` gives its effect."""

    __tablename__ = "funding_movements"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(unique=True, max_length=120)
    pool_code: str = Field(foreign_key="funding_pools.code", max_length=32)
    kind: str = Field(max_length=20)
    amount: Decimal = _money()
    status: str = Field(default="pending", index=True, max_length=16)
    reason: str = Field(default="", max_length=200)
    reference: str = Field(max_length=100)
    application_no: str | None = Field(default=None, index=True, max_length=32)
    requested_by: str = Field(max_length=64)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    authorized_by: str | None = Field(default=None, max_length=64)
    authorized_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    balance_after: Decimal | None = _money(nullable=True)


class Payout(SQLModel, table=True):
    """One payout attempt of a loan, by its bank order key (``domain.payout.order_key``): the
    pre-check list it passed or failed, who asked for and authorized it, the payee the contract
    names, and what the bank said. A disbursement row is written only once the bank executed
    the order."""

    __tablename__ = "payouts"

    order_key: str = Field(primary_key=True, max_length=100)
    application_no: str = Field(index=True, max_length=32)
    attempt: int = 1
    # prechecked → awaiting_funds → sent → executed | rejected | released
    status: str = Field(default="prechecked", index=True, max_length=16)
    amount: Decimal = _money()
    payee_account: str = _pii()
    payee_name: str = _pii()
    checklist: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    requested_by: str = Field(max_length=64)
    authorized_by: list[str] = Field(sa_column=Column(JSON, nullable=False))
    bank_order_id: str | None = Field(default=None, max_length=64)
    value_date: date | None = None
    reason_code: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Refund(SQLModel, table=True):
    """A settled loan's credit refunded to the account its signed contract names
    (settlement-refund-v1): one row per loan, its status (``domain.refund.RefundStatus``), who
    requested (made) and authorized (checked) it, the bank order it was paid by (the last key
    sent), and why it failed or was closed. Every step is audited (``refund.<status>``)."""

    __tablename__ = "refunds"

    application_no: str = Field(primary_key=True, max_length=32)
    status: str = Field(default="awaiting_maker", index=True, max_length=20)
    amount: Decimal = _money()
    payee_account: str | None = _pii(nullable=True)
    payee_name: str | None = _pii(nullable=True)
    order_key: str | None = Field(default=None, max_length=100)
    made_by: str | None = Field(default=None, max_length=64)
    checked_by: str | None = Field(default=None, max_length=64)
    bank_order_id: str | None = Field(default=None, max_length=64)
    value_date: date | None = None
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class LoanArchive(SQLModel, table=True):
    """A settled loan's documents archived as one bundle (a zip in the document store under
    ``bundle_key``): the manifest lists each document (id, kind, file name, size, the sha256
    recomputed from the stored bytes and whether it matches the recorded one); kept until
    ``retain_until`` (the loan policy's ``archive_retention_years`` after settlement)."""

    __tablename__ = "loan_archives"

    application_no: str = Field(primary_key=True, max_length=32)
    archived_at: datetime = Field(sa_type=UTCDateTime)
    settled_on: date
    retain_until: date
    document_count: int
    # Every document's recomputed sha256 matched the recorded one, and every file was found.
    intact: bool
    manifest: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    bundle_key: str = Field(max_length=100)
    bundle_sha256: str = Field(max_length=64)
    bundle_size: int


class LoanRiskFlag(SQLModel, table=True):
    """A risk flag on a loan (domain.aftercare.FlagKind), raised by a follow-up call's answers
    (``source_task_id``); open until a post-loan review clears it. The id is derived from the
    loan, the source and the kind, so a retried activity never raises it twice."""

    __tablename__ = "loan_risk_flags"
    __table_args__ = (Index("ix_loan_risk_flags_open", "application_no", "cleared_at"),)

    id: uuid.UUID = Field(primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=32)
    source_task_id: str | None = Field(default=None, max_length=64)
    detail: str = Field(max_length=500)
    raised_by: str = Field(max_length=64)
    raised_at: datetime = Field(sa_type=UTCDateTime)
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cleared_by: str | None = Field(default=None, max_length=64)
    # The post-loan review (period key) that cleared it.
    cleared_by_review: str | None = Field(default=None, max_length=80)


class PostLoanReview(SQLModel, table=True):
    """One post-loan review of a loan: opened (its task, why, what the reviewer was shown),
    then decided (outcome, reviewer, reason) or expired. One per loan and period key."""

    __tablename__ = "post_loan_reviews"
    __table_args__ = (UniqueConstraint("application_no", "period_key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    application_no: str = Field(index=True, max_length=32)
    period_key: str = Field(max_length=80)
    reason: str = Field(max_length=200)
    task_id: str = Field(max_length=64)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    # The business date it opened: the next periodic review falls due from it.
    opened_on: date
    context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # found / no_record / unavailable: the refreshed credit bureau report.
    bureau_status: str = Field(default="unavailable", max_length=16)
    # no_action / watch / accelerate_collection, or expired (nobody decided).
    outcome: str | None = Field(default=None, max_length=32)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome_reason: str | None = Field(default=None, max_length=500)
    # What the outcome did (the classification set, the flags cleared).
    effect: str | None = Field(default=None, max_length=500)


class CollectionContact(SQLModel, table=True):
    """The collections log of a loan (issue 10 §1): every step of the ladder with the rule it
    applied, and every contact with the borrower with its outcome. Rows are only added, once
    per ``key`` (the workflow's business key)."""

    __tablename__ = "collection_contacts"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    application_no: str = Field(index=True, max_length=32)
    episode: int
    workflow_id: str = Field(max_length=128)
    step: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    outcome: str = Field(max_length=32)
    rule: str = Field(max_length=300)
    days_past_due: int
    actor: str = Field(max_length=64)
    task_id: str | None = Field(default=None, max_length=64)
    promise_amount: Decimal | None = _money(nullable=True)
    promise_date: date | None = None
    note: str | None = Field(default=None, max_length=4000)
    policy_version: int | None = None
    occurred_at: datetime = Field(sa_type=UTCDateTime)


class LoanWriteOff(SQLModel, table=True):
    """A loan's write-off: principal, interest, penalty and fees written off, recorded
    separately, who proposed and who approved it, and what has been recovered since."""

    __tablename__ = "loan_write_offs"

    application_no: str = Field(primary_key=True, max_length=32)
    written_off_on: date
    principal: Decimal = _money()
    interest: Decimal = _money()
    penalty: Decimal = _money()
    fees: Decimal = _money()
    recovered: Decimal = _money(default=Decimal("0"))
    proposed_by: str = Field(max_length=64)
    approved_by: str = Field(max_length=64)
    episode: int
    policy_version: int | None = None
    written_off_at: datetime = Field(sa_type=UTCDateTime)


class WriteOffRecovery(SQLModel, table=True):
    """A payment received on a written-off loan (its allocation is on the payment row)."""

    __tablename__ = "write_off_recoveries"

    external_ref: str = Field(primary_key=True, max_length=100)
    application_no: str = Field(index=True, max_length=32)
    amount: Decimal = _money()
    recovered_total: Decimal = _money()
    received_at: datetime = Field(sa_type=UTCDateTime)


class ReconciliationRun(SQLModel, table=True):
    """One daily reconciliation of the bank's ledger with the records (``reconcile-<date>``):
    what it compared and how many differences it found new."""

    __tablename__ = "reconciliation_runs"

    business_date: date = Field(primary_key=True)
    workflow_id: str = Field(max_length=128)
    status: str = Field(default="running", max_length=16)
    # Movements executed or recorded after this instant were left for the next run (grace).
    cutoff: datetime = Field(sa_type=UTCDateTime)
    bank_movements: int = 0
    records: int = 0
    matched: int = 0
    in_grace: int = 0
    differences_found: int = 0
    differences_new: int = 0
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReconciliationDifference(SQLModel, table=True):
    """A difference between the bank and the records (``domain.reconciliation``), recorded once
    by its key (found again the next day, it is not recorded or opened again); its task and how
    it was settled."""

    __tablename__ = "reconciliation_differences"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(unique=True, max_length=160)
    # The run that found it first.
    business_date: date = Field(index=True)
    kind: str = Field(max_length=20)
    direction: str = Field(max_length=4)
    reference: str = Field(max_length=120)
    application_no: str | None = Field(default=None, max_length=32)
    bank_amount: Decimal | None = _money(nullable=True)
    record_amount: Decimal | None = _money(nullable=True)
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # open → escalated → resolved, or unresolved (nobody settled it within the task's SLAs).
    status: str = Field(default="open", index=True, max_length=16)
    task_id: uuid.UUID | None = None
    resolved_by: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    comment: str | None = None
    found_at: datetime = Field(sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Consecutive failed logins per username (known or not, so a lockout says nothing about
    whether the account exists), and the lock they led to. In the database, so the count holds
    across API processes."""

    __tablename__ = "login_throttles"

    username: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    last_failure_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuthSession(SQLModel, table=True):
    """One login: its access tokens carry its id (``sid``), its refresh tokens belong to it.
    Revoked on logout, on disable or password reset, and when a used refresh token comes back
    (a stolen copy): its access tokens are refused from then on."""

    __tablename__ = "auth_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(index=True, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=64)


class RefreshToken(SQLModel, table=True):
    """A refresh token, stored only as its SHA-256 (the token is 32 random bytes: no dictionary
    to search). Used once: a refresh marks it used and issues the next one of its session."""

    __tablename__ = "refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    session_id: uuid.UUID = Field(foreign_key="auth_sessions.id", index=True)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PaymentRef(SQLModel, table=True):
    """A bank reference claimed by the loan it was first posted to, written (and committed)
    before the loan's ledger is asked to book it: the primary key makes the database the judge
    of "first one wins" when two loans post one reference at the same moment. A reference
    identifies one movement of money, whatever loan it is posted to. A claim whose payment the
    loan refused (a 4xx from its ledger) is released; one whose outcome is unknown (Temporal
    unreachable mid-call) is kept, and only its own loan may post the reference again."""

    __tablename__ = "payment_refs"

    external_ref: str = Field(primary_key=True, max_length=100)
    application_no: str = Field(index=True, max_length=32)
    claimed_by: str = Field(max_length=64)
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@event.listens_for(Borrower, "before_insert")
@event.listens_for(Borrower, "before_update")
@event.listens_for(BlacklistEntry, "before_insert")
@event.listens_for(BlacklistEntry, "before_update")
def _set_id_number_index(_mapper: Any, _connection: Any, row: Borrower | BlacklistEntry) -> None:
    """Every write keeps the blind index in step with the identity number (None for a
    tombstone: a destroyed borrower is found by no identity number)."""
    from loanops.pii import blind_index, is_tombstone

    row.id_number_index = None if is_tombstone(row.id_number) else blind_index(row.id_number)
