"""Slow Temporal calls cannot starve the API (issue 13 §6): at most ``api_temporal_calls``
threads wait on Temporal, the next call is refused at once (503, Retry-After), the database-only
routes keep their threads, and /healthz and /readyz answer on the event loop even when every
thread of the blocking routes is taken.

The slow path is real: the loan's workflow runs on a task queue whose worker is paused (no
worker polls it), so every decision sent to it waits in Temporal until the workflow ends."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import httpx
from sqlmodel import Session
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from loanops.db import make_engine
from loanops.settings import Settings
from models.tables import Task
from tests.api.test_outages import _loan_row, _token, dev_server  # noqa: F401 (a fixture)
from tests.conftest import serve_api

THREADS = 6
TEMPORAL_CALLS = 4


def _open_risk_tasks(url: str, application_no: str, n: int) -> list[str]:
    engine = make_engine(url)
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(n)]
    with Session(engine) as s:
        for task_id in ids:
            s.add(
                Task(
                    id=task_id,
                    application_no=application_no,
                    kind="risk_review",
                    candidate_role="risk_manager",
                    due_at=now + timedelta(days=1),
                    created_at=now,
                )
            )
        s.commit()
    engine.dispose()
    return [str(i) for i in ids]


async def test_slow_temporal_calls_leave_health_and_database_routes_answering(
    dev_server: WorkflowEnvironment,  # noqa: F811
    sqlite_url: str,
) -> None:
    paused = f"paused-{uuid.uuid4()}"  # no worker ever polls it
    settings = Settings(
        environment="test",
        database_url=sqlite_url,
        temporal_address=dev_server.client.service_client.config.target_host,
        temporal_task_queue=paused,
        api_threads=THREADS,
        api_temporal_calls=TEMPORAL_CALLS,
    )
    application_no = "A20261129-SLOWWF"
    await asyncio.to_thread(_loan_row, sqlite_url, application_no)
    task_ids = await asyncio.to_thread(
        _open_risk_tasks, sqlite_url, application_no, TEMPORAL_CALLS + 1
    )
    handle = await dev_server.client.start_workflow(
        "IdleForReadiness", id=f"loan-{application_no}", task_queue=paused
    )
    risk = _token(settings, "risk", ("risk_manager",))
    engine = make_engine(sqlite_url)
    app = create_app(settings, engine=engine, temporal_client=dev_server.client)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=TEMPORAL_CALLS + 4) as clients:
        async with serve_api(app) as base:

            def call(method: str, path: str, **kw: object) -> httpx.Response:
                return httpx.request(method, f"{base}{path}", timeout=120, **kw)  # type: ignore[arg-type]

            async def request(method: str, path: str, **kw: object) -> httpx.Response:
                return await loop.run_in_executor(clients, lambda: call(method, path, **kw))

            def decide(task_id: str) -> asyncio.Future[httpx.Response]:
                return loop.run_in_executor(
                    clients,
                    lambda: call(
                        "POST",
                        f"/api/v1/tasks/{task_id}/decision",
                        json={"decision": "approve", "comment": "ok"},
                        headers=risk,
                    ),
                )

            threads = anyio.to_thread.current_default_thread_limiter()
            assert threads.total_tokens == THREADS  # settings.api_threads

            # As many decisions as the API lets wait on Temporal: each takes a thread and waits.
            pending = [decide(t) for t in task_ids[:TEMPORAL_CALLS]]
            gateway = app.state.temporal
            for _ in range(6000):  # until all of them are inside Temporal (a bound, not a clock)
                if gateway.in_flight == TEMPORAL_CALLS:
                    break
                assert not any(f.done() for f in pending), [f.result().text for f in pending]
                await asyncio.sleep(0.01)
            assert gateway.in_flight == TEMPORAL_CALLS

            # One more is refused at once, naming why; it takes no thread from the others.
            r = await decide(task_ids[TEMPORAL_CALLS])
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) > 0
            assert f"all {TEMPORAL_CALLS} calls the API allows are under way" in r.text

            # Meanwhile liveness, readiness and a database-only route (the inbox) answer.
            r = await request("GET", "/healthz")
            assert (r.status_code, r.json()) == (200, {"status": "ok"})
            r = await request("GET", "/readyz")
            assert r.json()["database"] == "ok" and r.json()["temporal"] == "ok"
            assert "no worker polling" in r.json()["worker"]  # the paused worker, named
            r = await request(
                "GET", "/api/v1/tasks", params={"application_no": application_no}, headers=risk
            )
            assert r.status_code == 200, r.text
            assert len(r.json()["items"]) == TEMPORAL_CALLS + 1  # none of them decided

            # Every thread of the blocking routes taken: /healthz and /readyz still answer.
            borrowers = [object() for _ in range(int(threads.available_tokens))]
            for b in borrowers:
                await threads.acquire_on_behalf_of(b)
            try:
                assert threads.available_tokens == 0
                r = await request("GET", "/healthz")
                assert r.status_code == 200, r.text
                r = await request("GET", "/readyz")
                assert r.json()["database"] == "ok", r.text
            finally:
                for b in borrowers:
                    threads.release_on_behalf_of(b)

            # All that while, the decisions were still waiting on the paused worker.
            assert not any(f.done() for f in pending)
            assert gateway.in_flight == TEMPORAL_CALLS
            await handle.terminate("test finished")
            answers = await asyncio.gather(*pending)
            assert all(a.status_code != 200 for a in answers), [a.text for a in answers]
            assert gateway.in_flight == 0
            desc = await handle.describe()
            assert desc.status == WorkflowExecutionStatus.TERMINATED
    engine.dispose()
