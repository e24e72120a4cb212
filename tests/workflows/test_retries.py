"""A crash between the database commit and the activity's completion: Temporal retries the
activity, and the business keys make the retry find what the first attempt wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.payout import PayoutActivities
from activities.tasks import TaskActivities
from adapters.bank import HttpBank
from loanops.db import make_engine
from loanops.settings import Settings
from models.shapes import OpenTaskInput, RecordPayoutInput
from models.tables import AuditEvent, Disbursement, FundingMovement, Task
from tests.conftest import System, running_system
from tests.workflows.driving import drive_to, submit
from tests.workflows.test_timers import eventually

attempts: dict[str, list[int]] = {"open_task": [], "record_payout": []}


def crash_after_commit(engine: Engine, settings: Settings) -> dict[str, Callable[..., Any]]:
    """The real activities, made to fail on their first attempt AFTER their transaction commits
    (a worker dying before it reports back)."""
    tasks = TaskActivities(engine)
    payout = PayoutActivities(
        engine,
        HttpBank(settings.bank_url),
        payer_account=settings.bank_pool_account,
        callback_url=lambda: settings.bank_callback_url,
    )

    @activity.defn(name="open_task")
    def open_task(inp: OpenTaskInput) -> None:
        tasks.open_task(inp)
        attempts["open_task"].append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise RuntimeError("worker lost after the task row was committed")

    @activity.defn(name="record_payout")
    def record_payout(inp: RecordPayoutInput) -> None:
        payout.record_payout(inp)
        attempts["record_payout"].append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise RuntimeError("worker lost after the payout was recorded")

    return {"open_task": open_task, "record_payout": record_payout}


@pytest_asyncio.fixture
async def crashing_system(
    sqlite_url: str,
    temporal_env: WorkflowEnvironment,
    shared_bureau: Any,
    shared_sms: Any,
    fresh_bank: Any,
) -> AsyncIterator[System]:
    eng = make_engine(sqlite_url)
    for v in attempts.values():
        v.clear()
    try:
        async with running_system(
            eng,
            sqlite_url,
            temporal_env,
            bureau_url=shared_bureau.url,
            sms=shared_sms,
            bank=fresh_bank,
            replace=crash_after_commit,
        ) as s:
            yield s
    finally:
        eng.dispose()


async def test_retried_open_task_opens_no_second_task(crashing_system: System) -> None:
    system = crashing_system
    app_no = await submit(system)
    await eventually(lambda: 2 in attempts["open_task"], "the retry of open_task", within=30)
    with Session(system.engine) as s:
        tasks = s.exec(select(Task).where(Task.application_no == app_no)).all()
        opened = s.exec(
            select(AuditEvent).where(
                AuditEvent.application_no == app_no, AuditEvent.action == "intake_review.opened"
            )
        ).all()
    assert [t.kind for t in tasks] == ["intake_review"]
    assert len(opened) == 1
    assert attempts["open_task"][:2] == [1, 2]


async def test_retried_disbursement_pays_once(crashing_system: System) -> None:
    system = crashing_system
    app_no = await drive_to(system, "SERVICING")
    assert attempts["record_payout"] == [1, 2]
    with Session(system.engine) as s:
        payouts = s.exec(select(Disbursement).where(Disbursement.application_no == app_no)).all()
        consumed = s.exec(
            select(FundingMovement).where(
                FundingMovement.application_no == app_no, FundingMovement.kind == "payout"
            )
        ).all()
    assert len(payouts) == 1
    assert len(consumed) == 1  # the pool paid it out once
    assert [e["key"] for e in system.bank_ledger() if app_no in e["key"]] == [f"disburse-{app_no}"]
