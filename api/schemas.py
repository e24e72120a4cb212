"""Request and response shapes of the HTTP API. Money travels as strings with two decimals,
rates as strings with six; inputs are validated here and a failure names the field."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo

from domain.calendar import business_date
from domain.identity import check_bank_card, check_mobile, check_resident_id
from domain.money import format_money, format_rate
from domain.schedule import RepaymentMethod

MoneyOut = Annotated[Decimal, PlainSerializer(format_money, return_type=str, when_used="json")]
RateOut = Annotated[Decimal, PlainSerializer(format_rate, return_type=str, when_used="json")]

# The birth date on a resident ID may not be after today where the IDs are issued.
ID_TIMEZONE = "Asia/Shanghai"
MAX_APPLICATION_AMOUNT = Decimal("10000000.00")


def _resident_id(value: str) -> str:
    return check_resident_id(value, today=business_date(datetime.now(UTC), ID_TIMEZONE)).number


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


PositiveMoney = Annotated[
    Decimal, Field(gt=0, decimal_places=2, max_digits=14), AfterValidator(_finite)
]
NonNegativeMoney = Annotated[
    Decimal, Field(ge=0, decimal_places=2, max_digits=14), AfterValidator(_finite)
]
ApplicationAmount = Annotated[
    Decimal,
    Field(gt=0, le=MAX_APPLICATION_AMOUNT, decimal_places=2, max_digits=14),
    AfterValidator(_finite),
]


# Bounds on what a client may send (issue 12): a page offset beyond any list we keep, the
# serialized size of a decision's ``data`` (terms, a comment's worth of fields: a few hundred
# bytes in practice; 16 KB leaves room and keeps task rows, the audit trail and the workflow
# history small), and how deep it may nest.
MAX_OFFSET = 1_000_000
MAX_DECISION_DATA_BYTES = 16 * 1024
MAX_DECISION_DATA_DEPTH = 5
_NUMERIC_TYPES = (Decimal, int, float, date, datetime)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(a) for a in get_args(annotation))


def _non_ascii_digit(value: str) -> bool:
    return any(ch.isdigit() and not ("0" <= ch <= "9") for ch in value)


def _parsed_from_text(field: FieldInfo) -> bool:
    """A field whose text is read as a number, a date or a code: full-width or other non-ASCII
    digits there are refused (free text keeps them: "３号楼" is an address)."""
    kinds = get_args(field.annotation) or (field.annotation,)
    if any(isinstance(k, type) and issubclass(k, _NUMERIC_TYPES) for k in kinds):
        return True
    return any(getattr(m, "pattern", None) for m in field.metadata)


class Strict(BaseModel):
    """Every request body: unknown keys refused, and, for every field (nested ones included),
    a NUL byte refused (PostgreSQL cannot store one) and non-ASCII digits refused where the text
    is read as a number, a date or a code — each a 422 naming the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _hostile_text(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        nested = field is not None and _holds_model(field.annotation)
        # A nested request model checks its own fields (and names them).
        if not (nested and not isinstance(value, str)) and _has_nul(value):
            raise ValueError("must not contain a NUL byte")
        text = isinstance(value, str) and field is not None and _parsed_from_text(field)
        if text and _non_ascii_digit(value):
            raise ValueError("must be written with ASCII digits 0-9")
        return value


class BorrowerIn(Strict):
    name: str = Field(min_length=1, max_length=64)
    id_number: Annotated[str, AfterValidator(_resident_id)] = Field(
        description="18-character PRC resident ID (GB 11643 check character, x stored as X)"
    )
    phone: Annotated[str, AfterValidator(check_mobile)] = Field(
        description="mainland mobile number, 11 digits (a +86 prefix, spaces, hyphens dropped)"
    )
    bank_card: Annotated[str, AfterValidator(check_bank_card)] = Field(
        description="16-19 digits passing the Luhn check (spaces dropped)"
    )
    monthly_income: NonNegativeMoney
    employment_years: int | None = Field(
        default=None,
        ge=0,
        le=60,
        description="whole years with the current employer or in business; omit if unknown",
    )


class ApplicationIn(Strict):
    borrower: BorrowerIn
    amount: ApplicationAmount
    term_months: int = Field(ge=1, le=360)
    purpose: str = Field(min_length=1, max_length=200)
    repayment_source: str = Field(min_length=1, max_length=200)
    contract_language: Literal["zh-CN", "en"] = Field(
        default="zh-CN", description="the language the borrower's contract is written in"
    )


class ApplicationOut(BaseModel):
    application_no: str
    stage: str


class ApplicantOut(BaseModel):
    """The borrower as this application knows them (its version), masked by role."""

    name: str
    id_number: str
    phone: str
    bank_card: str
    monthly_income: MoneyOut
    employment_years: int | None
    version: int


class CheckOut(BaseModel):
    code: str
    outcome: str
    detail: str
    knock_out: bool


class AssessmentOut(BaseModel):
    """The latest automatic assessment: checks, the bureau's answer, the score with its
    breakdown and reason codes (reproducible: the scorecard version is recorded)."""

    round: int
    assessed_at: datetime
    checks: list[CheckOut]
    bureau_status: str
    bureau: dict[str, Any] | None
    score: int
    grade: str
    probability_of_default: str
    recommendation: str
    knock_outs: list[str]
    top_reasons: list[str]
    breakdown: list[dict[str, Any]]
    scorecard_version: int


class ApplicationView(BaseModel):
    application_no: str
    stage: str
    submitted_by: str
    submitted_at: datetime
    amount: MoneyOut
    term_months: int
    purpose: str
    repayment_source: str
    applicant: ApplicantOut
    policy_version: int | None
    documents: list[dict[str, Any]]
    assessment: AssessmentOut | None


class TaskOut(BaseModel):
    id: str
    kind: str
    application_no: str
    candidate_role: str
    assignee: str | None
    status: str
    priority: int
    due_at: datetime
    created_at: datetime
    escalated_at: datetime | None = None
    expires_at: datetime | None = None
    decisions: list[str] = Field(description="what may be decided (domain.tasks.TASK_RULES)")
    application_url: str = Field(description="the application as the reviewers see it")
    escalation_level: int = 0
    context: dict[str, Any] | None = Field(
        default=None, description="what the person deciding needs to know (e.g. refusal reasons)"
    )


class TaskPage(BaseModel):
    items: list[TaskOut]
    # None when the request asked for no count (count=false).
    total: int | None
    limit: int
    offset: int
    # The next page's cursor (keyset pagination); None on the last page.
    next_cursor: str | None = None


def _bounded_data(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    if size > MAX_DECISION_DATA_BYTES:
        raise ValueError(f"is {size} bytes; at most {MAX_DECISION_DATA_BYTES} bytes are accepted")

    def depth(v: Any) -> int:
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        return 0

    if depth(value) > MAX_DECISION_DATA_DEPTH:
        raise ValueError(f"nests deeper than {MAX_DECISION_DATA_DEPTH} levels")
    return value


class DecisionIn(Strict):
    decision: str = Field(min_length=1, max_length=32)
    comment: str | None = Field(default=None, max_length=2000)
    data: Annotated[dict[str, Any] | None, AfterValidator(_bounded_data)] = Field(
        default=None,
        description=f"the task kind's figures, typed per kind and decision (their JSON schemas: "
        f"GET /api/v1/tasks/kinds; a key the schema does not name is refused); at most "
        f"{MAX_DECISION_DATA_BYTES} bytes as JSON",
    )


class DecisionOut(BaseModel):
    task_id: str
    stage: str


class DecisionShapeOut(BaseModel):
    decision: str
    data_schema: dict[str, Any] | None = Field(
        description="the JSON schema of the decision's ``data`` (unknown keys are refused); "
        "null: the decision takes no data"
    )


class TaskKindOut(BaseModel):
    kind: str
    candidate_role: str
    decisions: list[DecisionShapeOut]


class TaskKindsOut(BaseModel):
    items: list[TaskKindOut]


class PendingTaskOut(BaseModel):
    id: str
    kind: str
    candidate_role: str
    priority: int
    due_at: datetime
    expires_at: datetime | None = None
    escalation_level: int = 0
    context: dict[str, Any] | None = None


class TermsOut(BaseModel):
    principal: MoneyOut
    term_months: int
    annual_rate: RateOut
    method: str
    upfront_fee: MoneyOut
    monthly_fee: MoneyOut
    apr: RateOut
    apr_compound: RateOut
    total_interest: MoneyOut | None = None
    # Every fee of the schedule (the upfront fee, due with installment 1, and periodic fees).
    total_fees: MoneyOut | None = None
    total_payment: MoneyOut | None = None
    # The catalog product version the offer was made under (while the workflow runs; None for
    # loans matched in free form).
    product_code: str | None = None
    product_version: int | None = None


class InstallmentOut(BaseModel):
    number: int
    due_date: date
    principal: MoneyOut
    interest: MoneyOut
    fee: MoneyOut
    penalty: MoneyOut
    paid: MoneyOut
    outstanding: MoneyOut
    status: str


class BalancesOut(BaseModel):
    principal_outstanding: MoneyOut
    overdue_amount: MoneyOut
    penalty: MoneyOut
    due_now: MoneyOut
    total_outstanding: MoneyOut
    credit: MoneyOut
    days_past_due: int


class SigningStatusOut(BaseModel):
    # When the signing link was queued for the borrower's phone, and the outbox's status.
    link_sent_at: datetime | None
    link_status: str | None
    signed_at: datetime | None
    signed_document_id: str | None
    signed_sha256: str | None
    sealed_by: str | None
    sealed_at: datetime | None


class RefundOut(BaseModel):
    """A settled loan's credit being refunded (settlement-refund-v1)."""

    status: str = Field(
        description="awaiting_maker | awaiting_checker | sent | paid | failed | closed"
    )
    amount: MoneyOut
    payee_account: str | None = Field(description="the contract's account, masked")
    order_key: str | None
    bank_order_id: str | None
    value_date: date | None
    made_by: str | None
    checked_by: str | None
    reason: str | None = Field(description="why it failed, was held or was closed")


class LoanOut(BaseModel):
    application_no: str
    stage: str
    borrower_name: str
    # The version of the borrower's data the application was submitted with (None: written
    # without one).
    borrower_version: int | None = None
    requested_amount: MoneyOut
    requested_term_months: int
    pending_task: PendingTaskOut | None = Field(
        description="the most urgent of open_tasks (kept for clients of the one-task API)"
    )
    open_tasks: list[PendingTaskOut] = Field(default_factory=list)
    policy_version: int
    terms: TermsOut | None
    balances: BalancesOut | None
    next_due_installment: InstallmentOut | None
    installments: list[InstallmentOut]
    contract_document_id: str | None
    signing: SigningStatusOut | None = Field(
        default=None,
        description="the borrower's signature and the lender's seal as recorded; the signing "
        "link itself goes to the borrower's phone only and is never shown to staff",
    )
    source: str = Field(description="'workflow' (live query) or 'database' (closed loan)")
    settlement_certificate_url: str | None = Field(
        default=None, description="the settlement certificate (结清证明) once the loan settles"
    )
    refund: RefundOut | None = Field(
        default=None, description="the refund of the credit a settled loan held, if any"
    )


class LoanSummary(BaseModel):
    application_no: str
    stage: str
    borrower_name: str
    amount: MoneyOut
    term_months: int
    submitted_by: str
    created_at: datetime
    updated_at: datetime


class LoanPage(BaseModel):
    items: list[LoanSummary]
    # None when the request asked for no count (count=false).
    total: int | None
    limit: int
    offset: int
    # The next page's cursor (keyset pagination); None on the last page.
    next_cursor: str | None = None


class TimelineEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class Timeline(BaseModel):
    application_no: str
    entries: list[TimelineEntry]


class PaymentIn(Strict):
    amount: PositiveMoney
    paid_at: AwareDatetime
    external_ref: str = Field(min_length=1, max_length=100)
    mode: Literal["installments", "payoff", "keep_term", "keep_installment"] = Field(
        default="installments",
        description=(
            "installments: pay what is due, then the next installments in order (early payment "
            "of whole installments); payoff: settle the loan with interest only to paid_at "
            "(the amount must cover the payoff quote); keep_term / keep_installment: a partial "
            "prepayment that pays what is due and interest to date, reduces the principal and "
            "re-amortizes the rest over the same term or at the same installment"
        ),
    )


class AllocationLineOut(BaseModel):
    installment: int
    component: str
    amount: MoneyOut


class PaymentOut(BaseModel):
    external_ref: str
    mode: str
    amount: MoneyOut
    paid_at: datetime
    allocation: list[AllocationLineOut]
    credit: MoneyOut
    stage: str
    duplicate: bool
    # The payment's id (a reversal names it: POST …/payments/{payment_id}/reversal).
    payment_id: str | None = None


class SignIn(Strict):
    # The one-time code sent to the borrower's phone (POST /sign/{token}/code).
    code: str = Field(pattern=r"^\d{6}$")
    # The id of every disclosure item shown by GET /sign/{token}, each confirmed.
    confirmed: list[str] = Field(max_length=20)
    signer_name: str = Field(min_length=1, max_length=64)
    id_last4: str = Field(pattern=r"^\d{3}[\dXx]$")


class DisclosureOut(BaseModel):
    id: str
    text: str
    text_en: str


class SigningInfo(BaseModel):
    contract_no: str
    borrower_name: str
    principal: MoneyOut
    term_months: int
    annual_rate: RateOut
    apr: RateOut
    sha256: str
    pdf_url: str
    # Each must be confirmed by id to sign.
    disclosures: list[DisclosureOut]
    signed: bool
    # A newer contract replaced this one: it can no longer be signed.
    superseded: bool


class SigningCodeOut(BaseModel):
    sent_to: str = Field(description="the borrower's phone on the application, masked")
    issued_at: datetime
    expires_at: datetime
    max_tries: int
    resend_after_seconds: int


class WithdrawIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


class ScheduleQuoteIn(Strict):
    principal: PositiveMoney
    annual_rate: Annotated[Decimal, Field(ge=0, le=1, decimal_places=6), AfterValidator(_finite)]
    term_months: int = Field(ge=1, le=360)
    method: RepaymentMethod
    start_date: date
    upfront_fee: NonNegativeMoney = Decimal("0")
    monthly_fee: NonNegativeMoney = Decimal("0")


class ScheduleLineOut(BaseModel):
    number: int
    due_date: date
    principal: MoneyOut
    interest: MoneyOut
    fee: MoneyOut
    payment: MoneyOut
    remaining_principal: MoneyOut


class ScheduleQuoteOut(BaseModel):
    installments: list[ScheduleLineOut]
    total_principal: MoneyOut
    total_interest: MoneyOut
    total_fees: MoneyOut
    total_payment: MoneyOut
    apr: RateOut
    apr_compound: RateOut


class PayoffQuoteIn(Strict):
    as_of: date


class PayoffQuoteOut(BaseModel):
    application_no: str
    as_of: date
    remaining_principal: MoneyOut
    accrued_interest: MoneyOut
    overdue_interest: MoneyOut
    fees: MoneyOut
    penalty: MoneyOut
    prepayment_fee: MoneyOut
    prepaid_credit: MoneyOut
    total: MoneyOut
    credit_held: MoneyOut = Field(description="overpayment the loan already holds")
    amount_to_pay: MoneyOut = Field(
        description="what a payoff (mode=payoff) needs on as_of: total less the credit held"
    )


class HealthOut(BaseModel):
    """/readyz: ``ok`` or ``error: …`` for each dependency a request may need."""

    status: str
    database: str
    temporal: str
    # A worker polling the loans' task queue ("ok"), none ("error: no worker polling …").
    worker: str = "ok"


class LivenessOut(BaseModel):
    """/healthz: the API process answers (it checks no dependency)."""

    status: str


class NoticeOut(BaseModel):
    """One notice of a loan and its delivery. ``text`` is what was (or will be) said, shown for
    every template but the secret ones (signing codes and links): those are never shown."""

    id: str
    channel: str
    template: str
    recipient: str  # a user or role (inbox); the borrower's masked mobile (SMS)
    status: str
    attempts: int
    secret: bool
    text: str | None
    created_at: datetime
    not_before: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


class NoticeList(BaseModel):
    application_no: str
    items: list[NoticeOut]


class SmsReceiptIn(BaseModel):
    """The SMS gateway's delivery receipt."""

    message_id: str = Field(min_length=1, max_length=64)
    status: Literal["delivered", "undeliverable"]
    at: AwareDatetime


class SmsReceiptOut(BaseModel):
    message_id: str
    status: str


# ---- the product catalog -------------------------------------------------------------------


class RateRangeIn(Strict):
    low: Annotated[Decimal, AfterValidator(_finite)]
    high: Annotated[Decimal, AfterValidator(_finite)]


class ProductVersionIn(Strict):
    """A product's whole definition (``domain.products.ProductDefinition``): rates as
    fractions, amounts in yuan; ``rates`` maps each eligible grade (A-E) to its range."""

    name: str = Field(min_length=1, max_length=100)
    methods: list[RepaymentMethod] = Field(min_length=1)
    min_amount: PositiveMoney
    max_amount: PositiveMoney
    terms: list[int] = Field(min_length=1, description="allowed terms, months")
    rates: dict[Literal["A", "B", "C", "D", "E"], RateRangeIn] = Field(min_length=1)
    upfront_fee_basis: Literal["fixed", "rate"] = "fixed"
    upfront_fee: Annotated[Decimal, Field(ge=0), AfterValidator(_finite)] = Decimal("0.00")
    upfront_fee_due: Literal["first_installment"] = "first_installment"
    monthly_fee_rate: Annotated[Decimal, Field(ge=0), AfterValidator(_finite)] = Decimal("0")
    penalty_multiple: Annotated[Decimal, AfterValidator(_finite)] = Decimal("1.5")
    prepayment_fee_rate: Annotated[Decimal, Field(ge=0), AfterValidator(_finite)] = Decimal("0")
    required_documents: list[str] = Field(default_factory=list)
    min_age: int = 18
    max_age: int | None = None
    approval_limit: PositiveMoney | None = None
    effective_from: date | None = Field(
        default=None, description="today (the default) or later, in the business timezone"
    )
    note: str = Field(default="", max_length=200)


class ProductIn(ProductVersionIn):
    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Z][A-Z0-9_]+$")


class ProductVersionOut(BaseModel):
    code: str
    version: int
    effective_from: date
    note: str
    recorded_by: str
    definition: dict[str, Any]


class ProductSummaryOut(BaseModel):
    code: str
    name: str
    in_force: ProductVersionOut | None
    latest_version: int


class ProductPage(BaseModel):
    as_of: date
    items: list[ProductSummaryOut]


class ProductDetailOut(BaseModel):
    code: str
    name: str
    as_of: date
    in_force_version: int | None
    versions: list[ProductVersionOut]


# ---- payment reversal and the archive of a settled loan --------------------------------------


class ReversalIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="why the payment is reversed")


class ReversalOut(BaseModel):
    """The checker's ``payment_reversal`` task (the same one for a repeated request)."""

    task_id: str
    payment_id: str
    external_ref: str
    duplicate: bool


class ArchivedDocumentOut(BaseModel):
    document_id: str
    kind: str
    filename: str
    archived_as: str
    content_type: str
    size: int
    # Recomputed from the stored bytes when archived; ``verified``: equal to the recorded one.
    sha256: str | None
    recorded_sha256: str
    verified: bool
    superseded: bool


class ArchiveOut(BaseModel):
    application_no: str
    archived_at: datetime
    settled_on: date
    retain_until: date
    document_count: int
    intact: bool
    bundle_sha256: str
    bundle_size: int
    documents: list[ArchivedDocumentOut]
