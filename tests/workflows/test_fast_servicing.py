"""Servicing on the time-skipping server with fake activities: calls beside the ledger, several
open tasks at once, and those tasks carried across continue-as-new."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.policy import DEFAULT_POLICY
from domain.tasks import TaskKind
from tests.workflows.fakes import fast_worker


async def test_two_open_tasks_survive_continue_as_new(temporal_env: WorkflowEnvironment) -> None:
    policy = replace(
        DEFAULT_POLICY,
        continue_as_new_after_events=100,
        task_abandon_days=120,
        sla_hours={
            **DEFAULT_POLICY.sla_hours,
            "follow_up_call": 24.0 * 60,
            "overdue_call": 24.0 * 60,
        },
    )
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(policy)
        handle = fast.handle(no)
        first_run = (await handle.describe()).run_id
        await temporal_env.sleep(timedelta(days=8))  # the follow-up call opens on day 7
        follow_up = await fast.task_of(no, TaskKind.FOLLOW_UP_CALL)
        await temporal_env.sleep(timedelta(days=25))  # installment 1 falls overdue: a call
        overdue = await fast.task_of(no, TaskKind.OVERDUE_CALL)
        assert {t.task_id for t in (await fast.view(no)).open_tasks} == {follow_up, overdue}

        await temporal_env.sleep(timedelta(days=20))  # daily refreshes: history grows
        assert (await handle.describe()).run_id != first_run
        view = await fast.view(no)
        assert {t.task_id for t in view.open_tasks} == {follow_up, overdue}

        # Both are still decidable in the new run, by customer service.
        await fast.decide(no, overdue, "promise_to_pay", "cs")
        answers = {
            "funds_use": "as_declared",
            "income_change": "unchanged",
            "repayment_plan": "on_track",
        }
        await fast.decide(no, follow_up, "reached", "cs", data=answers)
        assert (await fast.view(no)).open_tasks == ()
        assert fast.records.closed[overdue].decision == "promise_to_pay"
        assert fast.records.closed[follow_up].decided_by == "cs"
