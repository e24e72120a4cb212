"""Dependencies down (issue 12): /healthz says the process is alive and nothing more; /readyz
names the database, Temporal or the worker that does not answer; every request that needs a
dependency that is down answers 503 with Retry-After — never a 500 — and a loan whose worker is
down is told apart from a loan whose workflow ended."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.deps import get_session
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


# ---- the database stopped mid-test -------------------------------------------------------------


class StoppableLink:
    """A TCP forwarder in front of the test's PostgreSQL: ``stop()`` drops every connection and
    stops listening (as a stopped server does, seen from the API); ``start()`` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        assert self._server is not None
        with contextlib.suppress(OSError):  # wakes the accepting thread (close alone does not)
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for s in self._conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._conns = []


def test_the_database_stopped_mid_run_gives_503_then_recovers(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a server to stop: PostgreSQL")
    seeded = make_engine(database_url)
    seed_demo_users(seeded, password=DEMO_PASSWORD, password_hash=hash_password(DEMO_PASSWORD))
    seeded.dispose()
    url = make_url(database_url)
    link = StoppableLink((url.host or "127.0.0.1", url.port or 5432))
    link.start()
    settings = Settings(
        environment="test",
        database_url=url.set(host="127.0.0.1", port=link.port).render_as_string(
            hide_password=False
        ),
        temporal_address=f"127.0.0.1:{free_port()}",
    )
    engine = make_engine(settings.database_url)
    login = {"username": "manager", "password": DEMO_PASSWORD}
    try:
        with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as http:
            r = http.post("/api/v1/auth/token", data=login)
            assert r.status_code == 200, r.text
            auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
            assert http.get("/api/v1/loans", headers=auth).status_code == 200
            assert http.get("/readyz").json()["database"] == "ok"

            link.stop()
            for _ in range(3):  # pooled connections broken, new ones refused
                _assert_503(http.get("/api/v1/loans", headers=auth), "the database")
                _assert_503(http.post("/api/v1/auth/token", data=login), "the database")
            assert http.get("/healthz").status_code == 200
            r = http.get("/readyz")
            _assert_503(r, "error")
            assert r.json()["database"].startswith("error")

            link.start()
            assert http.get("/api/v1/loans", headers=auth).status_code == 200
    finally:
        link.stop()
        engine.dispose()


def test_with_temporal_down_a_running_loan_is_503_naming_temporal(sqlite_url: str) -> None:
    application_no = "A20261129-NOTEMP"
    _loan_row(sqlite_url, application_no)
    settings = Settings(
        environment="test",
        database_url=sqlite_url,
        temporal_address=f"127.0.0.1:{free_port()}",
    )
    engine = make_engine(sqlite_url)
    try:
        with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as http:
            r = http.get(f"/api/v1/loans/{application_no}", headers=_token(settings))
            _assert_503(r, "Temporal")
            r = http.get("/readyz")
            _assert_503(r, "error")
            assert (r.json()["database"], r.json()["temporal"][:5]) == ("ok", "error")
    finally:
        engine.dispose()


def test_a_session_whose_database_stopped_after_the_handler_closes_without_error(
    database_url: str,
) -> None:
    """The request's session is closed after the handler answered: the database stopping in
    between must not turn that answer into an error (uvicorn would drop the connection)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a server to stop: PostgreSQL")
    url = make_url(database_url)
    link = StoppableLink((url.host or "127.0.0.1", url.port or 5432))
    link.start()
    engine = make_engine(
        url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
    )
    try:
        sessions = get_session(engine)
        session = next(sessions)
        session.exec(select(Application)).all()  # the handler's read: a transaction left open
        link.stop()
        with pytest.raises(StopIteration):  # closed: the dead connection discarded, no error
            next(sessions)
        link.start()
        with Session(engine) as s:  # the pool hands out a live connection again
            s.exec(select(Application)).all()
    finally:
        link.stop()
        engine.dispose()
