"""Payment reversal and settlement confirmation in the real servicing workflow, on the
time-skipping server with fake activities (servicing starts today: 12,000.00 over 3 months at
9.6 %, equal installments)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.allocation import balances_from_schedule
from domain.calendar import business_date
from domain.lifecycle import Stage
from domain.penalty import accrue_penalties
from domain.policy import DEFAULT_POLICY
from domain.tasks import TaskKind
from models.shapes import LoanView
from tests.workflows.fakes import Fast, fast_worker
from tests.workflows.test_replay import check_and_maybe_record


async def _refused(call: object, kind: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await call  # type: ignore[misc]
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == kind, cause
    return str(cause.message)


async def _until(fast: Fast, no: str, what: str, ready: object) -> LoanView:
    for _ in range(500):
        view = await fast.view(no)
        if ready(view):  # type: ignore[operator]
            return view
        await fast.env.sleep(timedelta(seconds=1))
    raise AssertionError(f"{no}: {what} never happened")


async def test_a_reversal_makes_a_paid_installment_overdue_again(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing()
        view = await fast.view(no)
        start = view.start_date
        assert start is not None and view.offer is not None
        first = view.installments[0]
        paid = await fast.pay(no, f"p1-{no}", first.total_outstanding, start)
        assert paid.stage == Stage.SERVICING
        # Past installment 1's due date: paid, so nothing falls overdue.
        await temporal_env.sleep(timedelta(days=40))
        view = await fast.view(no)
        assert view.installments[0].is_paid
        assert not any(e.event == "overdue" for e in fast.records.events)

        ticket = await fast.request_reversal(no, f"p1-{no}", "ops")
        again = await fast.request_reversal(no, f"p1-{no}", "ops")
        assert again.duplicate and again.task_id == ticket.task_id  # one task
        reversals = [
            t.task_id for t in fast.records.open_tasks(no) if t.kind == TaskKind.PAYMENT_REVERSAL
        ]
        assert reversals == [ticket.task_id]
        task = fast.records.tasks[ticket.task_id]
        assert task.kind == TaskKind.PAYMENT_REVERSAL and task.excluded == ("ops",)
        assert task.context is not None and task.context["reason"] == "退票：余额不足"
        # Maker-checker: the requester may not approve.
        await _refused(fast.decide(no, ticket.task_id, "approve", "ops"), "MakerChecker")
        await fast.decide(no, ticket.task_id, "approve", "ops2")

        view = await _until(
            fast,
            no,
            "the installment marked overdue again (the collections ladder starts)",
            lambda v: any(
                e.event == "overdue" and e.application_no == no for e in fast.records.events
            ),
        )
        assert view.offer is not None
        today = business_date(await temporal_env.get_current_time(), view.policy.business_timezone)
        recorded = fast.records.reversals[f"p1-{no}"]
        assert recorded.approved_by == "ops2" and recorded.requested_by == "ops"
        # The ledger is the schedule as if nothing had been paid, penalties accrued to today.
        expected = accrue_penalties(
            installments=balances_from_schedule(view.offer.terms.schedule(start)),
            as_of=today,
            annual_rate=view.offer.terms.annual_rate,
            policy=view.offer.penalty(view.policy),
            max_annual_rate=view.offer.rate_cap,
        )
        assert view.installments[0] == expected[0]
        assert view.installments[0].penalty_accrued > 0
        assert not view.installments[0].is_paid
        overdue = [e for e in fast.records.events if e.event == "overdue"]
        assert [e.installment for e in overdue] == [1]
        # Reversing it twice is refused.
        message = await _refused(fast.request_reversal(no, f"p1-{no}", "ops"), "AlreadyReversed")
        assert "already reversed" in message
        # Recorded for the replay tests: a loan with a reversal (payment-reversal-v1).
        await check_and_maybe_record(fast.client, f"loan-{no}", "reversed_payment")


async def test_the_settlement_waits_for_its_confirmation_and_a_pending_reversal(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing()
        view = await fast.view(no)
        assert view.start_date is not None
        total = sum((i.total_outstanding for i in view.installments), Decimal("0"))
        result = await fast.pay(no, f"all-{no}", total, view.start_date)
        assert result.stage == Stage.SERVICING  # the last fen is paid; not settled yet
        task_id = await fast.task_of(no, TaskKind.SETTLEMENT_CONFIRMATION)
        context = fast.records.tasks[task_id].context
        assert context is not None
        assert context["total_paid"] == str(total) and context["outstanding"] == "0.00"
        assert context["principal_paid"] == "12000.00" and context["reversal_pending"] is False
        assert no not in fast.records.settled

        # A hold needs its reason; then a new task opens a day later.
        await _refused(fast.decide(no, task_id, "hold", "ops"), "InvalidData")
        await fast.decide(no, task_id, "hold", "ops", comment="末笔款项未到账")
        assert fast.records.closed[task_id].decision == "hold"
        await temporal_env.sleep(timedelta(days=1, hours=1))
        second = await fast.task_of(no, TaskKind.SETTLEMENT_CONFIRMATION)
        assert second != task_id

        # A reversal requested meanwhile blocks the confirmation until it is decided.
        ticket = await fast.request_reversal(no, f"all-{no}", "ops")
        message = await _refused(fast.decide(no, second, "confirm", "ops"), "WrongStage")
        assert "reversal is pending" in message
        await fast.decide(no, ticket.task_id, "reject", "ops2")
        await fast.confirm_settlement(no, "ops2")
        assert fast.records.settled[no].credit == Decimal("0")
        assert no in fast.records.certificates
        archive = fast.records.archives[no]
        assert archive.retain_until == archive.settled_on.replace(year=archive.settled_on.year + 5)
        assert no not in fast.records.reversals
        stages = fast.records.stage_names(no)
        assert stages[-1] == Stage.SETTLED.value


async def test_a_reversal_in_the_confirmation_window_reopens_the_loan(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing()
        view = await fast.view(no)
        assert view.start_date is not None
        total = sum((i.total_outstanding for i in view.installments), Decimal("0"))
        await fast.pay(no, f"all-{no}", total, view.start_date)
        confirmation = await fast.task_of(no, TaskKind.SETTLEMENT_CONFIRMATION)
        ticket = await fast.request_reversal(no, f"all-{no}", "ops2")
        await fast.decide(no, ticket.task_id, "approve", "ops")

        view = await _until(fast, no, "the confirmation is cancelled", lambda v: not v.open_tasks)
        assert fast.records.closed[confirmation].status.value == "cancelled"
        assert view.stage == Stage.SERVICING
        assert all(not i.is_paid for i in view.installments)
        assert sum((i.total_outstanding for i in view.installments), Decimal("0")) == total
        assert no not in fast.records.settled
        # Paid again: a new confirmation, and the loan settles.
        await fast.pay(no, f"again-{no}", total, view.start_date)  # type: ignore[arg-type]
        await fast.confirm_settlement(no)
        assert fast.records.archives[no].application_no == no


async def test_a_pending_reversal_survives_continue_as_new(
    temporal_env: WorkflowEnvironment,
) -> None:
    policy = replace(
        DEFAULT_POLICY,
        continue_as_new_after_events=100,
        task_abandon_days=150,
        sla_hours={**DEFAULT_POLICY.sla_hours, "payment_reversal": 24.0 * 100},
    )
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(policy)
        handle = fast.handle(no)
        first_run = (await handle.describe()).run_id
        view = await fast.view(no)
        assert view.start_date is not None
        await fast.pay(no, f"p1-{no}", view.installments[0].total_outstanding, view.start_date)
        ticket = await fast.request_reversal(no, f"p1-{no}", "ops")
        # Installment 2 falls overdue, daily refreshes follow: the history grows past 100.
        await temporal_env.sleep(timedelta(days=80))
        assert (await handle.describe()).run_id != first_run
        assert ticket.task_id in {t.task_id for t in (await fast.view(no)).open_tasks}

        await fast.decide(no, ticket.task_id, "approve", "ops2")
        view = await _until(fast, no, "the reversal", lambda v: not v.installments[0].is_paid)
        assert fast.records.reversals[f"p1-{no}"].approved_by == "ops2"
        assert view.installments[0].penalty_accrued > 0
