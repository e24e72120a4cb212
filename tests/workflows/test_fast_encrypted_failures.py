"""Failures are encrypted too (loanops.temporal.data_converter, issue 11 §4): an activity's
refusal whose message and reasons quote the borrower's bank card leaves neither readable in the
workflow's history, and the workflow still reads the reasons (the task shows them)."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import Stage
from domain.tasks import TaskKind
from loanops.temporal import data_converter
from tests.conftest import codec_settings
from tests.workflows.fakes import fast_worker

CARD = "6222020200112233446"
REASON = f"payee card {CARD} is not the contract's"


async def test_a_refusal_quoting_a_bank_card_is_unreadable_in_history(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.refusals.append((REASON,))
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.DISBURSEMENT)
        await fast.decide(no, await fast.task_of(no, TaskKind.DISBURSEMENT), "approve", "ops2")
        refused = await fast.task_of(no, TaskKind.DISBURSEMENT_REFUSED)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == refused)
        assert task.context == {
            "refused": "the disbursement pre-check failed",
            "reasons": [REASON],
        }

        history = await fast.handle(no).fetch_history()
        failed = [
            e.activity_task_failed_event_attributes.failure
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        ]
        assert failed
        raw = b"".join(e.SerializeToString() for e in history.events)
        assert CARD.encode() not in raw
        assert b"the disbursement pre-check failed" not in raw
        assert failed[0].message == "Encoded failure"

        # The codec reads it back whole.
        error = await data_converter(codec_settings()).decode_failure(failed[0])
        assert isinstance(error, ApplicationError)
        assert error.message == "the disbursement pre-check failed"
        assert error.details == (REASON,)
