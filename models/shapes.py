"""Dataclasses that cross the Temporal boundary: workflow input, updates, queries, activity inputs.

Each is one dataclass so fields can be added later with defaults without breaking running loans.
They travel through the pydantic data converter, so Decimal and date round-trip exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.allocation import AllocationLine, InstallmentBalance
from domain.schedule import RepaymentMethod, Schedule, build_schedule


@dataclass(frozen=True)
class ProcessSettings:
    """The process policy a loan was started with; later changes apply to new loans only."""

    sla_hours: dict[str, float]
    supplement_deadline_days: int = 7
    offer_valid_days: int = 7
    contract_sign_days: int = 5
    reminder_days_before_due: int = 3
    business_timezone: str = "Asia/Shanghai"
    penalty_multiple: Decimal = Decimal("1.5")
    penalty_grace_days: int = 0
    lpr_multiple: Decimal = Decimal("4")
    absolute_rate_cap: Decimal | None = Decimal("0.24")
    # Servicing continues as new past this many history events (Temporal warns at 10,240).
    continue_as_new_after_events: int = 5000
    # What a repayment beyond what is due does: pay the next installments early, or wait as
    # credit for the next due date. (Reducing principal is an explicit partial prepayment, so
    # the rest of the schedule is always re-amortized.)
    overpayment: str = "next_installment"


@dataclass(frozen=True)
class LoanInput:
    application_no: str
    submitted_by: str
    requested_amount: Decimal
    requested_term_months: int
    settings: ProcessSettings
    # Set on continue-as-new during servicing; None on a fresh start.
    resume: ServicingState | None = None


# ---- human tasks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingTask:
    task_id: str
    kind: str
    candidate_role: str
    decisions: tuple[str, ...]
    maker: str | None
    priority: int
    due_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True)
class DecisionRequest:
    """A decision on the pending task, sent by the API as a workflow update."""

    task_id: str
    decision: str
    user: str
    roles: tuple[str, ...]
    comment: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class DecisionResult:
    task_id: str
    stage: str


@dataclass(frozen=True)
class OpenTaskInput:
    task_id: str
    application_no: str
    kind: str
    candidate_role: str
    maker: str | None
    priority: int
    created_at: datetime
    due_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True)
class EscalateTaskInput:
    task_id: str
    application_no: str
    kind: str
    level: int
    priority: int
    escalated_at: datetime
    next_due_at: datetime


@dataclass(frozen=True)
class CloseTaskInput:
    task_id: str
    application_no: str
    kind: str
    status: str  # completed / cancelled / expired
    closed_at: datetime
    decision: str | None = None
    decided_by: str | None = None
    comment: str | None = None
    data: dict[str, Any] | None = None


# ---- stages, offer, contract -----------------------------------------------------------------


@dataclass(frozen=True)
class StageInput:
    application_no: str
    stage: str
    seq: int
    at: datetime
    actor: str = "system"
    reason: str | None = None


@dataclass(frozen=True)
class LoanTerms:
    """What the product manager fixed and the borrower is offered (amount, term, rate, method, fees)."""

    principal: Decimal
    term_months: int
    annual_rate: Decimal
    method: str
    upfront_fee: Decimal = Decimal("0")
    monthly_fee: Decimal = Decimal("0")

    def schedule(self, start_date: date) -> Schedule:
        """The repayment schedule of these terms from ``start_date`` (the money engine's)."""
        return build_schedule(
            principal=self.principal,
            annual_rate=self.annual_rate,
            term_months=self.term_months,
            method=RepaymentMethod(self.method),
            start_date=start_date,
            monthly_fee=self.monthly_fee,
        )


@dataclass(frozen=True)
class Offer:
    terms: LoanTerms
    apr: Decimal
    apr_compound: Decimal
    total_interest: Decimal
    total_fees: Decimal
    total_payment: Decimal
    first_payment: Decimal
    lpr: Decimal
    rate_cap: Decimal
    offered_on: date
    expires_at: datetime


@dataclass(frozen=True)
class OfferInput:
    application_no: str
    offer: Offer
    matched_by: str
    at: datetime


@dataclass(frozen=True)
class ContractInput:
    application_no: str
    contract_no: str
    offer: Offer
    contract_date: date
    penalty_multiple: Decimal
    at: datetime


@dataclass(frozen=True)
class ContractInfo:
    document_id: str
    sha256: str
    contract_no: str


@dataclass(frozen=True)
class SignRequest:
    document_id: str
    signer_name: str
    client_address: str
    sha256: str


@dataclass(frozen=True)
class SignatureInput:
    application_no: str
    document_id: str
    signer_name: str
    client_address: str
    sha256: str
    signed_at: datetime


# ---- disbursement and servicing -------------------------------------------------------------


@dataclass(frozen=True)
class DisburseInput:
    application_no: str
    idempotency_key: str
    principal: Decimal
    net_amount: Decimal
    approved_by: str
    at: datetime


@dataclass(frozen=True)
class DisburseResult:
    disbursed_at: datetime
    business_date: date


@dataclass(frozen=True)
class BookLoanInput:
    application_no: str
    start_date: date
    installments: tuple[InstallmentBalance, ...]
    at: datetime


@dataclass(frozen=True)
class PaymentRequest:
    external_ref: str
    amount: Decimal
    paid_at: datetime
    paid_on: date  # the business date of paid_at (Asia/Shanghai by default)
    recorded_by: str
    # installments: pay what is due, then the next installments in order;
    # payoff: settle the whole loan (interest only to date);
    # keep_term / keep_installment: a partial prepayment that re-amortizes the rest.
    mode: str = "installments"


@dataclass(frozen=True)
class PaymentResult:
    external_ref: str
    amount: Decimal
    lines: tuple[AllocationLine, ...]
    credit: Decimal
    stage: str
    duplicate: bool = False


@dataclass(frozen=True)
class RecordPaymentInput:
    application_no: str
    request: PaymentRequest
    lines: tuple[AllocationLine, ...]
    installments: tuple[InstallmentBalance, ...]
    credit: Decimal


PAYMENT_MODES = ("installments", "payoff", "keep_term", "keep_installment")
# Recorded by the workflow itself when credit held pays an installment on its due date.
CREDIT_MODE = "credit"


@dataclass(frozen=True)
class ServicingEventInput:
    """A reminder before a due date, an installment falling overdue, or the daily overdue refresh."""

    application_no: str
    event: str  # reminder / overdue / overdue_refresh
    installment: int
    at: datetime
    business_date: date
    installments: tuple[InstallmentBalance, ...] = ()
    days_past_due: int = 0


@dataclass(frozen=True)
class SettleInput:
    application_no: str
    at: datetime
    credit: Decimal


@dataclass(frozen=True)
class ServicingState:
    """Everything servicing needs to carry across continue-as-new."""

    offer: Offer
    contract: ContractInfo
    start_date: date
    installments: tuple[InstallmentBalance, ...]
    credit: Decimal
    reminded: tuple[int, ...] = ()
    overdue_marked: tuple[int, ...] = ()
    payments: tuple[PaymentResult, ...] = ()
    ledger_as_of: date | None = None
    stage_seq: int = 0
    task_seq: int = 0


@dataclass(frozen=True)
class LoanView:
    """The live state of one loan, answered by the workflow query."""

    application_no: str
    stage: str
    pending_task: PendingTask | None
    offer: Offer | None
    contract: ContractInfo | None
    start_date: date | None
    installments: tuple[InstallmentBalance, ...] = field(default_factory=tuple)
    credit: Decimal = Decimal("0")
