"""Servicing on the time-skipping server with fake activities: calls beside the ledger, several
open tasks at once, and those tasks carried across continue-as-new."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.calendar import business_date, local_instant
from domain.identifiers import DECIDE_UPDATE, PAYMENT_UPDATE, STATE_QUERY, collections_workflow_id
from domain.policy import DEFAULT_POLICY
from domain.tasks import TaskKind
from models.shapes import DecisionRequest, DecisionResult, LoanView, PaymentRequest, PaymentResult
from tests.workflows.fakes import ROLES_OF, fast_worker

TZ = DEFAULT_POLICY.business_timezone


async def test_two_open_tasks_survive_continue_as_new(temporal_env: WorkflowEnvironment) -> None:
    """The follow-up call in servicing, and the overdue installment's collections episode (a
    child workflow since collections-ladder-v1) with its open call, survive servicing's
    continue-as-new: the new run still tells the episode when the loan is current again."""
    policy = replace(
        DEFAULT_POLICY,
        continue_as_new_after_events=100,
        task_abandon_days=120,
        sla_hours={
            **DEFAULT_POLICY.sla_hours,
            "follow_up_call": 24.0 * 60,
            "reminder_call": 24.0 * 60,
            "collection_call": 24.0 * 60,
        },
    )
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(policy)
        handle = fast.handle(no)
        first_run = (await handle.describe()).run_id
        await temporal_env.sleep(timedelta(days=8))  # the follow-up call opens on day 7
        follow_up = await fast.task_of(no, TaskKind.FOLLOW_UP_CALL)
        due = (await fast.view(no)).installments[0].due_date
        # Installment 1 falls overdue: its collections episode calls on DPD 3.
        await _sleep_until(temporal_env, local_instant(due + timedelta(days=4), time(10), TZ))
        episode = fast.client.get_workflow_handle(collections_workflow_id(no, 1))
        episode_run = (await episode.describe()).run_id
        call = await _task_in(episode, TaskKind.REMINDER_CALL)
        assert {t.task_id for t in (await fast.view(no)).open_tasks} == {follow_up}

        await temporal_env.sleep(timedelta(days=20))  # daily refreshes: history grows
        assert (await handle.describe()).run_id != first_run
        view = await fast.view(no)
        assert {t.task_id for t in view.open_tasks} == {follow_up}
        # The episode lives on (parent close policy ABANDON), its call superseded on DPD 8.
        assert (await episode.describe()).run_id == episode_run
        call = await _task_in(episode, TaskKind.COLLECTION_CALL)

        # Both are still decidable after the parent's continue-as-new.
        await _sleep_until(temporal_env, local_instant(due + timedelta(days=25), time(10), TZ))
        await episode.execute_update(
            DECIDE_UPDATE,
            DecisionRequest(call, "reached", "bo", ROLES_OF["bo"]),
            result_type=DecisionResult,
        )
        answers = {
            "funds_use": "as_declared",
            "income_change": "unchanged",
            "repayment_plan": "on_track",
        }
        await fast.decide(no, follow_up, "reached", "cs", data=answers)
        assert (await fast.view(no)).open_tasks == ()
        assert fast.records.closed[call].decision == "reached"
        assert fast.records.closed[follow_up].decided_by == "cs"

        # Paying what is overdue: the new run tells the episode, which ends.
        view = await fast.view(no)
        overdue = sum(
            (i.total_outstanding for i in view.installments if i.due_date < due + timedelta(1)),
            Decimal("0"),
        )
        now = await temporal_env.get_current_time()
        await handle.execute_update(
            PAYMENT_UPDATE,
            PaymentRequest(
                f"cure-{no}", overdue, now, business_date(now, TZ), "ops", roles=ROLES_OF["ops"]
            ),
            result_type=PaymentResult,
        )
        assert await episode.result() == "cured"


async def _sleep_until(env: WorkflowEnvironment, at: datetime) -> None:
    now = await env.get_current_time()
    if at > now:
        await env.sleep(at - now)


async def _task_in(handle: WorkflowHandle[Any, Any], kind: TaskKind) -> str:
    for _ in range(300):
        view = await handle.query(STATE_QUERY, result_type=LoanView)
        for t in view.open_tasks:
            if t.kind == kind:
                return t.task_id
        await asyncio.sleep(0.02)
    raise AssertionError(f"no open {kind.value} task in {handle.id}")
