"""A decision answers when it is recorded (decision-answers-when-recorded-v1, issue 13 §2): once
its task is closed and audited, with the stage the loan is moving to — before the next stage's
work (the offer recorded, the contract rendered), and with no timer started for the answer."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import Stage
from domain.tasks import TaskKind
from tests.workflows.fakes import TERMS, Fast, fast_worker
from tests.workflows.test_replay import check_and_maybe_record


def _activity_done(events: list[HistoryEvent], activity: str) -> int:
    """The index of the completion of the first ``activity`` scheduled."""
    scheduled = next(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity
    )
    return next(
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id == scheduled
    )


def _answer(events: list[HistoryEvent], update_id: str) -> tuple[int, int]:
    """The indexes of an update's acceptance and of its answer."""
    accepted = next(
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.protocol_instance_id == update_id
    )
    completed = next(
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
        and e.workflow_execution_update_completed_event_attributes.meta.update_id == update_id
    )
    return accepted, completed


async def _events(fast: Fast, no: str) -> list[Any]:
    return list((await fast.handle(no).fetch_history()).events)


async def test_a_decision_answers_once_recorded_with_the_stage_the_loan_moves_to(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.PRODUCT_MATCHING)

        # Product matching: the answer names OFFER_CONFIRMATION while the offer is still being
        # recorded (moving_to), and comes before that activity's completion.
        task_id = await fast.task_of(no, TaskKind.PRODUCT_MATCHING)
        result = await fast.decide(no, task_id, "approve", "pm", data=TERMS)
        assert result.stage == Stage.OFFER_CONFIRMATION

        # The offer: the answer is CONTRACT_SIGNING, before the contract is rendered.
        task_id = await fast.task_of(no, TaskKind.OFFER_CONFIRMATION)
        result = await fast.decide(no, task_id, "accept", "bo")
        assert result.stage == Stage.CONTRACT_SIGNING
        await fast.reaches(no, Stage.CONTRACT_SIGNING)
        for _ in range(500):  # the render goes on after the answer
            if (await fast.view(no)).contract is not None:
                break
            await asyncio.sleep(0.02)

        events = await _events(fast, no)
        updates = [
            e.workflow_execution_update_accepted_event_attributes.protocol_instance_id
            for e in events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        matching, offer = updates[-2], updates[-1]
        for update_id, next_work in ((matching, "record_offer"), (offer, "prepare_contract")):
            accepted, answered = _answer(events, update_id)
            # The task closed (its row and audit entry) before the answer ...
            closes = [
                i
                for i, e in enumerate(events[accepted:answered])
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            ]
            assert closes, "the task is closed before the answer"
            # ... the next stage's work after it, and no timer was started to answer.
            assert answered < _activity_done(events, next_work)
            assert not any(
                e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
                for e in events[accepted:answered]
            )
        # The new answer is guarded for running loans: the patch's marker is in the history.
        assert any(
            b"decision-answers-when-recorded-v1" in e.SerializeToString()
            for e in events
            if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        )
        await check_and_maybe_record(fast.client, f"loan-{no}", "answered_when_recorded")


async def test_the_last_authorization_answers_with_the_payout_under_way(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.DISBURSEMENT)
        task_id = await fast.task_of(no, TaskKind.DISBURSEMENT)
        assert (await fast.decide(no, task_id, "approve", "ops2")).stage == Stage.DISBURSEMENT
        task_id = await fast.task_of(no, TaskKind.DISBURSEMENT_AUTHORIZATION)
        result = await fast.decide(no, task_id, "authorize", "ops3")
        # Recorded: the payout (pre-check, bank order, booking) runs after the answer.
        assert result.stage == Stage.DISBURSEMENT
        await fast.reaches(no, Stage.SERVICING)
        assert len(fast.records.disbursed) == 1
        await check_and_maybe_record(fast.client, f"loan-{no}", "payout_answered_when_recorded")
