"""The API's Temporal gateway connects once, however many first requests arrive together."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from temporalio.client import Client

import api.app
from api.app import create_app
from api.deps import TemporalGateway
from api.errors import DependencyUnavailable
from loanops.settings import Settings


class CountingConnect:
    """A stand-in for ``loanops.temporal.connect`` that is slow and counts its calls."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.calls = 0
        self.fail_first = fail_first

        async def check_health() -> None:
            return None

        self.client = cast(
            Client, SimpleNamespace(service_client=SimpleNamespace(check_health=check_health))
        )

    async def __call__(self, *_: Any) -> Client:
        self.calls += 1
        await asyncio.sleep(0.2)  # long enough for every concurrent caller to arrive meanwhile
        if self.fail_first and self.calls == 1:
            raise RuntimeError("Temporal is still starting")
        return self.client


async def test_concurrent_first_calls_make_one_client() -> None:
    connect = CountingConnect()
    gateway = TemporalGateway(None, connect)
    clients = await asyncio.gather(*(gateway.client() for _ in range(10)))
    assert connect.calls == 1
    assert all(c is connect.client for c in clients)
    assert await gateway.client() is connect.client
    assert connect.calls == 1


async def test_a_failed_connection_is_not_kept() -> None:
    connect = CountingConnect(fail_first=True)
    gateway = TemporalGateway(None, connect)
    # The caller gets a 503 (DependencyUnavailable), and the next call connects anew.
    with pytest.raises(DependencyUnavailable, match="cannot connect"):
        await gateway.client()
    assert await gateway.client() is connect.client
    assert connect.calls == 2


def test_concurrent_first_requests_connect_once(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Route handlers run in the threadpool; eight first requests at once (each /readyz asks
    Temporal) share one connection."""
    connect = CountingConnect()
    monkeypatch.setattr(api.app, "connect", connect)
    app = create_app(Settings(environment="test", database_url=sqlite_url))
    with TestClient(app) as http, ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: http.get("/readyz"), range(8)))
    # Every request answered (the fake client is no real server: not ready), one connection.
    assert len(responses) == 8 and all(r.status_code in (200, 503) for r in responses)
    assert connect.calls == 1
