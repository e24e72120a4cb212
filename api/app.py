"""The FastAPI application (``api.app:app``): routes under /api/v1, clients made once in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine
from temporalio.client import Client

from api import input_guard, outages, statuses
from api.deps import Clock, TemporalGateway, system_clock
from api.routes import (
    aftercare,
    applications,
    auth,
    bank,
    classification,
    codec,
    collections,
    documents,
    funding,
    health,
    inspection,
    ledger,
    loans,
    notices,
    products,
    quotes,
    reconciliation,
    reports,
    signing,
    tasks,
    users,
)
from loanops import logredact
from loanops.db import make_engine
from loanops.documents import DocumentStore
from loanops.settings import Settings, get_settings
from loanops.temporal import connect


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    temporal_client: Client | None = None,
    clock: Clock = system_clock,
    document_store: DocumentStore | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    # No secret in a log: uvicorn's access log would write the borrower's signing token.
    logredact.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        app.state.settings = settings
        app.state.clock = clock
        # None: the folder of settings.document_dir (read per request).
        app.state.document_store = document_store
        app.state.engine = engine or make_engine(settings.database_url)
        # Connected lazily on first use, so the API starts (and /healthz reports) while
        # Temporal is still coming up.
        app.state.temporal = TemporalGateway(
            temporal_client, lambda: connect(settings), max_calls=settings.api_temporal_calls
        )
        # The threads of the blocking routes (anyio's default limiter, this event loop's), and
        # two of their own for /readyz's database check.
        threads = anyio.to_thread.current_default_thread_limiter()
        before, threads.total_tokens = threads.total_tokens, settings.api_threads
        app.state.health_threads = anyio.CapacityLimiter(2)
        try:
            yield
        finally:
            threads.total_tokens = before
            if own_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="LoanOps",
        version="0.1.0",
        description="Back office of an online-lending operations department.",
        lifespan=lifespan,
    )
    v1 = APIRouter(prefix="/api/v1")
    for module in (
        auth,
        applications,
        documents,
        tasks,
        loans,
        notices,
        classification,
        reports,
        signing,
        quotes,
        products,
        codec,
        ledger,
        aftercare,
        collections,
        reconciliation,
        users,
    ):
        v1.include_router(statuses.document(module.router))
    v1.include_router(statuses.document(bank.router))
    v1.include_router(statuses.document(funding.router))
    v1.include_router(statuses.document(funding.reports_router))
    v1.include_router(statuses.document(inspection.router))
    app.include_router(v1)
    app.include_router(statuses.document(health.router))
    # A dependency down: 503 with Retry-After, never a 500.
    outages.install(app)
    app.middleware("http")(input_guard.refuse_nul_bytes)
    # The Temporal Web UI's origin may call the codec routes, and only them.
    app.middleware("http")(codec.codec_cors(settings.temporal_ui_origin))
    return app


def __getattr__(name: str) -> FastAPI:
    """``api.app:app`` for uvicorn, built on first access so that importing this module is free."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
