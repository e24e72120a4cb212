"""No secret in a log: the API served by uvicorn (its real access log) and the HTTP client's log
are captured while the borrower's signing link, a refresh token and a password go by."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from uvicorn.logging import AccessFormatter

from api.app import create_app
from loanops.logredact import REDACTED, redact
from loanops.security import signing_token
from loanops.settings import Settings
from tests.conftest import free_port


@asynccontextmanager
async def served(app: object) -> AsyncIterator[str]:
    """uvicorn with its default logging configuration at INFO: the access log is on."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))  # type: ignore[arg-type]
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


def test_redact_removes_tokens_codes_and_passwords() -> None:
    line = (
        "GET /api/v1/sign/0f3a.bXk/contract.pdf?code=123456&x=1 Authorization: Bearer eyJ.a.b "
        '{"password": "hunter2hunter2", "refresh_token": "abc"} /auth/token?password=p&token=t'
    )
    out = redact(line)
    for secret in ("0f3a.bXk", "123456", "eyJ.a.b", "hunter2hunter2", '"abc"', "=p", "=t"):
        assert secret not in out, secret
    assert "/api/v1/sign/[redacted]/contract.pdf?code=[redacted]&x=1" in out


@pytest.mark.asyncio
async def test_the_access_log_of_real_requests_holds_no_signing_token(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(environment="test", database_url=sqlite_url, temporal_address="127.0.0.1:9")
    token = signing_token(uuid.uuid4(), secret=settings.secret_key)
    refresh = "rt-" + uuid.uuid4().hex
    app = create_app(settings)
    caplog.set_level(logging.INFO)
    async with served(app) as base:
        # What uvicorn's access handler writes, formatted as it formats it.
        captured = io.StringIO()
        handler = logging.StreamHandler(captured)
        handler.setFormatter(
            AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
        )
        access = logging.getLogger("uvicorn.access")
        access.addHandler(handler)
        try:
            async with httpx.AsyncClient(base_url=base) as http:
                assert (await http.get(f"/api/v1/sign/{token}")).status_code == 404
                r = await http.post(f"/api/v1/sign/{token}/code")
                assert r.status_code == 404
                await http.get(f"/api/v1/sign/{token}/contract.pdf?code=654321")
                await http.post(f"/api/v1/auth/refresh?refresh_token={refresh}")
        finally:
            access.removeHandler(handler)
    lines = captured.getvalue()
    written = capfd.readouterr()
    client_log = "\n".join(r.getMessage() for r in caplog.records)
    assert f"/api/v1/sign/{REDACTED}/code" in lines  # the requests were logged...
    assert lines.count("/api/v1/sign/") == 3
    for text in (lines, written.out, written.err, client_log):  # ...with no secret in them
        assert token not in text
        assert token.split(".")[1] not in text
        assert "654321" not in text
        assert refresh not in text
