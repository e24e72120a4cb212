"""Human-task kinds, declared once: who decides each, with which decisions, who may not decide it
(maker-checker), what ``data`` a decision carries, and what happens when nobody decides.

The workflows' task mechanism, the update validators, the API and the inbox all read
``TASK_RULES``; nothing else says who decides a task.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar

from domain.aftercare import FollowUpAnswers, ReviewDecisionData, ReviewOutcome
from domain.collections import CONTACT_OUTCOMES, ContactOutcomeData, VisitOutcomeData
from domain.decision_data import (
    MONEY_SCHEMA,
    RATE_SCHEMA,
    DataField,
    DataShape,
    TypedData,
    choice_schema,
    refuse_unknown_keys,
    text_schema,
)
from domain.lifecycle import Role
from domain.permissions import Action, sole_role
from domain.schedule import RepaymentMethod, UpfrontFeeDue


class TaskKind(StrEnum):
    INTAKE_REVIEW = "intake_review"
    SUPPLEMENT_DOCUMENTS = "supplement_documents"
    RISK_REVIEW = "risk_review"
    PRODUCT_MATCHING = "product_matching"
    OFFER_CONFIRMATION = "offer_confirmation"
    # Above the risk manager's authority (amount or grade), the department manager approves too.
    RISK_APPROVAL = "risk_approval"
    DISBURSEMENT = "disbursement"
    # A disbursement the pre-check refused: the reasons, and the choice to retry or reject.
    DISBURSEMENT_REFUSED = "disbursement_refused"
    # The credit bureau stayed down: retry, or go on without its report.
    BUREAU_UNAVAILABLE = "bureau_unavailable"
    # The lender's authorized signatory countersigns the contract the borrower signed: seal, or
    # refuse with a reason (the contract never comes into force: the application is REJECTED).
    LENDER_SEAL = "lender_seal"
    # Customer service's follow-up call after disbursement (回訪, seed §3.6).
    FOLLOW_UP_CALL = "follow_up_call"
    # Customer service's call when an installment falls overdue (seed §3.6, §4.1).
    OVERDUE_CALL = "overdue_call"
    # Tiered four-eyes on a payout (payout-v1): a second operations specialist authorizes what
    # the first requested; above the policy's limit the department manager authorizes too.
    DISBURSEMENT_AUTHORIZATION = "disbursement_authorization"
    DISBURSEMENT_MANAGER_AUTHORIZATION = "disbursement_manager_auth"
    # The pool cannot cover the payout: it waits (re-checked on a timer) until a top-up; the
    # task says why, and the payout may be refused meanwhile.
    DISBURSEMENT_AWAITING_FUNDS = "disbursement_awaiting_funds"
    # A second operations specialist checks a requested reversal of a bounced payment.
    PAYMENT_REVERSAL = "payment_reversal"
    # The last fen is paid: operations checks the ledger and confirms the settlement (or holds).
    SETTLEMENT_CONFIRMATION = "settlement_confirmation"
    # The risk manager's periodic (or brought forward) post-loan review (贷后检查, seed §3.6).
    POST_LOAN_REVIEW = "post_loan_review"
    # The collections ladder (workflows/collections.py), one child workflow per overdue episode.
    # Calls and the visit are decided with their outcome (domain.collections.Outcome).
    REMINDER_CALL = "reminder_call"
    COLLECTION_CALL = "collection_call"
    FIELD_VISIT = "field_visit"
    LEGAL_REVIEW = "legal_review"
    # The borrower disputes the debt on a call: customer service answers the dispute.
    COLLECTION_DISPUTE = "collection_dispute"
    # 91+ DPD: the risk manager proposes the write-off, the department manager approves it.
    WRITE_OFF_PROPOSAL = "write_off_proposal"
    WRITE_OFF_APPROVAL = "write_off_approval"
    # A difference between the bank's ledger and the records (the daily reconciliation):
    # operations resolves it (comment required) or escalates it to the department manager.
    RECONCILIATION_DIFFERENCE = "reconciliation_difference"
    # An escalated reconciliation difference, for the department manager.
    RECONCILIATION_ESCALATED = "reconciliation_escalated"
    # The funding pool's available money fell below its warning line (once a business day).
    LOW_LIQUIDITY = "low_liquidity"
    # A loan settled with credit (an overpayment): an operations specialist checks the amount
    # and the payee (the account the signed contract names) and requests the refund (or holds
    # it, saying why); a second one authorizes it (maker-checker); the bank pays it. A bank that
    # rejects it or stays down opens ``refund_failed``: send it again, or close it with how
    # the money was returned (settlement-refund-v1).
    REFUND = "refund"
    REFUND_AUTHORIZATION = "refund_authorization"
    REFUND_FAILED = "refund_failed"


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Exhausted(StrEnum):
    """What happens after a task's last escalation level passes undecided."""

    # The application expires (origination steps nobody will take).
    EXPIRE_LOAN = "expire_loan"
    # The task passes to the department manager once; if the manager's SLA passes too, the
    # application expires.
    HAND_TO_MANAGER = "hand_to_manager"
    # The task closes as expired and the loan goes on (a call nobody made is recorded as such).
    CLOSE_TASK = "close_task"


class Party(StrEnum):
    """Whose earlier act a task checks: that person may not decide it (maker-checker)."""

    SUBMITTER = "submitter"
    INTAKE_REVIEWER = "intake_review"
    RISK_REVIEWER = "risk_review"
    PRODUCT_MATCHER = "product_matching"
    DISBURSEMENT_MAKER = "disbursement"
    DISBURSEMENT_CHECKER = "disbursement_authorization"
    # Who requested a payment reversal (set for each request before its task opens).
    REVERSAL_REQUESTER = "payment_reversal_request"
    WRITE_OFF_PROPOSER = "write_off_proposal"
    # Who requested a refund (the refund task's decider): not its authorizer.
    REFUND_MAKER = "refund"


@dataclass(frozen=True)
class ProductTermsData(TypedData):
    """The ``data`` of an approved product_matching decision: the terms the product manager
    fixed. ``parse`` names the field and the reason of the first thing wrong."""

    TERMS: ClassVar[tuple[DataField, ...]] = (
        DataField("amount", MONEY_SCHEMA, required=True, description="the principal"),
        DataField(
            "term_months",
            {"type": "integer", "minimum": 1, "maximum": 360},
            required=True,
        ),
        DataField("annual_rate", RATE_SCHEMA, required=True),
        DataField("method", choice_schema(RepaymentMethod)),
    )
    FIELDS: ClassVar[tuple[DataField, ...]] = (
        *TERMS,
        DataField("upfront_fee", MONEY_SCHEMA),
        DataField("monthly_fee", MONEY_SCHEMA),
        DataField("upfront_fee_due", choice_schema((UpfrontFeeDue.FIRST_INSTALLMENT,))),
    )

    amount: Decimal
    term_months: int
    annual_rate: Decimal
    method: RepaymentMethod
    upfront_fee: Decimal = Decimal("0")
    monthly_fee: Decimal = Decimal("0")
    # When the upfront fee falls due (the product states it): with the first installment.
    upfront_fee_due: UpfrontFeeDue = UpfrontFeeDue.FIRST_INSTALLMENT

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> "ProductTermsData":
        data = data or {}

        def money(name: str, default: str | None = None) -> Decimal:
            raw = data.get(name, default)
            if raw is None:
                raise ValueError(f"data.{name}: is required")
            try:
                value = Decimal(str(raw))
            except (ArithmeticError, InvalidOperation):
                raise ValueError(f"data.{name}: must be a decimal number") from None
            if not value.is_finite() or value < 0:
                raise ValueError(f"data.{name}: must be a non-negative amount")
            if value != value.quantize(Decimal("0.01")):
                raise ValueError(f"data.{name}: must not have more than two decimal places")
            return value

        principal = money("amount")
        if principal <= 0:
            raise ValueError("data.amount: must be greater than zero")
        try:
            term = int(str(data.get("term_months")))
        except ValueError:
            raise ValueError("data.term_months: must be a whole number of months") from None
        if not 1 <= term <= 360:
            raise ValueError("data.term_months: must be between 1 and 360")
        try:
            rate = Decimal(str(data.get("annual_rate")))
        except (ArithmeticError, InvalidOperation):
            raise ValueError("data.annual_rate: must be a decimal fraction, e.g. 0.12") from None
        if not rate.is_finite() or not Decimal(0) <= rate <= 1:
            raise ValueError("data.annual_rate: must be a fraction between 0 and 1, e.g. 0.12")
        if rate != rate.quantize(Decimal("0.000001")):
            raise ValueError("data.annual_rate: must not have more than six decimal places")
        method = str(data.get("method", RepaymentMethod.EQUAL_INSTALLMENT.value))
        if method not in {m.value for m in RepaymentMethod}:
            raise ValueError(
                f"data.method: must be one of {', '.join(m.value for m in RepaymentMethod)}"
            )
        upfront_fee = money("upfront_fee", "0")
        if upfront_fee >= principal:
            raise ValueError("data.upfront_fee: must be less than data.amount")
        # A fee is never taken out of the principal: the only rule a product may state.
        due = str(data.get("upfront_fee_due", UpfrontFeeDue.FIRST_INSTALLMENT.value))
        if due != UpfrontFeeDue.FIRST_INSTALLMENT.value:
            raise ValueError(
                "data.upfront_fee_due: must be first_installment (a fee is never deducted "
                "from the principal)"
            )
        return cls(
            amount=principal,
            term_months=term,
            annual_rate=rate,
            method=RepaymentMethod(method),
            upfront_fee=upfront_fee,
            monthly_fee=money("monthly_fee", "0"),
        )


@dataclass(frozen=True)
class ProductChoiceData(TypedData):
    """The ``data`` of an approved product_matching decision on a catalog round: one of the
    proposals' product versions and the terms within it. The fees are the product's, never
    typed (the workflow checks the terms against that version's definition)."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField(
            "product_code",
            text_schema(64, min_length=1),
            required=True,
            description="one of the proposals' products",
        ),
        DataField(
            "product_version",
            {"type": "integer", "minimum": 1},
            required=True,
            description="the proposal's version of the product",
        ),
        *ProductTermsData.TERMS,
    )

    product_code: str
    product_version: int
    amount: Decimal
    term_months: int
    annual_rate: Decimal
    method: RepaymentMethod

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> "ProductChoiceData":
        data = data or {}
        code = data.get("product_code")
        if not isinstance(code, str) or not code.strip():
            raise ValueError("data.product_code: is required (one of the proposals' products)")
        version = data.get("product_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError("data.product_version: must be the proposal's version number")
        for typed in ("upfront_fee", "monthly_fee"):
            if typed in data:
                raise ValueError(f"data.{typed}: fees are the product's, not typed")
        terms = ProductTermsData.parse(
            {k: v for k, v in data.items() if k not in ("product_code", "product_version")}
        )
        return cls(
            product_code=code.strip(),
            product_version=version,
            amount=terms.amount,
            term_months=terms.term_months,
            annual_rate=terms.annual_rate,
            method=terms.method,
        )


class ProductMatchData:
    """A product_matching approval: a catalog choice when it names ``product_code``, else the
    free-form terms of loans started before the catalog (``ProductTermsData``)."""

    @staticmethod
    def shapes(decision: str) -> tuple[DataShape, ...]:
        return (
            DataShape("ProductChoiceData", ProductChoiceData.FIELDS),
            DataShape("ProductTermsData", ProductTermsData.FIELDS),
        )

    @staticmethod
    def parse(data: dict[str, Any] | None) -> ProductChoiceData | ProductTermsData:
        if data and "product_code" in data:
            return ProductChoiceData.parse(data)
        return ProductTermsData.parse(data)


_REASON_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,39}$")


@dataclass(frozen=True)
class RejectionData(TypedData):
    """The ``data`` of a risk rejection: the reason codes the borrower's notice will give
    (the scorecard's and the checks' codes, or the department's own, in upper case)."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField(
            "reason_codes",
            {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": _REASON_CODE.pattern},
            },
            required=True,
            description="upper-case codes such as DTI_HIGH",
        ),
    )

    reason_codes: tuple[str, ...]

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> "RejectionData":
        codes = (data or {}).get("reason_codes")
        if not isinstance(codes, list) or not codes:
            raise ValueError("data.reason_codes: at least one reason code is required")
        for i, code in enumerate(codes):
            if not isinstance(code, str) or not _REASON_CODE.match(code):
                raise ValueError(
                    f"data.reason_codes[{i}]: must be an upper-case code such as DTI_HIGH"
                )
        return cls(reason_codes=tuple(codes))


@dataclass(frozen=True)
class SealRefusalData(TypedData):
    """The ``data`` of a refused seal: why the lender will not countersign (kept on the record
    and given as the application's end reason)."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField("reason", text_schema(500, min_length=1), required=True),
    )

    reason: str

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> "SealRefusalData":
        reason = (data or {}).get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("data.reason: a refused seal needs the reason")
        if len(reason) > 500:
            raise ValueError("data.reason: at most 500 characters")
        return cls(reason=reason.strip())


MAX_RETURN_ITEMS = 20


@dataclass(frozen=True)
class ReturnData(TypedData):
    """The ``data`` of an intake review returned for supplements: the items (documents) the
    business officer is to supply (the supplement task shows them)."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField(
            "items",
            {
                "type": "array",
                "maxItems": MAX_RETURN_ITEMS,
                "items": text_schema(100, min_length=1),
            },
            description="what to supply, e.g. the document kinds",
        ),
    )

    items: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> "ReturnData":
        items = (data or {}).get("items", [])
        if not isinstance(items, list) or len(items) > MAX_RETURN_ITEMS:
            raise ValueError(f"data.items: must be a list of at most {MAX_RETURN_ITEMS} items")
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip() or len(item) > 100:
                raise ValueError(f"data.items[{i}]: must be text of 1 to 100 characters")
        return cls(items=tuple(items))


@dataclass(frozen=True)
class TaskRule:
    """Everything about one kind of task that does not depend on the loan."""

    candidate_role: Role
    decisions: tuple[str, ...]
    base_priority: int = 50
    # Whose earlier act this task checks: those people may not decide it.
    checks: tuple[Party, ...] = ()
    # The typed ``data`` of the decisions in ``data_for`` (parsed by the validator).
    data_model: (
        type[ProductMatchData]
        | type[ReturnData]
        | type[RejectionData]
        | type[SealRefusalData]
        | type[FollowUpAnswers]
        | type[ReviewDecisionData]
        | type[ContactOutcomeData]
        | None
    ) = None
    data_for: tuple[str, ...] = ()
    exhausted: Exhausted = Exhausted.HAND_TO_MANAGER
    # A matrix action the decider's roles must also allow (the lender's seal: SEAL_CONTRACT).
    action: Action | None = None

    def parse_data(self, decision: str, data: dict[str, Any] | None) -> Any:
        """The decision's typed data (None when this decision carries none). Lenient about
        keys it does not read: workflows parse the data of decisions already recorded with it;
        a new decision passes ``check_data`` first."""
        if self.data_model is None or decision not in self.data_for:
            return None
        if issubclass(self.data_model, ContactOutcomeData):  # the decision is the outcome
            return self.data_model.parse_decision(decision, data)
        return self.data_model.parse(data)

    def data_shapes(self, decision: str) -> tuple[DataShape, ...]:
        """The forms the decision's data may take (none: it takes no data)."""
        if self.data_model is None or decision not in self.data_for:
            return ()
        return self.data_model.shapes(decision)

    def check_data(self, kind: str, decision: str, data: dict[str, Any] | None) -> Any:
        """A new decision's data, as the API and the update validators both accept it: no key
        its shapes do not declare (nor any data where it takes none), then ``parse_data``.
        ValueError names the field."""
        refuse_unknown_keys(f"{kind} {decision}", self.data_shapes(decision), data)
        return self.parse_data(decision, data)


TASK_RULES: dict[TaskKind, TaskRule] = {
    TaskKind.INTAKE_REVIEW: TaskRule(
        Role.OPERATIONS_SPECIALIST,
        ("approve", "return", "reject"),
        checks=(Party.SUBMITTER,),
        data_model=ReturnData,
        data_for=("return",),
    ),
    TaskKind.SUPPLEMENT_DOCUMENTS: TaskRule(
        Role.BUSINESS_OFFICER, ("submit",), base_priority=60, exhausted=Exhausted.EXPIRE_LOAN
    ),
    TaskKind.RISK_REVIEW: TaskRule(
        Role.RISK_MANAGER,
        ("approve", "reject", "more_information"),
        checks=(Party.INTAKE_REVIEWER,),
        data_model=RejectionData,
        data_for=("reject",),
    ),
    TaskKind.RISK_APPROVAL: TaskRule(
        Role.DEPARTMENT_MANAGER,
        ("approve", "reject"),
        base_priority=70,
        checks=(Party.RISK_REVIEWER,),
    ),
    TaskKind.PRODUCT_MATCHING: TaskRule(
        Role.PRODUCT_MANAGER,
        ("approve", "reject"),
        data_model=ProductMatchData,
        data_for=("approve",),
    ),
    TaskKind.OFFER_CONFIRMATION: TaskRule(
        Role.BUSINESS_OFFICER,
        # other_terms: the borrower wants other terms (comment required): a new matching round.
        ("accept", "decline", "other_terms"),
        checks=(Party.PRODUCT_MATCHER,),
        exhausted=Exhausted.EXPIRE_LOAN,
    ),
    TaskKind.DISBURSEMENT: TaskRule(
        Role.OPERATIONS_SPECIALIST,
        ("approve", "reject"),
        base_priority=70,
        checks=(Party.INTAKE_REVIEWER,),
    ),
    TaskKind.DISBURSEMENT_REFUSED: TaskRule(
        Role.OPERATIONS_SPECIALIST,
        ("retry", "reject"),
        base_priority=80,
        # A second look at the same payout: the same four-eyes rule as its approval.
        checks=(Party.INTAKE_REVIEWER,),
    ),
    TaskKind.LENDER_SEAL: TaskRule(
        # Who may seal is the permission matrix's word (Action.SEAL_CONTRACT).
        sole_role(Action.SEAL_CONTRACT),
        ("seal", "refuse"),
        base_priority=70,
        data_model=SealRefusalData,
        data_for=("refuse",),
        # The candidate is already the manager: undecided, the application expires.
        exhausted=Exhausted.EXPIRE_LOAN,
        action=Action.SEAL_CONTRACT,
    ),
    TaskKind.BUREAU_UNAVAILABLE: TaskRule(
        Role.OPERATIONS_SPECIALIST, ("retry", "proceed_without"), base_priority=60
    ),
    TaskKind.FOLLOW_UP_CALL: TaskRule(
        Role.CUSTOMER_SERVICE,
        ("reached", "unreachable"),
        base_priority=30,
        # A reached call records the borrower's answers (domain.aftercare).
        data_model=FollowUpAnswers,
        data_for=("reached",),
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.OVERDUE_CALL: TaskRule(
        Role.CUSTOMER_SERVICE,
        ("reached", "unreachable", "promise_to_pay"),
        base_priority=60,
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.DISBURSEMENT_AUTHORIZATION: TaskRule(
        Role.OPERATIONS_SPECIALIST,
        ("authorize", "reject"),
        base_priority=75,
        # The checker is neither the maker nor the intake reviewer (four eyes).
        checks=(Party.DISBURSEMENT_MAKER, Party.INTAKE_REVIEWER),
    ),
    TaskKind.DISBURSEMENT_MANAGER_AUTHORIZATION: TaskRule(
        Role.DEPARTMENT_MANAGER,
        ("authorize", "reject"),
        base_priority=80,
        checks=(Party.DISBURSEMENT_MAKER, Party.DISBURSEMENT_CHECKER),
        # The candidate is already the manager: undecided, the application expires.
        exhausted=Exhausted.EXPIRE_LOAN,
    ),
    TaskKind.DISBURSEMENT_AWAITING_FUNDS: TaskRule(
        Role.OPERATIONS_SPECIALIST,
        # Nothing to decide for it to go on (a top-up does that); it can be refused.
        ("reject",),
        base_priority=70,
        checks=(Party.INTAKE_REVIEWER,),
    ),
    TaskKind.POST_LOAN_REVIEW: TaskRule(
        Role.RISK_MANAGER,
        tuple(o.value for o in ReviewOutcome),
        base_priority=50,
        data_model=ReviewDecisionData,
        data_for=(ReviewOutcome.WATCH.value, ReviewOutcome.ACCELERATE_COLLECTION.value),
        # Undecided (after the escalations), the review closes as expired and is recorded so;
        # the next one falls due a review interval after this one opened.
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.REMINDER_CALL: TaskRule(
        Role.CUSTOMER_SERVICE,
        CONTACT_OUTCOMES,
        base_priority=60,
        data_model=ContactOutcomeData,
        data_for=CONTACT_OUTCOMES,
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.COLLECTION_CALL: TaskRule(
        Role.BUSINESS_OFFICER,
        CONTACT_OUTCOMES,
        base_priority=70,
        data_model=ContactOutcomeData,
        data_for=CONTACT_OUTCOMES,
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.FIELD_VISIT: TaskRule(
        Role.BUSINESS_OFFICER,
        CONTACT_OUTCOMES,
        base_priority=75,
        data_model=VisitOutcomeData,
        data_for=CONTACT_OUTCOMES,
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.LEGAL_REVIEW: TaskRule(
        Role.DEPARTMENT_MANAGER,
        ("lawyers_letter", "sue", "keep_collecting"),
        base_priority=80,
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.COLLECTION_DISPUTE: TaskRule(
        # Resolved: the dispute is answered (comment) and collection resumes.
        Role.CUSTOMER_SERVICE,
        ("resolved",),
        base_priority=70,
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.WRITE_OFF_PROPOSAL: TaskRule(
        Role.RISK_MANAGER,
        ("propose", "keep_collecting"),
        base_priority=80,
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.WRITE_OFF_APPROVAL: TaskRule(
        Role.DEPARTMENT_MANAGER,
        ("approve", "reject"),
        base_priority=90,
        checks=(Party.WRITE_OFF_PROPOSER,),
        exhausted=Exhausted.CLOSE_TASK,
    ),
    TaskKind.RECONCILIATION_DIFFERENCE: TaskRule(
        Role.OPERATIONS_SPECIALIST, ("resolved", "escalate"), base_priority=70
    ),
    TaskKind.RECONCILIATION_ESCALATED: TaskRule(
        Role.DEPARTMENT_MANAGER, ("resolved",), base_priority=80
    ),
    TaskKind.LOW_LIQUIDITY: TaskRule(
        Role.DEPARTMENT_MANAGER,
        ("acknowledged", "top_up_requested"),
        base_priority=80,
        # Already the manager's: undecided past its escalations it closes (tomorrow's check
        # opens a new one while the pool stays low).
        exhausted=Exhausted.CLOSE_TASK,
    ),
}

TASK_RULES[TaskKind.PAYMENT_REVERSAL] = TaskRule(
    Role.OPERATIONS_SPECIALIST,
    ("approve", "reject"),
    base_priority=70,
    checks=(Party.REVERSAL_REQUESTER,),
    # Undecided, the request lapses (the payment stands); the servicing loan goes on.
    exhausted=Exhausted.CLOSE_TASK,
)
TASK_RULES[TaskKind.SETTLEMENT_CONFIRMATION] = TaskRule(
    Role.OPERATIONS_SPECIALIST,
    # hold: not yet (e.g. the last payment has not cleared); the comment says why.
    ("confirm", "hold"),
    base_priority=50,
    # Undecided, the task closes and a new one opens: the loan waits for its confirmation.
    exhausted=Exhausted.CLOSE_TASK,
)

TASK_RULES[TaskKind.REFUND] = TaskRule(
    Role.OPERATIONS_SPECIALIST,
    # hold: not yet (the comment says why); a new refund task opens a day later.
    ("approve", "hold"),
    base_priority=60,
    # Undecided, the task closes and a new one opens: the money is never left without a task.
    exhausted=Exhausted.CLOSE_TASK,
)
TASK_RULES[TaskKind.REFUND_AUTHORIZATION] = TaskRule(
    Role.OPERATIONS_SPECIALIST,
    # reject (comment: why): back to a new refund task.
    ("authorize", "reject"),
    base_priority=70,
    checks=(Party.REFUND_MAKER,),
    exhausted=Exhausted.CLOSE_TASK,
)
TASK_RULES[TaskKind.REFUND_FAILED] = TaskRule(
    Role.OPERATIONS_SPECIALIST,
    # retry: send the authorized refund again (a new order key after a rejection, the same key
    # after an outage); close (comment: how the money was returned otherwise).
    ("retry", "close"),
    base_priority=80,
    exhausted=Exhausted.CLOSE_TASK,
)

MAX_PRIORITY = 100
ESCALATION_STEP = 20


def escalated_priority(priority: int) -> int:
    return min(MAX_PRIORITY, priority + ESCALATION_STEP)
