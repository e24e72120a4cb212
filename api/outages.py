"""Outages answer 503 with ``Retry-After`` within a few seconds, never a 500 nor a dropped
connection: the database down or its pool exhausted (SQLAlchemy ``OperationalError`` /
``TimeoutError``, a connection invalidated mid-request), Temporal unreachable or too slow
(``RPCError`` UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED by our rpc_timeout), and a dependency a
route found down itself (``DependencyUnavailable``). Every other error keeps its own handling."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.service import RPCError, RPCStatusCode

from api.errors import RETRY_AFTER_SECONDS, DependencyUnavailable

# Temporal answers that mean "not reachable now", not "refused".
TEMPORAL_DOWN = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


def _unavailable(dependency: str, reason: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{dependency} is unavailable, retry later: {reason}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install(app: FastAPI) -> None:
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        return _unavailable("the database", type(exc).__name__)

    async def db_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return await database_down(request, exc)
        raise exc

    async def temporal_down(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RPCError)
        if exc.status in TEMPORAL_DOWN:
            return _unavailable("Temporal", exc.message or exc.status.name)
        raise exc

    async def dependency_down(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DependencyUnavailable)
        return _unavailable(exc.dependency, exc.reason)

    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(PoolTimeout, database_down)
    app.add_exception_handler(DBAPIError, db_error)
    app.add_exception_handler(RPCError, temporal_down)
    app.add_exception_handler(DependencyUnavailable, dependency_down)
