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
        # The contract activity refuses (a business refusal, as an activity failure).
        fast.records.contract_refusals.append((REASON,))
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.OFFER_CONFIRMATION)
        offer = await fast.task_of(no, TaskKind.OFFER_CONFIRMATION)
        # Accepted and recorded: on to the contract, which is then refused.
        assert (await fast.decide(no, offer, "accept", "bo")).stage == Stage.CONTRACT_SIGNING
        assert await fast.handle(no).result() == Stage.REJECTED.value
        # The workflow read the reasons through the codec: the recorded ending quotes them.
        assert fast.records.stages_of(no)[-1].reason == REASON

        history = await fast.handle(no).fetch_history()
        failed = [
            e.activity_task_failed_event_attributes.failure
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        ]
        assert failed
        raw = b"".join(e.SerializeToString() for e in history.events)
        assert CARD.encode() not in raw
        assert b"the contract was refused" not in raw
        assert failed[0].message == "Encoded failure"

        # The codec reads it back whole.
        error = await data_converter(codec_settings()).decode_failure(failed[0])
        assert isinstance(error, ApplicationError)
        assert error.message == "the contract was refused"
        assert error.details == (REASON,)
