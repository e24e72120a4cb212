"""Dependencies down (issue 12): /healthz says the process is alive and nothing more; /readyz
names the database, Temporal or the worker that does not answer; every request that needs a
dependency that is down answers 503 with Retry-After — never a 500 — and a loan whose worker is
down is told apart from a loan whose workflow ended."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.testclient import TestClient
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from loanops.db import make_engine
from loanops.processes import find_temporal_binary
from loanops.security import create_access_token, hash_password
from loanops.seed import seed_demo_users
from loanops.settings import Settings
from loanops.temporal import data_converter
from models.tables import Application, Borrower
from tests.api.idle_workflow import IdleWorkflow
from tests.conftest import DEMO_PASSWORD, codec_settings, free_port, serve_api

URL_OF_A_STOPPED_DATABASE = "postgresql+psycopg://loanops:x@127.0.0.1:{port}/loanops"


def _token(
    settings: Settings, username: str = "manager", roles: tuple[str, ...] = ("department_manager",)
) -> dict[str, str]:
    token = create_access_token(
        subject=username, roles=list(roles), secret=settings.secret_key, minutes=5
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def nothing_up() -> Iterator[tuple[TestClient, Settings]]:
    """The API with its database and Temporal both stopped (nothing listens on their ports)."""
    settings = Settings(
        environment="test",
        database_url=URL_OF_A_STOPPED_DATABASE.format(port=free_port()),
        temporal_address=f"127.0.0.1:{free_port()}",
    )
    engine = make_engine(settings.database_url)
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as http:
        yield http, settings
    engine.dispose()


def _assert_503(r: httpx.Response, names: str) -> None:
    assert r.status_code == 503, (r.status_code, r.text)
    assert int(r.headers["Retry-After"]) > 0
    assert names in r.text


def test_with_the_database_and_temporal_down_requests_get_503_not_500(
    nothing_up: tuple[TestClient, Settings],
) -> None:
    http, settings = nothing_up
    r = http.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})

    r = http.get("/readyz")
    _assert_503(r, "error")
    body = r.json()
    assert body["status"] == "degraded"
    assert body["database"].startswith("error")
    assert body["temporal"].startswith("error")

    # Login (unauthenticated), a list, a loan: the database is needed first.
    r = http.post("/api/v1/auth/token", data={"username": "manager", "password": "demo1234"})
    _assert_503(r, "the database")
    _assert_503(http.get("/api/v1/loans", headers=_token(settings)), "the database")
    _assert_503(http.get("/api/v1/loans/A1", headers=_token(settings)), "the database")


# ---- a real Temporal dev server: a worker down, a workflow ended -----------------------------


@pytest_asyncio.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server: it describes task queues and their pollers (the
    time-skipping test server does not)."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(codec_settings()),
        dev_server_existing_path=find_temporal_binary(),
        dev_server_extra_args=["--log-level", "error"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


def _loan_row(url: str, application_no: str) -> None:
    engine = make_engine(url)
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=hash_password(DEMO_PASSWORD))
    with Session(engine) as s:
        borrower = Borrower(
            name="王五",
            id_number=uuid.uuid4().hex[:18],
            phone="13600136000",
            bank_card="6222000011112222",
            monthly_income=Decimal("9000.00"),
        )
        s.add(borrower)
        s.flush()
        s.add(
            Application(
                application_no=application_no,
                borrower_id=borrower.id,
                amount=Decimal("1000.00"),
                term_months=3,
                purpose="p",
                repayment_source="r",
                stage="SERVICING",
                submitted_by="officer",
            )
        )
        s.commit()
    engine.dispose()


async def test_a_worker_down_is_told_apart_from_a_workflow_that_ended(
    dev_server: WorkflowEnvironment, sqlite_url: str
) -> None:
    queue = f"readiness-{uuid.uuid4()}"
    settings = Settings(
        environment="test",
        database_url=sqlite_url,
        temporal_address=dev_server.client.service_client.config.target_host,
        temporal_task_queue=queue,
    )
    application_no = "A20261129-NOWORK"
    await asyncio.to_thread(_loan_row, sqlite_url, application_no)
    engine = make_engine(sqlite_url)
    app = create_app(settings, engine=engine, temporal_client=dev_server.client)
    async with serve_api(app) as base:

        async def get(path: str, **kw: Any) -> httpx.Response:
            def go() -> httpx.Response:
                return httpx.get(f"{base}{path}", timeout=60, **kw)

            return await asyncio.to_thread(go)

        # No worker has ever polled the loans' queue: not ready, and the worker is named.
        r = await get("/readyz")
        _assert_503(r, "no worker polling")
        assert (r.json()["database"], r.json()["temporal"]) == ("ok", "ok")

        # The loan's workflow runs, but no worker answers its query: 503, not "ended".
        handle = await dev_server.client.start_workflow(
            "IdleForReadiness", id=f"loan-{application_no}", task_queue=queue
        )
        r = await get(f"/api/v1/loans/{application_no}", headers=_token(settings))
        _assert_503(r, "no worker answered")

        # A worker polls: ready.
        async with Worker(dev_server.client, task_queue=queue, workflows=[IdleWorkflow]):
            r = await get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json() == {"status": "ok", "database": "ok", "temporal": "ok", "worker": "ok"}

        # The workflow ended: 409, the loan's workflow is no longer running.
        await handle.terminate("test")
        r = await get(f"/api/v1/loans/{application_no}", headers=_token(settings))
        assert r.status_code == 409, r.text
        assert "no longer running" in r.text
    engine.dispose()
