"""The review sweep's Temporal Schedule on a real dev server (the time-skipping test server has
no schedules): created once, brought to the definition when it exists, daily at 01:00 business
time, starting ReviewSweepWorkflow on the worker's task queue, one run at a time."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from domain.identifiers import REVIEW_SWEEP_SCHEDULE, REVIEW_SWEEP_WORKFLOW
from loanops.processes import (
    Supervisor,
    find_temporal_binary,
    temporal_dev_server_command,
    wait_for_port,
)
from loanops.review_schedule import ensure_review_schedule, review_sweep_schedule
from loanops.settings import Settings
from loanops.temporal import connect_when_ready
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the supervisor is Linux-only")


def test_the_definition() -> None:
    settings = Settings(environment="test", temporal_task_queue="q-1")
    definition = review_sweep_schedule(settings)
    assert definition.id == REVIEW_SWEEP_SCHEDULE
    action = definition.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == (REVIEW_SWEEP_WORKFLOW, "q-1")
    (cal,) = definition.schedule.spec.calendars
    assert [r.start for r in cal.hour] == [1] and [r.start for r in cal.minute] == [0]
    assert definition.schedule.spec.time_zone_name == settings.business_timezone


def test_ensure_creates_then_updates_on_a_dev_server(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    argv = temporal_dev_server_command(
        binary=find_temporal_binary(),
        db_file=tmp_path / "temporal.db",
        port=port,
        ui_port=ui_port,
        search_attributes={"LoanStage": "Keyword"},
    )
    with Supervisor(sink=lambda _: None) as sup:
        sup.start(
            "temporal",
            argv,
            ready=lambda proc: wait_for_port("127.0.0.1", port, timeout=10, process=proc),
        )

        async def run() -> tuple[str, str, ScheduleOverlapPolicy]:
            client = await connect_when_ready(f"127.0.0.1:{port}")
            await ensure_review_schedule(client, Settings(environment="test"))
            # Again, on another task queue: the existing schedule is brought up to date.
            await ensure_review_schedule(
                client, Settings(environment="test", temporal_task_queue="loanops-2")
            )
            described = await client.get_schedule_handle(REVIEW_SWEEP_SCHEDULE).describe()
            action = described.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            return action.workflow, action.task_queue, described.schedule.policy.overlap

        assert asyncio.run(run()) == (
            REVIEW_SWEEP_WORKFLOW,
            "loanops-2",
            ScheduleOverlapPolicy.SKIP,
        )
        sup.stop(timeout=10)
