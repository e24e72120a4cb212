"""The department's scheduled jobs on the time-skipping server with the real activities (SQLite,
the sandbox bank as its own process): reconciliation differences become tasks decided through
the inbox API, a re-run never duplicates, low liquidity alerts once a day, the classification
sweep and the portfolio snapshot run once per date."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, col, select
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from domain.funding import POOL_CODE
from domain.identifiers import (
    CLASSIFICATION_SWEEP_WORKFLOW,
    LIQUIDITY_CHECK_WORKFLOW,
    PORTFOLIO_SNAPSHOT_WORKFLOW,
    RECONCILIATION_WORKFLOW,
    low_liquidity_workflow_id,
    reconciliation_workflow_id,
)
from domain.tasks import TaskKind
from models.funding import ensure_pool
from models.jobs import DailyJobInput, DailyJobResult
from models.tables import (
    AuditEvent,
    FundingPool,
    Payment,
    PortfolioSnapshot,
    ReconciliationDifference,
    ReconciliationRun,
    Task,
)
from tests.conftest import System, free_port, terminate_quietly
from worker import WORKFLOWS, build_activities
from workflows.department import check_liquidity_now

pytestmark = pytest.mark.asyncio

POOL_ACCOUNT = "9558800200100000005"


def _empty_pool(s: Session) -> None:
    """The whole-system fixture opens the demo pool (¥5,000,000): these tests need it empty
    (0 available, below its ¥1,000,000 line)."""
    ensure_pool(s, account_no=POOL_ACCOUNT, at=datetime.now(UTC))
    pool = s.get(FundingPool, POOL_CODE)
    assert pool is not None
    pool.balance = pool.reserved = Decimal("0.00")
    s.add(pool)
    s.commit()


@dataclass
class Jobs:
    system: System
    bank: Any
    # Every job workflow the test starts (terminated at its end: the test server is shared).
    started: list[str] = field(default_factory=list)

    async def start(self, workflow: str, arg: Any, workflow_id: str) -> Any:
        self.started.append(workflow_id)
        return await self.system.client.start_workflow(
            workflow,
            arg,
            id=workflow_id,
            task_queue=self.system.settings.temporal_task_queue,
            result_type=DailyJobResult,
        )


def _jobs(system: System, bank: Any) -> Jobs:
    """The system reading the sandbox bank's ledger with no grace period."""
    system.settings.bank_url = bank.url
    system.settings.reconciliation_grace_minutes = 0
    return Jobs(system, bank)


async def _end(j: Jobs) -> None:
    for wid in j.started:
        await terminate_quietly(j.system.client, wid)


@pytest_asyncio.fixture
async def jobs(sqlite_system: System, fresh_bank: Any) -> AsyncIterator[Jobs]:
    j = _jobs(sqlite_system, fresh_bank)
    try:
        yield j
    finally:
        await _end(j)


@pytest_asyncio.fixture
async def jobs_each_db(system: System, fresh_bank: Any) -> AsyncIterator[Jobs]:
    """The same on SQLite and on PostgreSQL."""
    j = _jobs(system, fresh_bank)
    try:
        yield j
    finally:
        await _end(j)


def inject_payout(bank: Any, key: str, amount: str) -> None:
    """A payment order sent to the bank by someone other than our payout (no disbursement row),
    executed by the bank."""
    r = httpx.post(
        f"{bank.url}/v1/payments",
        json={
            "amount": amount,
            "payee_account": "6222020200112233552",
            "payee_name": "李建国",
            "payer_account": POOL_ACCOUNT,
            "reference": f"manual transfer {key}",
        },
        headers={"Idempotency-Key": key},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    for _ in range(500):
        if any(e["key"] == key for e in bank.ledger()):
            return
        time.sleep(0.02)
    raise AssertionError(f"the bank never executed {key}")


async def open_tasks(system: System, kind: TaskKind, n: int = 1) -> list[Task]:
    """Wait until ``n`` open tasks of ``kind`` exist (real time: their SLAs are hours away)."""
    for _ in range(1000):
        with Session(system.engine) as s:
            rows = list(
                s.exec(
                    select(Task)
                    .where(Task.kind == kind.value, Task.status == "open")
                    .order_by(col(Task.created_at))
                ).all()
            )
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {n} open {kind.value} tasks, found {len(rows)}")


async def difference_with_task(system: System, task: Task) -> ReconciliationDifference:
    """The difference once the workflow noted the task opened for it."""
    for _ in range(1000):
        for d in differences(system):
            if d.task_id == task.id:
                return d
        await asyncio.sleep(0.02)
    raise AssertionError(f"no difference names task {task.id}")


def differences(system: System) -> list[ReconciliationDifference]:
    with Session(system.engine) as s:
        return list(s.exec(select(ReconciliationDifference)).all())


def count_tasks(system: System, kind: TaskKind) -> int:
    with Session(system.engine) as s:
        return len(s.exec(select(Task).where(Task.kind == kind.value)).all())


async def test_a_payout_not_on_record_becomes_a_task_decided_through_the_inbox(
    jobs_each_db: Jobs,
) -> None:
    jobs = jobs_each_db
    system, bank = jobs.system, jobs.bank
    day = date(2031, 3, 2)
    inject_payout(bank, "payout-GHOST-1", "5000.00")
    wid = reconciliation_workflow_id(day)
    handle = await jobs.start(RECONCILIATION_WORKFLOW, DailyJobInput(as_of=day), wid)

    (task,) = await open_tasks(system, TaskKind.RECONCILIATION_DIFFERENCE)
    assert task.workflow_id == wid  # the inbox sends the decision to the reconciliation
    assert task.application_no == "RECON-20310302"
    assert task.candidate_role == "operations_specialist"
    assert task.context is not None
    assert task.context["kind"] == "bank_only"
    assert task.context["reference"] == "payout-GHOST-1"
    assert task.context["bank_amount"] == "5000.00"
    diff = await difference_with_task(system, task)
    assert (diff.key, diff.status) == ("bank_only/out/payout-GHOST-1", "open")
    assert len(differences(system)) == 1

    url = f"/api/v1/tasks/{task.id}/decision"
    refused = await system.call("POST", url, user="ops", json={"decision": "resolved"})
    assert refused.status_code == 422, refused.text
    assert "comment" in refused.text
    decided = await system.call(
        "POST",
        url,
        user="ops",
        json={"decision": "resolved", "comment": "a manual transfer by treasury; booked"},
    )
    assert decided.status_code == 200, decided.text

    result = await handle.result()
    assert (result.as_of, result.count) == (day, 1)
    (diff,) = differences(system)
    assert (diff.status, diff.resolved_by) == ("resolved", "ops")
    assert diff.comment == "a manual transfer by treasury; booked"
    with Session(system.engine) as s:
        run = s.get(ReconciliationRun, day)
        assert run is not None
        assert (run.status, run.bank_movements, run.differences_new) == ("completed", 1, 1)
        closed = s.get(Task, task.id)
        assert closed is not None and (closed.status, closed.decision) == ("completed", "resolved")

    view = await system.call("GET", f"/api/v1/reconciliation/runs/{day}", user="auditor")
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["status"] == "completed"
    assert [(d["key"], d["status"], d["bank_amount"]) for d in body["differences"]] == [
        ("bank_only/out/payout-GHOST-1", "resolved", "5000.00")
    ]
    runs = await system.call("GET", "/api/v1/reconciliation/runs", user="manager")
    assert [r["business_date"] for r in runs.json()["items"]] == [day.isoformat()]
    missing = await system.call("GET", "/api/v1/reconciliation/runs/2031-01-01", user="ops")
    assert missing.status_code == 404

    # The next day's run finds the same difference: nothing new is recorded or opened.
    nxt = day + timedelta(days=1)
    again = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=nxt), reconciliation_workflow_id(nxt)
    )
    assert (await again.result()).count == 0
    assert len(differences(system)) == 1
    assert count_tasks(system, TaskKind.RECONCILIATION_DIFFERENCE) == 1
    with Session(system.engine) as s:
        run = s.get(ReconciliationRun, nxt)
        assert run is not None
        assert (run.differences_found, run.differences_new) == (1, 0)


async def test_an_escalated_difference_goes_to_the_manager_and_is_not_reopened_next_day(
    jobs: Jobs,
) -> None:
    system, bank = jobs.system, jobs.bank
    day = date(2031, 4, 2)
    inject_payout(bank, "payout-GHOST-2", "880.00")
    handle = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=day), reconciliation_workflow_id(day)
    )
    (task,) = await open_tasks(system, TaskKind.RECONCILIATION_DIFFERENCE)
    r = await system.call(
        "POST",
        f"/api/v1/tasks/{task.id}/decision",
        user="ops",
        json={"decision": "escalate", "comment": "not ours: the manager should call the bank"},
    )
    assert r.status_code == 200, r.text
    (escalated,) = await open_tasks(system, TaskKind.RECONCILIATION_ESCALATED)
    assert escalated.candidate_role == "department_manager"
    assert escalated.context is not None
    assert escalated.context["escalated_by"] == "ops"
    diff = await difference_with_task(system, escalated)
    assert diff.status == "escalated"

    # Still unresolved the next day: the run sees it and opens nothing new.
    nxt = day + timedelta(days=1)
    again = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=nxt), reconciliation_workflow_id(nxt)
    )
    assert (await again.result()).count == 0
    assert count_tasks(system, TaskKind.RECONCILIATION_DIFFERENCE) == 1
    assert count_tasks(system, TaskKind.RECONCILIATION_ESCALATED) == 1

    r = await system.call(
        "POST",
        f"/api/v1/tasks/{escalated.id}/decision",
        user="manager",
        json={"decision": "resolved", "comment": "the bank reversed it on 4 April"},
    )
    assert r.status_code == 200, r.text
    assert (await handle.result()).count == 1
    (diff,) = differences(system)
    assert (diff.status, diff.resolved_by) == ("resolved", "manager")


async def test_a_scheduled_start_runs_the_reconciliation_of_the_date_once(
    jobs: Jobs,
) -> None:
    """A schedule starts the job under its own id: it starts ``reconcile-<date>`` once; a
    second start the same day finds it there."""
    system = jobs.system
    day = date(2031, 5, 2)
    wid = reconciliation_workflow_id(day)
    jobs.started.append(wid)
    first = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=day), f"sched-{uuid.uuid4()}"
    )
    assert (await first.result()).started == wid
    second = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=day), f"sched-{uuid.uuid4()}"
    )
    assert (await second.result()).started is None
    done = await system.client.get_workflow_handle(wid, result_type=DailyJobResult).result()
    assert done.count == 0  # an empty ledger, no records: nothing to settle
    with Session(system.engine) as s:
        run = s.get(ReconciliationRun, day)
        assert run is not None and run.status == "completed"


async def test_low_liquidity_opens_one_task_a_day(jobs: Jobs) -> None:
    system = jobs.system
    with Session(system.engine) as s:  # an empty pool: 0 available, below the ¥1,000,000 line
        _empty_pool(s)
    day = date(2031, 6, 2)
    jobs.started += [low_liquidity_workflow_id(day + timedelta(days=i)) for i in (0, 1)]

    async def check(on: date) -> DailyJobResult:
        h = await jobs.start(
            LIQUIDITY_CHECK_WORKFLOW, DailyJobInput(as_of=on), f"liq-{uuid.uuid4()}"
        )
        result: DailyJobResult = await h.result()
        return result

    first = await check(day)
    assert (first.count, first.started) == (1, low_liquidity_workflow_id(day))
    (task,) = await open_tasks(system, TaskKind.LOW_LIQUIDITY)
    assert task.candidate_role == "department_manager"
    assert task.context is not None
    assert (task.context["available"], task.context["threshold"]) == ("0.00", "1000000.00")
    assert task.workflow_id == low_liquidity_workflow_id(day)
    assert (await check(day)).count == 0  # the same day again: no second task
    assert count_tasks(system, TaskKind.LOW_LIQUIDITY) == 1

    assert (await check(day + timedelta(days=1))).count == 1  # still low the next day
    await open_tasks(system, TaskKind.LOW_LIQUIDITY, 2)

    r = await system.call(
        "POST",
        f"/api/v1/tasks/{task.id}/decision",
        user="manager",
        json={"decision": "top_up_requested", "comment": "top-up of ¥2,000,000 requested"},
    )
    assert r.status_code == 200, r.text
    alert = system.client.get_workflow_handle(
        low_liquidity_workflow_id(day), result_type=DailyJobResult
    )
    assert (await alert.result()).count == 1


async def test_no_alert_while_the_pool_is_above_its_line(jobs: Jobs) -> None:
    system = jobs.system
    with Session(system.engine) as s:
        ensure_pool(s, account_no=POOL_ACCOUNT, threshold=Decimal("0.00"), at=datetime.now(UTC))
    h = await jobs.start(
        LIQUIDITY_CHECK_WORKFLOW, DailyJobInput(as_of=date(2031, 7, 2)), f"liq-{uuid.uuid4()}"
    )
    assert (await h.result()).count == 0
    assert count_tasks(system, TaskKind.LOW_LIQUIDITY) == 0


async def test_classification_sweep_and_portfolio_snapshot_run_once_per_date(
    jobs: Jobs,
) -> None:
    system = jobs.system
    day = date(2031, 8, 2)
    sweep = await jobs.start(
        CLASSIFICATION_SWEEP_WORKFLOW, DailyJobInput(as_of=day), f"cls-{uuid.uuid4()}"
    )
    assert (await sweep.result()).as_of == day
    snap = await jobs.start(
        PORTFOLIO_SNAPSHOT_WORKFLOW, DailyJobInput(as_of=day), f"snap-{uuid.uuid4()}"
    )
    await snap.result()
    with Session(system.engine) as s:
        first = s.get(PortfolioSnapshot, day)
        assert first is not None
        taken_at = first.taken_at
    again = await jobs.start(
        PORTFOLIO_SNAPSHOT_WORKFLOW, DailyJobInput(as_of=day), f"snap-{uuid.uuid4()}"
    )
    await again.result()
    with Session(system.engine) as s:
        rows = s.exec(select(PortfolioSnapshot)).all()
        assert [(r.as_of, r.taken_at) for r in rows] == [(day, taken_at)]


async def test_a_difference_nobody_settles_is_handed_to_the_manager_then_closed_unresolved(
    jobs: Jobs,
) -> None:
    """Past its SLAs the task escalates, passes to the department manager, and after the
    policy's abandon days closes as expired: the difference stays recorded as unresolved, the
    run ends, and the next run does not reopen it."""
    system, bank = jobs.system, jobs.bank
    day = date(2031, 9, 2)
    inject_payout(bank, "payout-GHOST-3", "12.34")
    handle = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=day), reconciliation_workflow_id(day)
    )
    (task,) = await open_tasks(system, TaskKind.RECONCILIATION_DIFFERENCE)
    assert (await handle.result()).count == 1  # time skips through the SLAs
    with Session(system.engine) as s:
        closed = s.get(Task, task.id)
        assert closed is not None
        assert (closed.status, closed.candidate_role) == ("expired", "department_manager")
        run = s.get(ReconciliationRun, day)
        assert run is not None and run.status == "completed"
    (diff,) = differences(system)
    assert (diff.status, diff.resolved_by) == ("unresolved", None)

    nxt = day + timedelta(days=40)
    again = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=nxt), reconciliation_workflow_id(nxt)
    )
    assert (await again.result()).count == 0
    assert count_tasks(system, TaskKind.RECONCILIATION_DIFFERENCE) == 1


def inject_credit(bank: Any, key: str, amount: str) -> None:
    """A borrower's transfer into the pool account (executed at once by the bank)."""
    r = httpx.post(
        f"{bank.url}/v1/incoming",
        json={
            "amount": amount,
            "payer_account": "6222020200112233446",
            "payer_name": "张三丰",
            "payee_account": POOL_ACCOUNT,
            "reference": f"repayment {key}",
        },
        headers={"Idempotency-Key": key},
        timeout=10,
    )
    assert r.status_code == 201, r.text


async def test_credits_are_matched_to_the_repayments_on_record(jobs: Jobs) -> None:
    system, bank = jobs.system, jobs.bank
    inject_credit(bank, "PAY-77", "300.00")
    inject_credit(bank, "PAY-78", "450.00")
    earlier = datetime.now(UTC) - timedelta(hours=2)
    with Session(system.engine) as s:
        for ref, amount in (("PAY-77", "300.00"), ("PAY-78", "449.99"), ("PAY-79", "10.00")):
            s.add(
                Payment(
                    application_no="A20310101-REC001",
                    external_ref=ref,
                    amount=Decimal(amount),
                    paid_at=earlier,
                    recorded_by="ops",
                    allocation=[],
                    created_at=earlier,
                )
            )
        s.commit()
    day = date(2031, 11, 2)
    await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=day), reconciliation_workflow_id(day)
    )
    await open_tasks(system, TaskKind.RECONCILIATION_DIFFERENCE, 2)
    found = sorted(
        (d.key, d.bank_amount, d.record_amount, d.application_no) for d in differences(system)
    )
    assert found == [
        ("amount_mismatch/in/PAY-78", Decimal("450.00"), Decimal("449.99"), "A20310101-REC001"),
        ("record_only/in/PAY-79", None, Decimal("10.00"), "A20310101-REC001"),
    ]
    with Session(system.engine) as s:
        run = s.get(ReconciliationRun, day)
        assert run is not None
        assert (run.bank_movements, run.records, run.matched) == (2, 3, 1)


async def test_a_bank_down_after_the_retries_is_a_recorded_ending(jobs: Jobs) -> None:
    system = jobs.system
    system.settings.bank_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    day = date(2031, 10, 2)
    handle = await jobs.start(
        RECONCILIATION_WORKFLOW, DailyJobInput(as_of=day), reconciliation_workflow_id(day)
    )
    assert (await handle.result()).count == 0  # the workflow completes: nothing failed
    with Session(system.engine) as s:
        run = s.get(ReconciliationRun, day)
        assert run is not None
        assert (run.status, run.bank_movements) == ("bank_unavailable", 0)
        (event,) = s.exec(
            select(AuditEvent).where(AuditEvent.action == "reconciliation.bank_unavailable")
        ).all()
        assert event.detail is not None and "Connection refused" in str(event.detail["reason"])
    assert differences(system) == []


@workflow.defn(name="ReservesFundsForTest")
class ReservesFunds:
    """Stands for the payout workflow: it has just reserved funds and checks the pool."""

    @workflow.run
    async def run(self, key: str) -> DailyJobResult:
        return await check_liquidity_now("Asia/Shanghai", key)


async def test_a_workflow_that_reserved_funds_checks_liquidity_as_a_child(jobs: Jobs) -> None:
    system = jobs.system
    with Session(system.engine) as s:
        _empty_pool(s)
    queue = f"reserve-{uuid.uuid4()}"
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with Worker(
            system.client,
            task_queue=queue,
            workflows=[ReservesFunds, *WORKFLOWS],
            activities=build_activities(system.engine, system.settings, system.client),
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            wid = f"reserve-{uuid.uuid4()}"
            jobs.started.append(wid)
            result = await system.client.execute_workflow(
                ReservesFunds.run, "RSV-1", id=wid, task_queue=queue
            )
            alert = low_liquidity_workflow_id(result.as_of)  # the business date of the check
            jobs.started.append(alert)
            assert result.started == alert
            (task,) = await open_tasks(system, TaskKind.LOW_LIQUIDITY)
            assert task.workflow_id == alert
            await terminate_quietly(system.client, alert)
