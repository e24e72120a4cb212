"""The payout (payout-v1) on the time-skipping server with fake activities: tiered four-eyes,
the pre-check list, a payout waiting for funds, a bank rejection and a bank that stays down —
each a task or a recorded ending, never a failed workflow, and never two orders for one key."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import Stage
from domain.payout import order_key
from domain.policy import DEFAULT_POLICY
from domain.tasks import TaskKind, TaskStatus
from tests.workflows.fakes import Fast, fast_worker


def refusal_type(exc: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str | None:
    cause = exc.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def _requested(fast: Fast, no: str) -> str:
    """ops2 requests the payout; the authorization task it opens."""
    await fast.drive_to(no, Stage.DISBURSEMENT)
    await fast.decide(no, await fast.task_of(no, TaskKind.DISBURSEMENT), "approve", "ops2")
    return await fast.task_of(no, TaskKind.DISBURSEMENT_AUTHORIZATION)


async def test_four_eyes_the_checker_is_neither_the_maker_nor_the_intake_reviewer(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        auth = await _requested(fast, no)
        for who in ("ops2", "ops"):  # the maker; the intake reviewer
            with pytest.raises(WorkflowUpdateFailedError) as exc:
                await fast.decide(no, auth, "authorize", who)
            assert refusal_type(exc) == "MakerChecker"
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, auth, "authorize", "manager")  # not the task's role
        assert refusal_type(exc) == "Forbidden"
        assert fast.records.prechecks == []  # nothing checked or reserved before authorization
        result = await fast.decide(no, auth, "authorize", "ops3")
        # Recorded: the payout runs after the answer. 12,000 is under the 50,000 limit: no
        # manager; paid, in servicing.
        assert result.stage == Stage.DISBURSEMENT
        await fast.reaches(no, Stage.SERVICING)
        kinds = [t.kind for t in fast.records.tasks.values() if t.application_no == no]
        assert TaskKind.DISBURSEMENT_MANAGER_AUTHORIZATION not in kinds
        (check,) = fast.records.prechecks
        assert (check.requested_by, check.authorized_by) == ("ops2", ("ops3",))
        assert fast.records.bank_sends == [order_key(no, 1)]
        assert list(fast.records.disbursed) == [order_key(no, 1)]


async def test_above_the_limit_the_department_manager_authorizes_too(
    temporal_env: WorkflowEnvironment,
) -> None:
    policy = replace(DEFAULT_POLICY, disbursement_dual_limit=Decimal("10000.00"))
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination(policy)
        auth = await _requested(fast, no)
        assert (await fast.decide(no, auth, "authorize", "ops3")).stage == Stage.DISBURSEMENT
        manager = await fast.task_of(no, TaskKind.DISBURSEMENT_MANAGER_AUTHORIZATION)
        assert fast.records.bank_sends == []
        assert (await fast.decide(no, manager, "authorize", "manager")).stage == Stage.DISBURSEMENT
        await fast.reaches(no, Stage.SERVICING)
        (payout,) = fast.records.disbursed.values()
        assert payout.authorized_by == ("ops3", "manager")

        # A manager's refusal ends the application, recorded, with nothing sent to the bank.
        other = await fast.start_origination(policy)
        auth = await _requested(fast, other)
        await fast.decide(other, auth, "authorize", "ops3")
        manager = await fast.task_of(other, TaskKind.DISBURSEMENT_MANAGER_AUTHORIZATION)
        result = await fast.decide(other, manager, "reject", "manager", comment="too large")
        assert result.stage == Stage.REJECTED
        assert await fast.handle(other).result() == "REJECTED"
        assert order_key(other, 1) not in fast.records.bank_sends


async def test_a_payout_without_funds_waits_and_goes_on_after_a_top_up(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.funds = Decimal("5000.00")  # the loan pays out 12,000
        no = await fast.start_origination()
        auth = await _requested(fast, no)
        assert (await fast.decide(no, auth, "authorize", "ops3")).stage == Stage.DISBURSEMENT
        waiting = await fast.task_of(no, TaskKind.DISBURSEMENT_AWAITING_FUNDS)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == waiting)
        assert task.context is not None and task.context["amount"] == "12000.00"
        assert "funds_reserved" in task.context["reasons"][0]
        # Hours pass: re-checked on its timer, still short, still waiting, nothing sent.
        await temporal_env.sleep(timedelta(hours=3))
        assert await fast.stage(no) == Stage.DISBURSEMENT
        assert fast.records.bank_sends == []
        fast.records.funds = Decimal("100000.00")  # the manager's top-up
        await temporal_env.sleep(timedelta(hours=1, minutes=1))
        for _ in range(200):
            if await fast.stage(no) == Stage.SERVICING:
                break
            await temporal_env.sleep(timedelta(minutes=1))
        assert await fast.stage(no) == Stage.SERVICING
        assert fast.records.closed[waiting].status == TaskStatus.COMPLETED
        assert fast.records.bank_sends == [order_key(no, 1)]
        assert fast.records.reserved == {order_key(no, 1): Decimal("12000.00")}


async def test_a_bank_rejection_opens_a_task_and_a_retry_uses_a_new_key(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.bank_rejects = 1
        no = await fast.start_origination()
        auth = await _requested(fast, no)
        assert (await fast.decide(no, auth, "authorize", "ops3")).stage == Stage.DISBURSEMENT
        refused = await fast.task_of(no, TaskKind.DISBURSEMENT_REFUSED)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == refused)
        assert task.context is not None and "ACCOUNT_FROZEN" in task.context["refused"]
        first = order_key(no, 1)
        assert first in fast.records.released  # the rejected order's money is back
        assert (await fast.decide(no, refused, "retry", "ops2")).stage == Stage.DISBURSEMENT
        await fast.reaches(no, Stage.SERVICING)
        second = order_key(no, 2)
        assert second == f"disburse-{no}-2"
        assert fast.records.bank_sends == [first, second]
        assert list(fast.records.disbursed) == [second]


async def test_a_bank_that_stays_down_keeps_the_key_and_pays_once_on_retry(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.bank_down = 1
        no = await fast.start_origination()
        auth = await _requested(fast, no)
        assert (await fast.decide(no, auth, "authorize", "ops3")).stage == Stage.DISBURSEMENT
        refused = await fast.task_of(no, TaskKind.DISBURSEMENT_REFUSED)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == refused)
        assert task.context is not None and "could not be reached" in task.context["refused"]
        assert fast.records.released == {}  # the order may exist: the money stays reserved
        assert (await fast.decide(no, refused, "retry", "ops2")).stage == Stage.DISBURSEMENT
        await fast.reaches(no, Stage.SERVICING)
        key = order_key(no, 1)
        assert fast.records.bank_sends == [key, key]  # the same key again
        assert list(fast.records.disbursed) == [key]


async def test_rejecting_a_refused_payout_releases_its_reservation(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.bank_down = 1
        no = await fast.start_origination()
        auth = await _requested(fast, no)
        await fast.decide(no, auth, "authorize", "ops3")
        refused = await fast.task_of(no, TaskKind.DISBURSEMENT_REFUSED)
        result = await fast.decide(no, refused, "reject", "ops2", comment="give up")
        # Recorded; the bank is asked first whether it took the order after all.
        assert result.stage == Stage.DISBURSEMENT
        assert await fast.handle(no).result() == "REJECTED"
        assert order_key(no, 1) in fast.records.released
