"""Dataclasses that cross the Temporal boundary: workflow input, updates, queries, activity inputs.

Each is one dataclass so fields can be added later with defaults without breaking running loans.
They travel through the pydantic data converter, so Decimal and date round-trip exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from domain.allocation import AllocationLine, InstallmentBalance, PaymentMode
from domain.bureau import BureauReport
from domain.lifecycle import Role, Stage
from domain.lpr import LprRate
from domain.penalty import PenaltyPolicy
from domain.policy import LoanPolicy
from domain.products import OfferedProduct
from domain.schedule import RepaymentMethod, Schedule, UpfrontFeeDue, build_schedule
from domain.tasks import TaskKind, TaskStatus


@dataclass(frozen=True)
class LoanInput:
    """The origination workflow's input: the application and the policy version in force when
    it was submitted (the loan keeps that version for life)."""

    application_no: str
    submitted_by: str
    requested_amount: Decimal
    requested_term_months: int
    policy: LoanPolicy
    # The language the borrower's contract is written in ("zh-CN" or "en").
    contract_language: str = "zh-CN"


# ---- human tasks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenTask:
    """One open human task as the workflow holds it (and carries across continue-as-new)."""

    task_id: str
    kind: TaskKind
    candidate_role: Role
    decisions: tuple[str, ...]
    # People who may not decide it (maker-checker).
    excluded: tuple[str, ...]
    priority: int
    due_at: datetime
    created_at: datetime
    expires_at: datetime | None = None
    level: int = 0
    handed_over: bool = False
    # Its row is committed: views show it from then on (a decision is accepted before, too).
    recorded: bool = False
    # What the person deciding needs to know (the refusal's reasons, the installment called about).
    context: dict[str, Any] | None = None


@dataclass(frozen=True)
class TasksState:
    """The human-task mechanism's state, carried across continue-as-new."""

    open: tuple[OpenTask, ...] = ()
    seq: int = 0
    # Who decided each party's step (domain.tasks.Party → username), for maker-checker.
    deciders: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DecisionRequest:
    """A decision on an open task, sent by the API as a workflow update."""

    task_id: str
    decision: str
    user: str
    roles: tuple[str, ...]
    comment: str | None = None
    data: dict[str, Any] | None = None
    # The one-year LPR in force on the day of the decision, read from the table on record by
    # the API: product terms are priced against the ceiling of the offer date.
    lpr_in_force: LprRate | None = None


@dataclass(frozen=True)
class WithdrawRequest:
    """The borrower walks away before disbursement (sent by the officer or the manager)."""

    user: str
    roles: tuple[str, ...]
    reason: str | None = None


@dataclass(frozen=True)
class DecisionResult:
    task_id: str
    # The loan's stage once the workflow acted on the decision; for a department job's task
    # (a reconciliation, a liquidity alert) the job's state, e.g. RECONCILING.
    stage: str


@dataclass(frozen=True)
class OpenTaskInput:
    task_id: str
    application_no: str
    kind: TaskKind
    candidate_role: Role
    excluded: tuple[str, ...]
    priority: int
    created_at: datetime
    due_at: datetime
    expires_at: datetime | None = None
    context: dict[str, Any] | None = None
    policy_version: int = 0
    # The workflow that decides the task when it is not the loan's own (a collections episode,
    # a reconciliation run): the inbox sends the decision there. None: ``loan-<application_no>``.
    workflow_id: str | None = None


@dataclass(frozen=True)
class EscalateTaskInput:
    task_id: str
    application_no: str
    kind: TaskKind
    level: int
    priority: int
    escalated_at: datetime
    next_due_at: datetime
    # Set when the task passes to another role (the department manager) at this level.
    handed_to: Role | None = None


@dataclass(frozen=True)
class CloseTaskInput:
    task_id: str
    application_no: str
    kind: TaskKind
    status: TaskStatus
    closed_at: datetime
    decision: str | None = None
    decided_by: str | None = None
    comment: str | None = None
    data: dict[str, Any] | None = None
    policy_version: int = 0


# ---- stages, offer, contract -----------------------------------------------------------------


@dataclass(frozen=True)
class StageInput:
    application_no: str
    stage: Stage
    seq: int
    at: datetime
    actor: str = "system"
    reason: str | None = None
    policy_version: int = 0


@dataclass(frozen=True)
class LoanTerms:
    """What the product manager fixed and the borrower is offered (amount, term, rate, method, fees)."""

    principal: Decimal
    term_months: int
    annual_rate: Decimal
    method: RepaymentMethod
    upfront_fee: Decimal = Decimal("0")
    monthly_fee: Decimal = Decimal("0")
    # When the upfront fee falls due (the product states it); never out of the principal
    # except for loans priced before fee-not-deducted-v1.
    upfront_fee_due: UpfrontFeeDue = UpfrontFeeDue.FIRST_INSTALLMENT

    @property
    def fee_deducted(self) -> Decimal:
        """The part of the upfront fee taken out of the payout (legacy loans only; else 0)."""
        if self.upfront_fee_due == UpfrontFeeDue.DEDUCTED_FROM_PAYOUT:
            return self.upfront_fee
        return Decimal("0.00")

    @property
    def payout(self) -> Decimal:
        """What the borrower receives at disbursement: the whole principal."""
        return self.principal - self.fee_deducted

    def schedule(self, start_date: date) -> Schedule:
        """The repayment schedule of these terms from ``start_date`` (the money engine's); the
        upfront fee is a due amount of the first installment."""
        return build_schedule(
            principal=self.principal,
            annual_rate=self.annual_rate,
            term_months=self.term_months,
            method=self.method,
            start_date=start_date,
            monthly_fee=self.monthly_fee,
            upfront_fee=self.upfront_fee - self.fee_deducted,
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
    # The catalog product version the offer was made under, with the figures it used (None:
    # loans matched in free form before the catalog).
    product: OfferedProduct | None = None

    def penalty(self, policy: LoanPolicy) -> PenaltyPolicy:
        """The loan's penalty terms: the penalty multiple of the product version it was offered
        under (the contract prints it), else the loan policy's; grace days are the policy's."""
        return penalty_terms(policy, self.product.penalty_multiple if self.product else None)

    @property
    def prepayment_fee_rate(self) -> Decimal:
        """The fee on principal repaid early: the product version's rate (0 without one)."""
        return self.product.prepayment_fee_rate if self.product else Decimal("0")


def penalty_terms(policy: LoanPolicy, product_multiple: Decimal | None) -> PenaltyPolicy:
    """The penalty policy of a loan whose product states ``product_multiple`` (None: none
    does, the loan policy's multiple applies)."""
    if product_multiple is None:
        return policy.penalty
    return PenaltyPolicy(multiple=product_multiple, grace_days=policy.penalty_grace_days)


@dataclass(frozen=True)
class OfferInput:
    application_no: str
    offer: Offer
    matched_by: str
    at: datetime
    # The product matching round (1, then one more per other_terms): one audit event each.
    round: int = 1


@dataclass(frozen=True)
class ProposeInput:
    """Match the application against the catalog in force on ``offered_on``. The activity
    reads the facts (caps, age, documents; the grade when the workflow has none) from the
    database; the ceiling is the loan's policy's."""

    application_no: str
    round: int
    at: datetime
    offered_on: date
    requested_amount: Decimal
    requested_term_months: int
    grade: str | None
    manager_approved: bool
    lpr_multiple: Decimal
    absolute_rate_cap: Decimal | None


@dataclass(frozen=True)
class ContractInput:
    application_no: str
    contract_no: str
    offer: Offer
    contract_date: date
    penalty_multiple: Decimal
    at: datetime
    # The loan's penalty policy beyond the multiple (the contract prints what the ledger charges).
    penalty_grace_days: int = 0
    # zh-CN by default; "en" renders the English version.
    language: str = "zh-CN"
    # A re-issue is a new version: the earlier one is kept, marked superseded.
    version: int = 1


@dataclass(frozen=True)
class ContractInfo:
    document_id: str
    sha256: str
    contract_no: str


@dataclass(frozen=True)
class SignRequest:
    """The borrower's signature, sent by the API once the signer proved who they are. The
    signer's name and address stay in the database (the API records the attempt there): no
    personal data travels through workflow history."""

    document_id: str
    sha256: str
    # Who the API authenticated (the signing link's holder: domain.permissions.BORROWER).
    principals: tuple[str, ...]


@dataclass(frozen=True)
class SignatureInput:
    application_no: str
    document_id: str
    sha256: str
    signed_at: datetime


@dataclass(frozen=True)
class SealInput:
    """The lender's seal on the signed contract (``decision`` seal or refuse)."""

    application_no: str
    document_id: str
    decision: str
    user: str
    at: datetime
    reason: str | None = None


# ---- assessment before the intake review ---------------------------------------------------


@dataclass(frozen=True)
class BureauRequest:
    """Ask the credit bureau about the application's borrower (read from the database by the
    activity: no personal data in workflow history). ``request_id`` makes a retry one enquiry."""

    application_no: str
    request_id: str


@dataclass(frozen=True)
class BureauAnswer:
    status: str  # found / no_record
    report: BureauReport | None = None


@dataclass(frozen=True)
class AssessInput:
    application_no: str
    seq: int
    at: datetime
    business_date: date
    # found / no_record / unavailable (the specialist chose to go on without the bureau)
    bureau_status: str
    bureau: BureauReport | None
    # The loan policy's ceiling: affordability is judged at the highest rate a product may charge.
    lpr_multiple: Decimal
    absolute_rate_cap: Decimal | None


@dataclass(frozen=True)
class AssessmentSummary:
    """What the reviewers' tasks show of an assessment (the full record is in the database)."""

    seq: int
    grade: str
    score: int
    recommendation: str
    knock_outs: tuple[str, ...]
    # Checks that did not pass (fail or warn).
    attention: tuple[str, ...]
    bureau_status: str


@dataclass(frozen=True)
class RiskReportInput:
    """Render the risk report of an assessment round for the risk manager's task."""

    application_no: str
    seq: int
    at: datetime
    business_timezone: str
    # The approval authority, as the workflow judged it (empty: within the risk manager's).
    beyond_authority: tuple[str, ...] = ()


# ---- disbursement and servicing -------------------------------------------------------------


@dataclass(frozen=True)
class DisburseInput:
    application_no: str
    idempotency_key: str
    principal: Decimal
    net_amount: Decimal
    approved_by: str
    at: datetime
    # The loan's policy zone: the loan starts on the business date of the payout.
    business_timezone: str = "Asia/Shanghai"
    # Whether the upfront fee was taken out of the payout (only loans priced before
    # fee-not-deducted-v1; the default answers an input scheduled by the code before it).
    upfront_fee_deducted: bool = True


@dataclass(frozen=True)
class DisburseResult:
    disbursed_at: datetime
    business_date: date


@dataclass(frozen=True)
class Refusal:
    """A business refusal an activity reported (a failed pre-check; later a bank rejection):
    what was refused and every reason, for the task that puts it before a person."""

    what: str
    reasons: tuple[str, ...]


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
    mode: PaymentMode = PaymentMode.INSTALLMENTS
    # The recording user's roles (the validator checks them against the permission matrix).
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaymentResult:
    external_ref: str
    amount: Decimal
    lines: tuple[AllocationLine, ...]
    credit: Decimal
    stage: Stage
    duplicate: bool = False


@dataclass(frozen=True)
class RecordPaymentInput:
    application_no: str
    request: PaymentRequest
    lines: tuple[AllocationLine, ...]
    installments: tuple[InstallmentBalance, ...]
    credit: Decimal


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
    # The loan's policy: borrower notices wait for its contact window.
    business_timezone: str = "Asia/Shanghai"
    contact_hours: tuple[time, time] = (time(8, 0), time(21, 0))


@dataclass(frozen=True)
class SettleInput:
    application_no: str
    at: datetime
    credit: Decimal


@dataclass(frozen=True)
class SettlementCertificateInput:
    """Issue the settlement certificate (结清证明) of a loan that has just settled; the figures
    are read from the ledger's rows by the activity."""

    application_no: str
    contract_no: str
    at: datetime
    settled_on: date


@dataclass(frozen=True)
class LedgerState:
    """The loan's ledger as the servicing workflow holds it."""

    installments: tuple[InstallmentBalance, ...]
    credit: Decimal = Decimal("0")
    as_of: date | None = None
    # Recent payment results, so a repeated external_ref gets the first answer.
    payments: tuple[PaymentResult, ...] = ()


@dataclass(frozen=True)
class ServicingInput:
    """The servicing workflow's input: from origination (continue-as-new on the same workflow
    id) or from an earlier servicing run."""

    application_no: str
    policy: LoanPolicy
    offer: Offer
    contract: ContractInfo
    start_date: date
    ledger: LedgerState
    tasks: TasksState = field(default_factory=TasksState)
    reminded: tuple[int, ...] = ()
    overdue_marked: tuple[int, ...] = ()
    follow_up_opened: bool = False
    stage_seq: int = 0


@dataclass(frozen=True)
class LoanView:
    """The live state of one loan, answered by the workflow query (origination or servicing)."""

    application_no: str
    stage: Stage
    policy: LoanPolicy
    open_tasks: tuple[OpenTask, ...] = ()
    offer: Offer | None = None
    contract: ContractInfo | None = None
    start_date: date | None = None
    installments: tuple[InstallmentBalance, ...] = ()
    credit: Decimal = Decimal("0")
