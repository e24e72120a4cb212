"""Rendering off the workflow worker (issue 13): every activity that renders a document (the
contract, the signing record, the risk report, the settlement certificate) runs on the render
queue of the loan's task queue, served by the render worker, never on the loans' own queue."""

from __future__ import annotations

from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from domain.identifiers import render_queue_of
from domain.lifecycle import Stage
from tests.workflows.fakes import fast_worker
from worker import RENDER_ACTIVITIES


async def test_every_render_of_a_loan_runs_on_the_render_queue(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.SERVICING)
        view = await fast.view(no)
        total = sum((i.total_outstanding for i in view.installments), Decimal("0"))
        assert view.start_date is not None
        await fast.pay(no, f"all-{no}", total, view.start_date)
        await fast.confirm_settlement(no)

        assert fast.records.certificates[no].application_no == no
        assert fast.records.render_queues == {
            name: {render_queue_of(fast.task_queue)} for name in RENDER_ACTIVITIES
        }


def test_the_render_queue_is_the_loans_queue_with_render() -> None:
    assert render_queue_of("loanops") == "loanops-render"
