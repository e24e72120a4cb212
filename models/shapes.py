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
    # The stage the loan is moving to once the decision is recorded (before
    # decision-answers-when-recorded-v1: the stage it rested in once the workflow acted on
    # it); for a department job's task
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
    # settlement-refund-v1: the credit is refunded through the refund tasks (workflows/refund.py)
    # instead of the inbox notice ``refund_overpayment`` of loans settled before.
    refund_task: bool = False


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
    # Every booked payment with the ledger just before it, so a reversal re-computes from there.
    journal: tuple[LedgerEntry, ...] = ()


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
    # Payment reversals requested and waiting for the checker (their tasks are in ``tasks``).
    reversals: tuple[PendingReversal, ...] = ()
    # Aftercare (workflows.aftercare): follow-up calls opened so far, and the post-loan review
    # period keys opened (the newest few: a repeated request opens nothing).
    follow_up_calls: int = 0
    reviews_opened: tuple[str, ...] = ()
    # The collections ladder (collections-ladder-v1): the last episode started, whether it is
    # still running, and the write-off (write-off-v1) once approved or done.
    collections_episode: int = 0
    collections_open: bool = False
    write_off_pending: WriteOffApproved | None = None
    write_off: WriteOffState | None = None


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
    # A settled loan's refund of its credit (settlement-refund-v1): domain.refund.RefundStatus.
    refund: str | None = None


# ---- the refund of a settled loan's credit (workflows/refund.py) -----------------------------


@dataclass(frozen=True)
class OpenRefundInput:
    """A loan settled with ``amount`` of credit: its refund row (payee: the contract's account)."""

    application_no: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True)
class RefundPayee:
    """What the refund's maker checks, masked (no personal data in workflow history): the
    account the signed contract names (None: none on record) and the contract number."""

    account: str | None
    contract_no: str


@dataclass(frozen=True)
class RefundStepInput:
    """The refund moved to ``status`` (domain.refund.RefundStatus), by ``by``; audited."""

    application_no: str
    status: str
    at: datetime
    by: str = "system"
    order_key: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RecordRefundInput:
    """The bank executed the refund order: record it (who made and checked it) and tell the
    borrower."""

    application_no: str
    order_key: str
    amount: Decimal
    bank_order_id: str | None
    value_date: date | None
    made_by: str
    checked_by: str
    at: datetime


# ---- the payout (domain.payout) ------------------------------------------------------------


@dataclass(frozen=True)
class PrecheckInput:
    """Check a payout attempt against the signed contract and the accepted offer, and reserve
    its money in the funding pool (under the attempt's key)."""

    application_no: str
    attempt: int
    terms: LoanTerms
    contract: ContractInfo
    # The four eyes (and the manager above the limit) who asked for and authorized the payout.
    requested_by: str
    authorized_by: tuple[str, ...]
    at: datetime
    business_date: date


@dataclass(frozen=True)
class PayoutInput:
    """The payout workflow's input: one bank order under ``order_key``. The payee is read from
    the payout's database row (no personal data in workflow history)."""

    application_no: str
    order_key: str
    amount: Decimal
    policy: LoanPolicy


@dataclass(frozen=True)
class OrderInput:
    application_no: str
    order_key: str
    # How long the status query may wait (real seconds, polling) for a pending order.
    wait_seconds: float = 0.0


@dataclass(frozen=True)
class OrderOutcome:
    """A bank order as the bank states it (``domain.payout.OrderState``)."""

    state: str
    order_key: str
    bank_order_id: str | None = None
    value_date: date | None = None
    reason_code: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class BankCallback:
    """The API heard from the bank about ``order_key`` (a verified callback): the payout
    workflow asks the bank for the order's status at once instead of waiting for its timer."""

    order_key: str
    event_id: str
    state: str


@dataclass(frozen=True)
class FundsInput:
    """Reserve a waiting payout's money if the pool can now cover it."""

    application_no: str
    order_key: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True)
class ReleasePayoutInput:
    application_no: str
    order_key: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class RecordPayoutInput:
    """The bank executed the order: record the disbursement, pay it out of the pool, tell the
    borrower."""

    application_no: str
    order_key: str
    principal: Decimal
    net_amount: Decimal
    bank_order_id: str | None
    value_date: date
    requested_by: str
    authorized_by: tuple[str, ...]
    at: datetime


# ---- payment reversal, settlement confirmation and archive -------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    """A payment the ledger booked, with the ledger just before it; ``reversed`` once a reversal
    took it out."""

    request: PaymentRequest
    installments_before: tuple[InstallmentBalance, ...]
    credit_before: Decimal
    reversed: bool = False


@dataclass(frozen=True)
class ReversalRequest:
    """An operations specialist asks for a bounced payment to be reversed (the maker)."""

    external_ref: str
    reason: str
    user: str
    roles: tuple[str, ...] = ()
    payment_id: str = ""


@dataclass(frozen=True)
class ReversalTicket:
    """The answer to a reversal request: the checker's task (the same one for a repeat)."""

    task_id: str
    external_ref: str
    duplicate: bool = False


@dataclass(frozen=True)
class PendingReversal:
    task_id: str
    request: ReversalRequest


@dataclass(frozen=True)
class ReappliedPayment:
    """A payment after the reversed one, as the re-computation applied it."""

    external_ref: str
    mode: PaymentMode
    lines: tuple[AllocationLine, ...]
    credit: Decimal


@dataclass(frozen=True)
class RecordReversalInput:
    """Record an approved reversal: the payment marked reversed, the later payments' new
    allocations, the new balances (installment rows), the audit entry."""

    application_no: str
    external_ref: str
    reason: str
    requested_by: str
    approved_by: str
    at: datetime
    business_date: date
    reapplied: tuple[ReappliedPayment, ...]
    installments: tuple[InstallmentBalance, ...]
    credit: Decimal


@dataclass(frozen=True)
class ArchiveInput:
    """Archive a settled loan's documents as one bundle, kept until ``retain_until``."""

    application_no: str
    at: datetime
    settled_on: date
    retain_until: date


# ---- aftercare: follow-up answers, risk flags, post-loan reviews ------------------------------


@dataclass(frozen=True)
class FollowUpAnsweredInput:
    """A reached follow-up call's answers (the task's data) and the flags they raise."""

    application_no: str
    task_id: str
    answered_by: str
    at: datetime
    answers: dict[str, Any]
    # (kind, detail) of each flag to raise (domain.aftercare.FollowUpAnswers.flags).
    flags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ReviewRequest:
    """Open the loan's post-loan review for ``period_key`` (sent by the review sweep, or by the
    loan itself when a risk flag is raised); a key already opened opens nothing."""

    period_key: str
    reason: str


@dataclass(frozen=True)
class ReviewContextInput:
    application_no: str
    business_date: date


@dataclass(frozen=True)
class ReviewOpenedInput:
    application_no: str
    period_key: str
    reason: str
    task_id: str
    at: datetime
    business_date: date
    bureau_status: str
    context: dict[str, Any]


@dataclass(frozen=True)
class ReviewDecidedInput:
    """A review's outcome (``expired`` when nobody decided it); ``watch`` classifies the loan
    关注 as of ``business_date``."""

    application_no: str
    period_key: str
    outcome: str
    at: datetime
    business_date: date
    business_timezone: str
    decided_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ReviewSweepInput:
    """One daily review sweep: the business date (None: today on the workflow's clock), the
    page it resumes after (continue-as-new), and how many loans it has asked so far."""

    as_of: date | None = None
    after: str | None = None
    requested: int = 0
    page_size: int = 200
    business_timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class DueReviewsInput:
    as_of: date
    after: str | None
    limit: int


@dataclass(frozen=True)
class DueReviewItem:
    application_no: str
    period_key: str
    reason: str


@dataclass(frozen=True)
class DueReviewsPage:
    due: tuple[DueReviewItem, ...] = ()
    # The last application number looked at (the next page starts after it); None at the end.
    next_after: str | None = None


# ---- collections and write-off ----------------------------------------------------------


@dataclass(frozen=True)
class CollectionsStatus:
    """How the loan stands, as servicing tells its collections episode (a signal)."""

    # The due date of the oldest overdue installment; None once the loan is current again.
    overdue_since: date | None
    overdue_amount: Decimal
    # Everything received on the loan so far (a promise is kept when this grows enough).
    paid_total: Decimal
    as_of: date


@dataclass(frozen=True)
class PromiseState:
    """A promise to pay the ladder waits on."""

    task_id: str
    amount: Decimal
    due_on: date
    paid_total_at_promise: Decimal
    step: str


@dataclass(frozen=True)
class CollectionsInput:
    """A collections episode: started by servicing, or by its own continue-as-new."""

    application_no: str
    episode: int
    policy: LoanPolicy
    parent_workflow_id: str
    status: CollectionsStatus
    tasks: TasksState = field(default_factory=TasksState)
    done: tuple[str, ...] = ()
    # Open call/visit task → its ladder step; the open dispute task, the promise waited on.
    calls: dict[str, str] = field(default_factory=dict)
    dispute_task: str | None = None
    promise: PromiseState | None = None
    # Contact attempts per business day (ISO date → count), for the daily limit.
    attempts: dict[str, int] = field(default_factory=dict)
    write_off_requested: bool = False
    seq: int = 0
    # Rungs a post-loan review brought forward and not yet taken (accelerate-collection-v1).
    accelerated: int = 0


@dataclass(frozen=True)
class CollectionsAcceleration:
    """A post-loan review (``period_key``, decided by ``by``) asked to collect sooner."""

    period_key: str
    reason: str
    by: str


@dataclass(frozen=True)
class CollectionStepInput:
    """One entry of the collections log (``collection_contacts``): a ladder step taken (with the
    rule it applied) or a contact's outcome; idempotent by ``key``."""

    key: str
    application_no: str
    episode: int
    workflow_id: str
    step: str
    channel: str  # sms / phone / visit / legal / write_off / promise / system
    outcome: str
    rule: str
    at: datetime
    days_past_due: int
    actor: str = "system"
    task_id: str | None = None
    promise_amount: Decimal | None = None
    promise_date: date | None = None
    note: str | None = None
    # Notices or events the entry carries: an SMS to the borrower, a legal-action event.
    sms_template: str | None = None
    policy_version: int | None = None
    # The SMS step's overdue amount; the loan policy's zone and contact window.
    overdue_amount: Decimal | None = None
    business_timezone: str = "Asia/Shanghai"
    contact_hours: tuple[time, time] = (time(8, 0), time(21, 0))


@dataclass(frozen=True)
class WriteOffApproved:
    """The episode's write-off, proposed and approved (maker-checker), sent to servicing."""

    episode: int
    proposed_by: str
    approved_by: str
    approved_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class WriteOffState:
    """A written-off loan's figures, carried across continue-as-new."""

    written_off_on: date
    principal: Decimal
    interest: Decimal
    penalty: Decimal
    fees: Decimal
    recovered: Decimal = Decimal("0")

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.penalty + self.fees


@dataclass(frozen=True)
class WriteOffInput:
    application_no: str
    at: datetime
    state: WriteOffState
    approval: WriteOffApproved
    policy_version: int
    business_timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class RecoveryInput:
    application_no: str
    external_ref: str
    amount: Decimal
    at: datetime
    recovered_total: Decimal
