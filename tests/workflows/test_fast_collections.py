"""The collections ladder and the write-off on the time-skipping server with fake activities:
each rung at its DPD, promises kept and broken, the conduct rules, a dispute, the end of an
episode when the loan is current, and a write-off (maker-checker) followed by recoveries.

The test loan (fakes.Fast.start_servicing) is 12,000 over 3 months starting today; its
installment 1 falls due one month later. DPD n is the business day ``due + n``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.calendar import business_date, local_instant
from domain.identifiers import (
    DECIDE_UPDATE,
    PAYMENT_UPDATE,
    REVIEW_SIGNAL,
    STATE_QUERY,
    collections_workflow_id,
)
from domain.lifecycle import Stage
from domain.policy import DEFAULT_POLICY, LoanPolicy
from domain.tasks import TaskKind
from models.shapes import (
    CollectionStepInput,
    DecisionRequest,
    DecisionResult,
    LoanView,
    PaymentRequest,
    PaymentResult,
    ReviewRequest,
)
from tests.workflows.fakes import ROLES_OF, Fast, fast_worker
from tests.workflows.test_replay import check_and_maybe_record

TZ = DEFAULT_POLICY.business_timezone
# Long SLAs and no abandonment: tasks stay open unless the ladder closes them.
POLICY = replace(
    DEFAULT_POLICY,
    task_abandon_days=365,
    sla_hours={k.value: 24.0 * 200 for k in TaskKind},
)


async def _sleep_until(env: WorkflowEnvironment, at: datetime) -> None:
    now = await env.get_current_time()
    if at > now:
        await env.sleep(at - now)
    await asyncio.sleep(0.3)  # let the worker act on what woke up


async def _first_due(fast: Fast, no: str) -> date:
    return (await fast.view(no)).installments[0].due_date


async def _to_dpd(fast: Fast, no: str, dpd: int, at: time = time(10, 0)) -> None:
    """Move the clock to local ``at`` on the day installment 1 is ``dpd`` days past due."""
    due = await _first_due(fast, no)
    await _sleep_until(fast.env, local_instant(due + timedelta(days=dpd), at, TZ))


def _episode(no: str, n: int = 1) -> str:
    return collections_workflow_id(no, n)


async def _episode_tasks(fast: Fast, no: str, kind: TaskKind, n: int = 1) -> list[str]:
    """The episode's open tasks of ``kind`` once it shows any (empty after a wait)."""
    handle = fast.client.get_workflow_handle(_episode(no, n))
    for _ in range(200):
        view = await handle.query(STATE_QUERY, result_type=LoanView)
        found = [t.task_id for t in view.open_tasks if t.kind == kind]
        if found:
            return found
        await asyncio.sleep(0.03)
    return []


async def _episode_task(fast: Fast, no: str, kind: TaskKind, n: int = 1) -> str:
    found = await _episode_tasks(fast, no, kind, n)
    assert found, f"no open {kind.value} task in episode {n} of {no}"
    return found[-1]


async def _decide(
    fast: Fast, no: str, task_id: str, decision: str, user: str, n: int = 1, **data: Any
) -> DecisionResult:
    req = DecisionRequest(task_id, decision, user, ROLES_OF[user], data=data or None)
    handle = fast.client.get_workflow_handle(_episode(no, n))
    return await handle.execute_update(DECIDE_UPDATE, req, result_type=DecisionResult)


async def _refused(
    fast: Fast, no: str, task_id: str, decision: str, user: str, **data: Any
) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await _decide(fast, no, task_id, decision, user, **data)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def _pay(fast: Fast, no: str, amount: Decimal, ref: str) -> PaymentResult:
    now = await fast.env.get_current_time()
    return await fast.handle(no).execute_update(
        PAYMENT_UPDATE,
        PaymentRequest(
            external_ref=ref,
            amount=amount,
            paid_at=now,
            paid_on=business_date(now, TZ),
            recorded_by="ops",
            roles=ROLES_OF["ops"],
        ),
        result_type=PaymentResult,
    )


def _log(fast: Fast, no: str, **match: Any) -> list[CollectionStepInput]:
    return [
        s
        for s in fast.records.collections_log(no)
        if all(getattr(s, k) == v for k, v in match.items())
    ]


async def _logged(fast: Fast, no: str, **match: Any) -> CollectionStepInput:
    for _ in range(200):
        found = _log(fast, no, **match)
        if found:
            return found[-1]
        await asyncio.sleep(0.03)
    raise AssertionError(f"nothing logged like {match}: {fast.records.collections_log(no)}")


async def test_each_rung_fires_at_its_dpd_with_the_rule_it_applied(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(POLICY)
        await _to_dpd(fast, no, 92, at=time(1, 0))
        ladder = POLICY.collection_ladder
        for step, dpd in ladder.items():
            entry = await _logged(fast, no, step=step, outcome="queued" if dpd == 1 else "opened")
            assert entry.days_past_due == dpd, step
            assert (
                entry.rule == f"collection_ladder.{step}: at {dpd} days past due (loan policy v1)"
            )
        # The SMS step queues the collections notice; each later step opened its task.
        assert _log(fast, no, step="sms_notice")[0].sms_template == "collections_notice"
        opened = {t.kind for t in fast.records.tasks.values() if t.application_no == no} & set(
            TaskKind
        )
        assert {
            TaskKind.REMINDER_CALL,
            TaskKind.COLLECTION_CALL,
            TaskKind.FIELD_VISIT,
            TaskKind.LEGAL_REVIEW,
            TaskKind.WRITE_OFF_PROPOSAL,
        } <= opened
        assert TaskKind.OVERDUE_CALL not in opened  # the ladder replaces the single call
        # Each task row names the episode deciding it; a newer call superseded the older one.
        for t in fast.records.tasks.values():
            if t.application_no == no and t.kind != TaskKind.FOLLOW_UP_CALL:
                assert t.workflow_id == _episode(no)
        assert _log(fast, no, step="reminder_call", outcome="cancelled")
        assert _log(fast, no, step="collection_call", outcome="cancelled")
        # Only the latest contact step is open beside the legal review and the proposal.
        assert await _episode_tasks(fast, no, TaskKind.REMINDER_CALL) == []


async def test_a_broken_then_a_kept_promise(temporal_env: WorkflowEnvironment) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(POLICY)
        await _to_dpd(fast, no, 3)
        call = await _episode_task(fast, no, TaskKind.REMINDER_CALL)
        due = await _first_due(fast, no)
        promised_on = due + timedelta(days=5)
        await _decide(
            fast,
            no,
            call,
            "promise_to_pay",
            "cs",
            promise_amount="500.00",
            promise_date=promised_on.isoformat(),
        )
        # Nothing paid by DPD 5: the promise is broken the next day; the ladder resumes.
        await _to_dpd(fast, no, 6)
        broken = await _logged(fast, no, channel="promise")
        assert broken.outcome == "promise_broken"
        assert broken.promise_amount == Decimal("500.00")
        assert broken.promise_date == promised_on

        await _to_dpd(fast, no, 8)
        call = await _episode_task(fast, no, TaskKind.COLLECTION_CALL)
        await _decide(
            fast,
            no,
            call,
            "promise_to_pay",
            "bo",
            promise_amount="600.00",
            promise_date=(due + timedelta(days=10)).isoformat(),
        )
        await _to_dpd(fast, no, 9)
        await _pay(fast, no, Decimal("600.00"), f"promise-{no}")  # less than the overdue
        await _to_dpd(fast, no, 11)
        outcomes = [s.outcome for s in _log(fast, no, channel="promise")]
        assert outcomes == ["promise_broken", "promise_kept"]
        # While a promise waits no step fires: nothing between DPD 8 and the check.
        assert not _log(fast, no, step="field_visit")


async def test_conduct_rules_refuse_an_attempt_with_the_rule_named(
    temporal_env: WorkflowEnvironment,
) -> None:
    policy = replace(POLICY, collection_max_contacts_per_day=2)
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(policy)
        await _to_dpd(fast, no, 3, at=time(22, 30))  # after the window closes (21:00)
        call = await _episode_task(fast, no, TaskKind.REMINDER_CALL)
        late = await _refused(fast, no, call, "unreachable", "cs")
        assert late.type == "ConductRule"
        assert "contact_window" in late.message and "08:00 and 21:00" in late.message

        await _to_dpd(fast, no, 4, at=time(9, 0))
        third_party = await _refused(fast, no, call, "reached", "cs", spoke_with="neighbour")
        assert third_party.type == "InvalidData"
        assert "no_third_party" in third_party.message

        await _decide(fast, no, call, "unreachable", "cs")
        second = await _episode_tasks(fast, no, TaskKind.REMINDER_CALL)
        assert second and second[-1] != call
        await _decide(fast, no, second[-1], "unreachable", "cs")
        third = (await _episode_tasks(fast, no, TaskKind.REMINDER_CALL))[-1]
        limit = await _refused(fast, no, third, "reached", "cs")
        assert limit.type == "ConductRule"
        assert "daily_contact_limit" in limit.message and "at most 2" in limit.message
        # The refused attempts wrote nothing: two attempts logged, both unreachable.
        assert [s.outcome for s in _log(fast, no, channel="phone")] == [
            "unreachable",
            "unreachable",
        ]
        # The next day the limit starts again.
        await _to_dpd(fast, no, 5, at=time(9, 0))
        await _decide(fast, no, third, "reached", "cs")
        assert (await _logged(fast, no, channel="phone", outcome="reached")).actor == "cs"


async def test_a_dispute_opens_a_customer_service_task_and_pauses_the_ladder(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(POLICY)
        await _to_dpd(fast, no, 3)
        call = await _episode_task(fast, no, TaskKind.REMINDER_CALL)
        await _decide(fast, no, call, "dispute", "cs", note="says installment 1 was paid in cash")
        dispute = await _episode_task(fast, no, TaskKind.COLLECTION_DISPUTE)
        opened = fast.records.tasks[dispute]
        assert opened.candidate_role.value == "customer_service"
        assert opened.context is not None and opened.context["raised_on"] == "reminder_call"
        await _to_dpd(fast, no, 9)
        assert not _log(fast, no, step="collection_call")  # paused while disputed
        await _decide(fast, no, dispute, "resolved", "cs")
        opened_call = await _logged(fast, no, step="collection_call", outcome="opened")
        assert opened_call.days_past_due == 9  # fired late, when the ladder resumed


async def test_the_episode_ends_when_the_loan_is_paid_current(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(POLICY)
        await _to_dpd(fast, no, 4)
        call = await _episode_task(fast, no, TaskKind.REMINDER_CALL)
        overdue = (await fast.view(no)).installments[0]
        await _pay(fast, no, overdue.total_outstanding, f"cure-{no}")
        episode = fast.client.get_workflow_handle(_episode(no))
        assert await episode.result() == "cured"
        assert fast.records.closed[call].status.value == "cancelled"
        ended = await _logged(fast, no, step="episode")
        assert ended.outcome == "cured"
        # Installment 2 falls overdue: a second episode, starting from its first step.
        second_due = (await fast.view(no)).installments[1].due_date
        await _sleep_until(fast.env, local_instant(second_due + timedelta(days=1), time(1), TZ))
        step = await _logged(fast, no, episode=2, step="sms_notice")
        assert step.workflow_id == _episode(no, 2)


async def test_write_off_maker_checker_then_recoveries(temporal_env: WorkflowEnvironment) -> None:
    ladder = {
        "sms_notice": 1,
        "reminder_call": 2,
        "collection_call": 3,
        "field_visit": 4,
        "legal_review": 5,
        "write_off_proposal": 6,
    }
    policy: LoanPolicy = replace(POLICY, collection_ladder=ladder)
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(policy)
        await _to_dpd(fast, no, 6)
        legal = await _episode_task(fast, no, TaskKind.LEGAL_REVIEW)
        await _decide(fast, no, legal, "sue", "manager")
        assert (await _logged(fast, no, channel="legal")).outcome == "sue"
        proposal = await _episode_task(fast, no, TaskKind.WRITE_OFF_PROPOSAL)
        await _decide(fast, no, proposal, "propose", "boss")
        approval = await _episode_task(fast, no, TaskKind.WRITE_OFF_APPROVAL)
        refused = await _refused(fast, no, approval, "approve", "boss")
        assert refused.type == "MakerChecker"
        await _decide(fast, no, approval, "approve", "manager")

        for _ in range(200):
            if await fast.stage(no) == Stage.WRITTEN_OFF:
                break
            await asyncio.sleep(0.03)
        assert await fast.stage(no) == Stage.WRITTEN_OFF
        assert await fast.client.get_workflow_handle(_episode(no)).result() == "written_off"
        written = fast.records.write_offs[no]
        assert (written.approval.proposed_by, written.approval.approved_by) == ("boss", "manager")
        view = await fast.view(no)
        state = written.state
        assert state.principal == Decimal("12000.00")  # nothing was paid
        assert state.interest > 0 and state.penalty > 0 and state.fees == 0
        assert state.total == sum((i.total_outstanding for i in view.installments), Decimal("0"))

        # Weeks later: a recovery, allocated by the ledger (penalties stopped at write-off).
        await _sleep_until(fast.env, await fast.env.get_current_time() + timedelta(days=20))
        result = await _pay(fast, no, Decimal("1000.00"), f"rec1-{no}")
        assert result.stage == Stage.WRITTEN_OFF
        assert sum((line.amount for line in result.lines), Decimal("0")) == Decimal("1000.00")
        assert fast.records.recoveries[f"rec1-{no}"].recovered_total == Decimal("1000.00")
        assert fast.records.payments[f"rec1-{no}"].lines == result.lines
        # Recovering the rest settles the loan.
        rest = state.total - Decimal("1000.00")
        final = await _pay(fast, no, rest, f"rec2-{no}")
        # The last fen recovered: operations confirms the settlement (settlement-confirmation-v1).
        assert final.stage == Stage.WRITTEN_OFF
        assert fast.records.recoveries[f"rec2-{no}"].recovered_total == state.total
        await fast.confirm_settlement(no)
        assert fast.records.stage_names(no)[-2:] == ["WRITTEN_OFF", "SETTLED"]
        assert no in fast.records.certificates
        # Recorded for the replay tests: a written-off loan (write-off-v1) and its episode.
        await check_and_maybe_record(fast.client, f"loan-{no}", "written_off_then_recovered")
        await check_and_maybe_record(fast.client, _episode(no), "collections_episode_written_off")


async def test_an_episode_continues_as_new_carrying_its_steps_and_tasks(
    temporal_env: WorkflowEnvironment,
) -> None:
    policy = replace(
        DEFAULT_POLICY,
        continue_as_new_after_events=100,
        task_abandon_days=365,
        sla_hours={**DEFAULT_POLICY.sla_hours, "write_off_proposal": 24.0 * 30},
    )
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(policy)
        await _to_dpd(fast, no, 2)
        episode = fast.client.get_workflow_handle(_episode(no))
        first_run = (await episode.describe()).run_id
        await _to_dpd(fast, no, 92)
        proposal = await _episode_task(fast, no, TaskKind.WRITE_OFF_PROPOSAL)
        assert (await episode.describe()).run_id != first_run
        # Each step fired once across the runs; the carried task is still decidable.
        for step in policy.collection_ladder:
            fired = "queued" if step == "sms_notice" else "opened"
            assert len(_log(fast, no, step=step, outcome=fired)) == 1, step
        await _decide(fast, no, proposal, "propose", "risk")
        await _episode_task(fast, no, TaskKind.WRITE_OFF_APPROVAL)


async def test_a_second_episode_opens_tasks_with_new_ids(
    temporal_env: WorkflowEnvironment,
) -> None:
    """Episode 2's reminder call is a new task (collections-episode-task-ids-v1): before, it
    took the id of episode 1's, so its row was never written and nobody saw it."""
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(POLICY)
        await _to_dpd(fast, no, 4)
        first = await _episode_task(fast, no, TaskKind.REMINDER_CALL)
        await _decide(fast, no, first, "reached", "cs")
        overdue = (await fast.view(no)).installments[0]
        await _pay(fast, no, overdue.total_outstanding, f"cure-{no}")
        assert await fast.client.get_workflow_handle(_episode(no)).result() == "cured"
        second_due = (await fast.view(no)).installments[1].due_date
        await _sleep_until(fast.env, local_instant(second_due + timedelta(days=4), time(10), TZ))
        second = await _episode_task(fast, no, TaskKind.REMINDER_CALL, n=2)
        assert second != first
        opened = [t for t in fast.records.open_tasks(no) if t.task_id == second]
        assert opened and opened[0].workflow_id == _episode(no, 2)
        # Recorded for the replay tests: a second episode (collections-episode-task-ids-v1).
        await check_and_maybe_record(fast.client, _episode(no, 2), "collections_second_episode")


async def test_a_review_that_accelerates_collection_takes_the_next_rung_now(
    temporal_env: WorkflowEnvironment,
) -> None:
    """A post-loan review's accelerate_collection (aftercare) moves the running episode up a
    rung at once: the reminder call (its rung: DPD 3) opens on DPD 1, logged with its DPD."""
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing(POLICY)
        await _to_dpd(fast, no, 1)
        await _logged(fast, no, step="sms_notice", outcome="queued")
        assert await _episode_tasks(fast, no, TaskKind.REMINDER_CALL) == []
        await fast.handle(no).signal(REVIEW_SIGNAL, ReviewRequest("periodic/acc", "periodic"))
        for _ in range(300):
            if (no, "periodic/acc") in fast.records.reviews_opened:
                break
            await asyncio.sleep(0.02)
        review = fast.records.reviews_opened[(no, "periodic/acc")].task_id
        await fast.decide(
            no, review, "accelerate_collection", "risk", data={"reason": "late elsewhere"}
        )
        call = await _episode_task(fast, no, TaskKind.REMINDER_CALL)
        entry = await _logged(fast, no, step="reminder_call", outcome="opened")
        assert entry.days_past_due == 1  # brought forward from DPD 3
        assert call
        # Only one rung came forward: the collection call (DPD 8) waits for its day.
        assert await _episode_tasks(fast, no, TaskKind.COLLECTION_CALL) == []
        await check_and_maybe_record(fast.client, f"loan-{no}", "collection_accelerated")
