"""The fast workflow tier: the real workflows on the time-skipping server with fake activities
(no HTTP, database or PDF), as in the Temporal samples' tests. The fakes keep what they were
asked to do in memory, idempotently, the way the real activities do in the database."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.allocation import PaymentMode, balances_from_schedule
from domain.calendar import business_date
from domain.disclosure import CeilingPolicy
from domain.identifiers import (
    BUSINESS_REFUSAL,
    DECIDE_UPDATE,
    PAYMENT_UPDATE,
    REVERSAL_UPDATE,
    SIGN_UPDATE,
    STATE_QUERY,
    collections_workflow_id,
    render_queue_of,
    workflow_id,
)
from domain.lifecycle import Role, Stage
from domain.lpr import LprRate, default_lpr_table
from domain.payout import Check, CheckItem, PrecheckResult, order_key
from domain.permissions import BORROWER
from domain.policy import DEFAULT_POLICY, LoanPolicy
from domain.products import (
    SEED_CATALOG,
    SEED_EFFECTIVE_FROM,
    MatchFacts,
    ProductVersion,
    Proposals,
)
from domain.products import propose as match_catalog
from domain.schedule import RepaymentMethod
from domain.tasks import TaskKind
from models.shapes import (
    ArchiveInput,
    AssessInput,
    AssessmentSummary,
    BookLoanInput,
    BureauAnswer,
    BureauRequest,
    CloseTaskInput,
    CollectionStepInput,
    ContractInfo,
    ContractInput,
    DecisionRequest,
    DecisionResult,
    DisburseInput,
    DisburseResult,
    DueReviewItem,
    DueReviewsInput,
    DueReviewsPage,
    EscalateTaskInput,
    FollowUpAnsweredInput,
    FundsInput,
    LedgerState,
    LoanInput,
    LoanTerms,
    LoanView,
    Offer,
    OfferInput,
    OpenRefundInput,
    OpenTaskInput,
    OrderInput,
    OrderOutcome,
    PaymentRequest,
    PaymentResult,
    PrecheckInput,
    ProposeInput,
    RecordPaymentInput,
    RecordPayoutInput,
    RecordRefundInput,
    RecordReversalInput,
    RecoveryInput,
    RefundPayee,
    RefundStepInput,
    ReleasePayoutInput,
    ReversalRequest,
    ReversalTicket,
    ReviewContextInput,
    ReviewDecidedInput,
    ReviewOpenedInput,
    RiskReportInput,
    SealInput,
    ServicingEventInput,
    ServicingInput,
    SettleInput,
    SettlementCertificateInput,
    SignatureInput,
    SignRequest,
    StageInput,
    WriteOffInput,
)
from tests.conftest import quiet_queries, terminate_quietly
from worker import RENDER_ACTIVITIES, WORKFLOWS, activity_name

ROLES_OF = {
    "bo": (Role.BUSINESS_OFFICER.value,),
    "ops": (Role.OPERATIONS_SPECIALIST.value,),
    "ops2": (Role.OPERATIONS_SPECIALIST.value,),
    "ops3": (Role.OPERATIONS_SPECIALIST.value,),
    "risk": (Role.RISK_MANAGER.value,),
    "pm": (Role.PRODUCT_MANAGER.value,),
    "cs": (Role.CUSTOMER_SERVICE.value,),
    "manager": (Role.DEPARTMENT_MANAGER.value,),
    # A risk manager who is also a department manager (maker-checker on a write-off).
    "boss": (Role.RISK_MANAGER.value, Role.DEPARTMENT_MANAGER.value),
}
# A choice among the proposals of the seeded catalog (grade B, 20,000 asked over 3 months).
TERMS = {
    "product_code": "SMB_OPERATING",
    "product_version": 1,
    "amount": "12000.00",
    "term_months": 3,
    "annual_rate": "0.096",
}
# The borrower the fake matching sees: an adult with no papers beyond intake's, room under caps.
FAKE_AGE = 35


@dataclass
class FakeRecords:
    """What the activities were asked to record, keyed like the real rows."""

    stages: dict[tuple[str, int], StageInput] = field(default_factory=dict)
    tasks: dict[str, OpenTaskInput] = field(default_factory=dict)
    closed: dict[str, CloseTaskInput] = field(default_factory=dict)
    escalations: dict[tuple[str, int], EscalateTaskInput] = field(default_factory=dict)
    events: list[ServicingEventInput] = field(default_factory=list)
    payments: dict[str, RecordPaymentInput] = field(default_factory=dict)
    # Payouts recorded (payout-v1: RecordPayoutInput; before it: DisburseInput), by key.
    disbursed: dict[str, Any] = field(default_factory=dict)
    settled: dict[str, SettleInput] = field(default_factory=dict)
    # Refusals the fake bank-side pre-check gives, one per disburse attempt, then it pays.
    refusals: list[tuple[str, ...]] = field(default_factory=list)
    # Refusals the fake contract preparation gives (a prohibited purpose), one per attempt.
    contract_refusals: list[tuple[str, ...]] = field(default_factory=list)
    contracts: dict[str, ContractInput] = field(default_factory=dict)
    certificates: dict[str, SettlementCertificateInput] = field(default_factory=dict)
    # Bureau calls that fail (each fails one activity attempt), and the calls made.
    bureau_failures: int = 0
    bureau_calls: list[BureauRequest] = field(default_factory=list)
    assessments: dict[tuple[str, int], AssessInput] = field(default_factory=dict)
    reports: dict[tuple[str, int], RiskReportInput] = field(default_factory=dict)
    # The matching rounds asked for, and the catalog the fake matches against.
    proposals: dict[tuple[str, int], ProposeInput] = field(default_factory=dict)
    catalog: tuple[ProductVersion, ...] = tuple(
        ProductVersion(d.code, 1, SEED_EFFECTIVE_FROM, d) for d in SEED_CATALOG
    )
    offers: dict[tuple[str, int], OfferInput] = field(default_factory=dict)
    signatures: dict[str, SignatureInput] = field(default_factory=dict)
    seals: dict[str, SealInput] = field(default_factory=dict)
    # The fake pool's available money (None: plenty) and what it reserved, by order key.
    funds: Decimal | None = None
    reserved: dict[str, Decimal] = field(default_factory=dict)
    released: dict[str, ReleasePayoutInput] = field(default_factory=dict)
    prechecks: list[PrecheckInput] = field(default_factory=list)
    # The fake bank: every send (a key per attempt), the orders it holds (one per key), how
    # many new orders it rejects next, and how many sends fail as if it were down.
    bank_sends: list[str] = field(default_factory=list)
    bank_orders: dict[str, OrderOutcome] = field(default_factory=dict)
    bank_rejects: int = 0
    bank_down: int = 0
    reversals: dict[str, RecordReversalInput] = field(default_factory=dict)
    archives: dict[str, ArchiveInput] = field(default_factory=dict)
    # Aftercare: answered follow-up calls (by task id), reviews opened and decided (by loan and
    # period key), and the loans the fake sweep selection finds due (two per page).
    follow_ups: dict[str, FollowUpAnsweredInput] = field(default_factory=dict)
    reviews_opened: dict[tuple[str, str], ReviewOpenedInput] = field(default_factory=dict)
    reviews_decided: dict[tuple[str, str], ReviewDecidedInput] = field(default_factory=dict)
    due_reviews: list[DueReviewItem] = field(default_factory=list)
    due_queries: list[DueReviewsInput] = field(default_factory=list)
    # The collections log (by key), write-offs and recoveries.
    collection_steps: dict[str, CollectionStepInput] = field(default_factory=dict)
    write_offs: dict[str, WriteOffInput] = field(default_factory=dict)
    recoveries: dict[str, RecoveryInput] = field(default_factory=dict)
    # The refunds of settled loans: the rows opened, every step (in order), the ones paid.
    refunds_opened: dict[str, OpenRefundInput] = field(default_factory=dict)
    refund_steps: list[RefundStepInput] = field(default_factory=list)
    refunds_paid: dict[str, RecordRefundInput] = field(default_factory=dict)
    # Payments whose recording waits until the test sets their event (the ledger lock held
    # meanwhile), and the refs whose recording is waiting now.
    payment_holds: dict[str, threading.Event] = field(default_factory=dict)
    payments_held: set[str] = field(default_factory=set)
    # The task queues each rendering activity ran on (by activity name): the render queue.
    render_queues: dict[str, set[str]] = field(default_factory=dict)

    def note_queue(self) -> None:
        """Called by an activity: the task queue it runs on, under its name."""
        info = activity.info()
        self.render_queues.setdefault(info.activity_type, set()).add(info.task_queue)

    def collections_log(self, application_no: str) -> list[CollectionStepInput]:
        """The loan's collections log in the order it was written."""
        return [s for s in self.collection_steps.values() if s.application_no == application_no]

    def open_tasks(self, application_no: str) -> list[OpenTaskInput]:
        return [
            t
            for t in self.tasks.values()
            if t.application_no == application_no and t.task_id not in self.closed
        ]

    def stages_of(self, application_no: str) -> list[StageInput]:
        return sorted(
            (s for s in self.stages.values() if s.application_no == application_no),
            key=lambda s: s.seq,
        )

    def stage_names(self, application_no: str) -> list[str]:
        return [s.stage.value for s in self.stages_of(application_no)]


def fake_activities(rec: FakeRecords) -> list[Any]:
    @activity.defn(name="record_stage")
    def record_stage(inp: StageInput) -> None:
        rec.stages.setdefault((inp.application_no, inp.seq), inp)

    @activity.defn(name="open_task")
    def open_task(inp: OpenTaskInput) -> None:
        rec.tasks.setdefault(inp.task_id, inp)

    @activity.defn(name="escalate_task")
    def escalate_task(inp: EscalateTaskInput) -> None:
        rec.escalations.setdefault((inp.task_id, inp.level), inp)

    @activity.defn(name="close_task")
    def close_task(inp: CloseTaskInput) -> None:
        rec.closed.setdefault(inp.task_id, inp)

    @activity.defn(name="record_offer")
    def record_offer(inp: OfferInput) -> None:
        rec.offers.setdefault((inp.application_no, inp.round), inp)

    @activity.defn(name="propose")
    def propose(inp: ProposeInput) -> Proposals:
        rec.proposals.setdefault((inp.application_no, inp.round), inp)
        return match_catalog(
            [v for v in rec.catalog if v.effective_from <= inp.offered_on],
            MatchFacts(
                requested_amount=inp.requested_amount,
                requested_term=inp.requested_term_months,
                grade=inp.grade,
                caps_room=Decimal("200000.00"),
                age=FAKE_AGE,
                manager_approved=inp.manager_approved,
            ),
            on=inp.offered_on,
            lpr=default_lpr_table().in_force(inp.offered_on),
            ceiling=CeilingPolicy(
                lpr_multiple=inp.lpr_multiple, absolute_cap=inp.absolute_rate_cap
            ),
        )

    @activity.defn(name="prepare_contract")
    def prepare_contract(inp: ContractInput) -> ContractInfo:
        rec.note_queue()
        if rec.contract_refusals:
            raise ApplicationError(
                "the contract was refused",
                *rec.contract_refusals.pop(0),
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            )
        rec.contracts.setdefault(inp.application_no, inp)
        doc = str(uuid.uuid5(uuid.NAMESPACE_URL, inp.application_no))
        return ContractInfo(document_id=doc, sha256="0" * 64, contract_no=inp.contract_no)

    @activity.defn(name="record_signature")
    def record_signature(inp: SignatureInput) -> None:
        rec.note_queue()
        rec.signatures.setdefault(inp.application_no, inp)

    @activity.defn(name="record_seal")
    def record_seal(inp: SealInput) -> None:
        rec.seals.setdefault(inp.application_no, inp)

    @activity.defn(name="disburse")
    def disburse(inp: DisburseInput) -> DisburseResult:
        if rec.refusals:
            reasons = rec.refusals.pop(0)
            raise ApplicationError(
                "the disbursement pre-check failed",
                *reasons,
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            )
        rec.disbursed.setdefault(inp.idempotency_key, inp)
        paid = rec.disbursed[inp.idempotency_key]
        return DisburseResult(paid.at, business_date(paid.at, inp.business_timezone))

    @activity.defn(name="book_loan")
    def book_loan(inp: BookLoanInput) -> None:
        return None

    def reserve(key: str, amount: Decimal) -> bool:
        if key in rec.reserved:
            return True
        if rec.funds is not None:
            if rec.funds < amount:
                return False
            rec.funds -= amount
        rec.reserved[key] = amount
        return True

    @activity.defn(name="precheck_payout")
    def precheck_payout(inp: PrecheckInput) -> PrecheckResult:
        rec.prechecks.append(inp)
        key = order_key(inp.application_no, inp.attempt)
        failing = set(rec.refusals.pop(0)) if rec.refusals else set()
        items = [
            CheckItem(c, c.value not in failing, c.value)
            for c in Check
            if c != Check.FUNDS_RESERVED
        ]
        funded = not failing and reserve(key, inp.terms.payout)
        items.append(CheckItem(Check.FUNDS_RESERVED, funded, "funds"))
        return PrecheckResult(tuple(items), inp.terms.payout, key)

    @activity.defn(name="funds_available")
    def funds_available(inp: FundsInput) -> bool:
        return reserve(inp.order_key, inp.amount)

    @activity.defn(name="send_payment_order")
    def send_payment_order(inp: OrderInput) -> OrderOutcome:
        rec.bank_sends.append(inp.order_key)
        if rec.bank_down > 0:
            rec.bank_down -= 1
            raise ApplicationError("the bank is down (fake)", non_retryable=True)
        if inp.order_key not in rec.bank_orders:
            on = business_date(activity.info().current_attempt_scheduled_time, "Asia/Shanghai")
            if rec.bank_rejects > 0:
                rec.bank_rejects -= 1
                rec.bank_orders[inp.order_key] = OrderOutcome(
                    "rejected", inp.order_key, "BO1", reason_code="ACCOUNT_FROZEN", reason="frozen"
                )
            else:
                rec.bank_orders[inp.order_key] = OrderOutcome(
                    "executed", inp.order_key, f"BO-{inp.order_key}", value_date=on
                )
        return rec.bank_orders[inp.order_key]

    @activity.defn(name="send_refund_order")
    def send_refund_order(inp: OrderInput) -> OrderOutcome:
        return send_payment_order(inp)

    @activity.defn(name="open_refund")
    def open_refund(inp: OpenRefundInput) -> RefundPayee:
        rec.refunds_opened.setdefault(inp.application_no, inp)
        return RefundPayee(account="6222 **** 3446", contract_no=f"HT{inp.application_no}")

    @activity.defn(name="refund_step")
    def refund_step(inp: RefundStepInput) -> None:
        if inp not in rec.refund_steps:
            rec.refund_steps.append(inp)

    @activity.defn(name="record_refund")
    def record_refund(inp: RecordRefundInput) -> None:
        rec.refunds_paid.setdefault(inp.application_no, inp)

    @activity.defn(name="payment_order_status")
    def payment_order_status(inp: OrderInput) -> OrderOutcome:
        return rec.bank_orders.get(inp.order_key) or OrderOutcome("missing", inp.order_key)

    @activity.defn(name="release_payout")
    def release_payout(inp: ReleasePayoutInput) -> None:
        amount = rec.reserved.pop(inp.order_key, None)
        if amount is not None and rec.funds is not None:
            rec.funds += amount
        rec.released.setdefault(inp.order_key, inp)

    @activity.defn(name="record_payout")
    def record_payout(inp: RecordPayoutInput) -> None:
        rec.disbursed.setdefault(inp.order_key, inp)

    @activity.defn(name="record_payment")
    def record_payment(inp: RecordPaymentInput) -> None:
        hold = rec.payment_holds.get(inp.request.external_ref)
        if hold is not None:
            rec.payments_held.add(inp.request.external_ref)
            hold.wait(timeout=30)
        rec.payments.setdefault(inp.request.external_ref, inp)

    @activity.defn(name="servicing_event")
    def servicing_event(inp: ServicingEventInput) -> None:
        rec.events.append(inp)

    @activity.defn(name="fetch_bureau_report")
    def fetch_bureau_report(inp: BureauRequest) -> BureauAnswer:
        rec.bureau_calls.append(inp)
        if rec.bureau_failures > 0:
            rec.bureau_failures -= 1
            raise ApplicationError("the credit bureau is unavailable: HTTP 503")
        return BureauAnswer(status="no_record")

    @activity.defn(name="assess_application")
    def assess_application(inp: AssessInput) -> AssessmentSummary:
        rec.assessments.setdefault((inp.application_no, inp.seq), inp)
        return AssessmentSummary(
            seq=inp.seq,
            grade="B",
            score=660,
            recommendation="approve",
            knock_outs=(),
            attention=("documents",),
            bureau_status=inp.bureau_status,
        )

    @activity.defn(name="render_risk_report")
    def render_risk_report(inp: RiskReportInput) -> str:
        rec.note_queue()
        rec.reports.setdefault((inp.application_no, inp.seq), inp)
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{inp.application_no}/{inp.seq}"))

    @activity.defn(name="settle_loan")
    def settle_loan(inp: SettleInput) -> None:
        rec.settled.setdefault(inp.application_no, inp)

    @activity.defn(name="issue_settlement_certificate")
    def issue_settlement_certificate(inp: SettlementCertificateInput) -> str:
        rec.note_queue()
        rec.certificates.setdefault(inp.application_no, inp)
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{inp.application_no}/certificate"))

    @activity.defn(name="record_reversal")
    def record_reversal(inp: RecordReversalInput) -> None:
        rec.reversals.setdefault(inp.external_ref, inp)

    @activity.defn(name="archive_loan")
    def archive_loan(inp: ArchiveInput) -> str:
        rec.archives.setdefault(inp.application_no, inp)
        return "0" * 64

    @activity.defn(name="record_follow_up")
    def record_follow_up(inp: FollowUpAnsweredInput) -> int:
        new = inp.task_id not in rec.follow_ups
        rec.follow_ups.setdefault(inp.task_id, inp)
        return len(inp.flags) if new else 0

    @activity.defn(name="review_context")
    def review_context(inp: ReviewContextInput) -> dict[str, Any]:
        flags = [
            {"kind": kind, "detail": detail}
            for f in rec.follow_ups.values()
            if f.application_no == inp.application_no
            for kind, detail in f.flags
        ]
        return {"repayment": {"installments": 3}, "open_flags": flags, "classification": "normal"}

    @activity.defn(name="record_review_opened")
    def record_review_opened(inp: ReviewOpenedInput) -> None:
        rec.reviews_opened.setdefault((inp.application_no, inp.period_key), inp)

    @activity.defn(name="record_review_decided")
    def record_review_decided(inp: ReviewDecidedInput) -> str:
        rec.reviews_decided.setdefault((inp.application_no, inp.period_key), inp)
        return inp.outcome

    @activity.defn(name="select_due_reviews")
    def select_due_reviews(inp: DueReviewsInput) -> DueReviewsPage:
        rec.due_queries.append(inp)
        rest = sorted(
            (d for d in rec.due_reviews if inp.after is None or d.application_no > inp.after),
            key=lambda d: d.application_no,
        )
        page = rest[:2]
        return DueReviewsPage(
            due=tuple(page), next_after=page[-1].application_no if len(rest) > 2 else None
        )

    @activity.defn(name="record_collection_step")
    def record_collection_step(inp: CollectionStepInput) -> None:
        rec.collection_steps.setdefault(inp.key, inp)

    @activity.defn(name="record_write_off")
    def record_write_off(inp: WriteOffInput) -> None:
        rec.write_offs.setdefault(inp.application_no, inp)

    @activity.defn(name="record_recovery")
    def record_recovery(inp: RecoveryInput) -> None:
        rec.recoveries.setdefault(inp.external_ref, inp)

    return [
        record_reversal,
        archive_loan,
        record_follow_up,
        review_context,
        record_review_opened,
        record_review_decided,
        select_due_reviews,
        record_collection_step,
        record_write_off,
        record_recovery,
        record_stage,
        open_task,
        escalate_task,
        close_task,
        record_offer,
        propose,
        prepare_contract,
        record_signature,
        record_seal,
        disburse,
        book_loan,
        precheck_payout,
        funds_available,
        send_payment_order,
        send_refund_order,
        open_refund,
        refund_step,
        record_refund,
        payment_order_status,
        release_payout,
        record_payout,
        record_payment,
        servicing_event,
        settle_loan,
        issue_settlement_certificate,
        fetch_bureau_report,
        assess_application,
        render_risk_report,
    ]


@dataclass
class Fast:
    """One worker with fake activities on its own task queue."""

    env: WorkflowEnvironment
    client: Client
    task_queue: str
    records: FakeRecords
    started: list[str] = field(default_factory=list)

    async def start_origination(self, policy: LoanPolicy = DEFAULT_POLICY) -> str:
        no = f"F{uuid.uuid4().hex[:10].upper()}"
        await self.client.start_workflow(
            "OriginationWorkflow",
            LoanInput(no, "bo", Decimal("20000.00"), 3, policy),
            id=workflow_id(no),
            task_queue=self.task_queue,
        )
        self.started.append(no)
        return no

    async def start_servicing(self, policy: LoanPolicy = DEFAULT_POLICY) -> str:
        """A loan that starts in servicing today: 12,000 over 3 months at 9.6 %."""
        no = f"S{uuid.uuid4().hex[:10].upper()}"
        now = await self.env.get_current_time()
        start = business_date(now, policy.business_timezone)
        terms = LoanTerms(
            Decimal("12000.00"), 3, Decimal("0.096"), RepaymentMethod.EQUAL_INSTALLMENT
        )
        schedule = terms.schedule(start)
        offer = Offer(
            terms=terms,
            apr=Decimal("0.096"),
            apr_compound=Decimal("0.1"),
            total_interest=schedule.total_interest,
            total_fees=Decimal("0"),
            total_payment=schedule.total_payment,
            first_payment=schedule.installments[0].payment,
            lpr=Decimal("0.03"),
            rate_cap=Decimal("0.12"),
            offered_on=start,
            expires_at=now + timedelta(days=7),
        )
        await self.client.start_workflow(
            "ServicingWorkflow",
            ServicingInput(
                application_no=no,
                policy=policy,
                offer=offer,
                contract=ContractInfo("doc", "0" * 64, f"HT{no}"),
                start_date=start,
                ledger=LedgerState(installments=balances_from_schedule(schedule)),
            ),
            id=workflow_id(no),
            task_queue=self.task_queue,
        )
        self.started.append(no)
        return no

    def handle(self, application_no: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(workflow_id(application_no))

    async def view(self, application_no: str) -> LoanView:
        """The loan's live state. A query that lands as origination continues as new into
        servicing can go unanswered on the test server (its task completes on a closed run):
        asked again, the new run answers."""
        for _ in range(4):
            try:
                return await self.handle(application_no).query(
                    STATE_QUERY, result_type=LoanView, rpc_timeout=timedelta(seconds=5)
                )
            except RPCError:
                await asyncio.sleep(0.05)
        return await self.handle(application_no).query(STATE_QUERY, result_type=LoanView)

    async def decide(
        self,
        application_no: str,
        task_id: str,
        decision: str,
        user: str,
        *,
        lpr: LprRate | None = None,
        **kw: Any,
    ) -> DecisionResult:
        """A decision as the API sends it (product terms carry the LPR of the day)."""
        if "data" in kw and lpr is None:
            lpr = default_lpr_table().in_force(date.today())
        req = DecisionRequest(task_id, decision, user, ROLES_OF[user], lpr_in_force=lpr, **kw)
        return await self.handle(application_no).execute_update(
            DECIDE_UPDATE, req, result_type=DecisionResult
        )

    async def reaches(self, application_no: str, stage: Stage) -> None:
        """Once the loan's stage is ``stage`` (a decision answers when it is recorded, with the
        stage the loan is moving to: the work after it, a payout, comes later)."""
        for _ in range(500):
            if (await self.view(application_no)).stage == stage:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{application_no} did not reach {stage.value}")

    async def contract_of(self, application_no: str) -> ContractInfo | None:
        """The contract to sign, once rendered (the offer's acceptance answers before); None
        when the loan left CONTRACT_SIGNING without one (a refused contract)."""
        for _ in range(500):
            view = await self.view(application_no)
            if view.contract is not None or view.stage != Stage.CONTRACT_SIGNING:
                return view.contract
            await asyncio.sleep(0.02)
        raise AssertionError(f"no contract was prepared for {application_no}")

    async def task_of(self, application_no: str, kind: TaskKind) -> str:
        """The open task of ``kind``, once the workflow shows it."""
        for _ in range(500):
            view = await self.view(application_no)
            for t in view.open_tasks:
                if t.kind == kind:
                    return t.task_id
            await asyncio.sleep(0.02)
        raise AssertionError(f"no open {kind.value} task on {application_no}")

    async def pay(
        self,
        application_no: str,
        ref: str,
        amount: Decimal,
        paid_on: date,
        *,
        mode: PaymentMode = PaymentMode.INSTALLMENTS,
    ) -> PaymentResult:
        """A payment as the API posts it (by ops), received now and dated ``paid_on``."""
        return await self.handle(application_no).execute_update(
            PAYMENT_UPDATE,
            PaymentRequest(
                external_ref=ref,
                amount=amount,
                paid_at=await self.env.get_current_time(),
                paid_on=paid_on,
                recorded_by="ops",
                mode=mode,
                roles=ROLES_OF["ops"],
            ),
            result_type=PaymentResult,
        )

    async def request_reversal(
        self, application_no: str, ref: str, user: str = "ops", reason: str = "退票：余额不足"
    ) -> ReversalTicket:
        return await self.handle(application_no).execute_update(
            REVERSAL_UPDATE,
            ReversalRequest(ref, reason, user, ROLES_OF[user]),
            result_type=ReversalTicket,
        )

    async def confirm_settlement(self, application_no: str, user: str = "ops") -> None:
        """The last fen is paid: operations confirms the settlement (settlement-confirmation-v1);
        returns once the loan is SETTLED."""
        task_id = await self.task_of(application_no, TaskKind.SETTLEMENT_CONFIRMATION)
        await self.decide(application_no, task_id, "confirm", user)
        assert await self.handle(application_no).result() == "SETTLED"

    async def stage(self, application_no: str) -> Stage:
        return (await self.view(application_no)).stage

    async def drive_to(
        self, application_no: str, stage: Stage, terms: dict[str, Any] | None = None
    ) -> None:
        """Take an application along the happy path until it rests in ``stage``."""
        data = {"data": terms or TERMS}
        steps: list[tuple[Stage, TaskKind, str, str, dict[str, Any]]] = [
            (Stage.INTAKE_REVIEW, TaskKind.INTAKE_REVIEW, "approve", "ops", {}),
            (Stage.RISK_REVIEW, TaskKind.RISK_REVIEW, "approve", "risk", {}),
            (Stage.PRODUCT_MATCHING, TaskKind.PRODUCT_MATCHING, "approve", "pm", data),
            (Stage.OFFER_CONFIRMATION, TaskKind.OFFER_CONFIRMATION, "accept", "bo", {}),
        ]
        for at_stage, kind, decision, user, extra in steps:
            if at_stage == stage:
                await self.task_of(application_no, kind)  # it rests there: the task is open
                return
            task_id = await self.task_of(application_no, kind)
            await self.decide(application_no, task_id, decision, user, **extra)
        contract = await self.contract_of(application_no)
        if stage == Stage.CONTRACT_SIGNING:
            return
        assert contract is not None
        await self.handle(application_no).execute_update(
            SIGN_UPDATE,
            SignRequest(contract.document_id, contract.sha256, (BORROWER,)),
            result_type=DecisionResult,
        )
        # The lender's authorized signatory seals the signed contract.
        task_id = await self.task_of(application_no, TaskKind.LENDER_SEAL)
        await self.decide(application_no, task_id, "seal", "manager")
        if stage == Stage.DISBURSEMENT:
            await self.task_of(application_no, TaskKind.DISBURSEMENT)
            return
        await self.authorize_payout(application_no)

    async def authorize_payout(self, application_no: str) -> DecisionResult:
        """The payout's four eyes: ops2 requests it, ops3 authorizes it (ops reviewed the
        intake); above the policy's limit the manager authorizes too. Each decision answers
        DISBURSEMENT (the payout comes after it); the result returned is the last one's, with
        the stage the loan then rests in: SERVICING once paid, else DISBURSEMENT (a task)."""
        task_id = await self.task_of(application_no, TaskKind.DISBURSEMENT)
        result = await self.decide(application_no, task_id, "approve", "ops2")
        task_id = await self.task_of(application_no, TaskKind.DISBURSEMENT_AUTHORIZATION)
        result = await self.decide(application_no, task_id, "authorize", "ops3")
        view = await self.payout_goes_on(application_no)
        if any(t.kind == TaskKind.DISBURSEMENT_MANAGER_AUTHORIZATION for t in view.open_tasks):
            task_id = await self.task_of(
                application_no, TaskKind.DISBURSEMENT_MANAGER_AUTHORIZATION
            )
            result = await self.decide(application_no, task_id, "authorize", "manager")
            view = await self.payout_goes_on(application_no)
        return replace(result, stage=view.stage.value)

    async def payout_goes_on(self, application_no: str) -> LoanView:
        """The loan once its payout has gone on after a decision: paid (out of DISBURSEMENT),
        or waiting for a person again (a task of the payout open)."""
        for _ in range(500):
            view = await self.view(application_no)
            if view.stage != Stage.DISBURSEMENT or view.open_tasks:
                return view
            await asyncio.sleep(0.02)
        raise AssertionError(f"the payout of {application_no} did not go on")


@asynccontextmanager
async def fast_worker(env: WorkflowEnvironment) -> AsyncIterator[Fast]:
    records = FakeRecords()
    task_queue = f"fast-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with (
            Worker(
                env.client,
                task_queue=task_queue,
                workflows=WORKFLOWS,
                activities=fake_activities(records),
                activity_executor=executor,
            ),
            # The renders go to the render queue of the loans' queue (issue 13).
            Worker(
                env.client,
                task_queue=render_queue_of(task_queue),
                activities=[
                    fn for fn in fake_activities(records) if activity_name(fn) in RENDER_ACTIVITIES
                ],
                activity_executor=executor,
            ),
        ):
            fast = Fast(env, quiet_queries(env.client), task_queue, records)
            try:
                yield fast
            finally:
                # A workflow left waiting on timers with no worker would stop the shared
                # time-skipping server from skipping time for the tests after this one.
                for no in fast.started:
                    await terminate_quietly(env.client, workflow_id(no))
                    for episode in range(1, 4):  # collections episodes outlive their parent
                        await terminate_quietly(env.client, collections_workflow_id(no, episode))
