"""The sandbox SMS gateway as a real process over HTTP, and the ``HttpSmsGateway`` adapter
against it: idempotency keys, validation, the per-number rate limit, injected faults, and
signed delivery receipts posted to a real callback server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adapters.sms import (
    SIGNATURE_HEADER,
    HttpSmsGateway,
    SmsRejected,
    SmsUnavailable,
    verify_receipt,
)
from tests.conftest import free_port
from tests.sandbox.helpers import SandboxSms, sandbox_sms

RATE_LIMIT = 3


@pytest.fixture(scope="module")
def sms_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxSms]:
    with sandbox_sms(
        tmp_path_factory.mktemp("sms"), rate_limit=RATE_LIMIT, receipt_delay_ms=100
    ) as sms:
        yield sms


@pytest.fixture
def sms(sms_process: SandboxSms) -> Iterator[SandboxSms]:
    sms_process.set_faults("none")
    yield sms_process
    sms_process.set_faults("none")


def fresh_phone() -> str:
    """A number no other test used (each number has its own handset and rate limit)."""
    return f"139{uuid.uuid4().int % 10**8:08d}"


def post(sms: SandboxSms, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return httpx.post(f"{sms.url}/v1/messages", json=body, headers=headers, timeout=10)


def test_a_message_reaches_the_handset_once_per_idempotency_key(sms: SandboxSms) -> None:
    phone = fresh_phone()
    key = f"k-{uuid.uuid4()}"
    first = post(sms, {"to": phone, "text": "您的验证码为123456"}, key)
    assert first.status_code == 202, first.text
    again = post(sms, {"to": phone, "text": "您的验证码为123456"}, key)
    assert again.status_code == 200
    assert again.json()["message_id"] == first.json()["message_id"]
    received = sms.received(phone)
    assert [m["text"] for m in received] == ["您的验证码为123456"]
    assert received[0]["message_id"] == first.json()["message_id"]

    other = post(sms, {"to": phone, "text": "另一条"}, key)
    assert other.status_code == 409
    assert len(sms.received(phone)) == 1


def test_the_handset_lists_newest_first_and_accepts_plus86(sms: SandboxSms) -> None:
    phone = fresh_phone()
    for text in ("一", "二"):
        assert post(sms, {"to": f"+86{phone}", "text": text}, str(uuid.uuid4())).status_code == 202
    assert [m["text"] for m in sms.received(phone)] == ["二", "一"]


@pytest.mark.parametrize(
    ("body", "key", "field"),
    [
        ({"to": "12800138000", "text": "x"}, "k", "to"),  # 12x is not a mobile prefix
        ({"to": "1380013800", "text": "x"}, "k", "to"),  # ten digits
        ({"to": "021-12345678", "text": "x"}, "k", "to"),  # a landline
        ({"to": "13800138000", "text": "  "}, "k", "text"),
        ({"to": "13800138000", "text": "x" * 501}, "k", "text"),
        ({"to": "13800138000", "text": "x", "callback_url": "ftp://x"}, "k", "callback_url"),
        ({"to": "13800138000", "text": "x"}, None, "Idempotency-Key"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(
    sms: SandboxSms, body: dict[str, Any], key: str | None, field: str
) -> None:
    r = post(sms, body, None if key is None else f"{key}-{uuid.uuid4()}")
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field


def test_rate_limit_per_number_is_429_with_retry_after(sms: SandboxSms) -> None:
    phone, other = fresh_phone(), fresh_phone()
    for i in range(RATE_LIMIT):
        assert post(sms, {"to": phone, "text": f"m{i}"}, str(uuid.uuid4())).status_code == 202
    refused = post(sms, {"to": phone, "text": "one too many"}, str(uuid.uuid4()))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(sms.received(phone)) == RATE_LIMIT
    # Another number is not limited by this one.
    assert post(sms, {"to": other, "text": "hi"}, str(uuid.uuid4())).status_code == 202


def test_the_adapter_maps_the_gateway_answers(sms: SandboxSms) -> None:
    phone = fresh_phone()
    with HttpSmsGateway(sms.url, timeout=1.0) as gateway:
        accepted = gateway.send(phone, "你好", idempotency_key=str(uuid.uuid4()))
        assert accepted.message_id.startswith("SM")
        assert [m.message_id for m in gateway.received(phone)] == [accepted.message_id]

        with pytest.raises(SmsRejected) as bad:
            gateway.send("12345", "你好", idempotency_key=str(uuid.uuid4()))
        assert bad.value.status_code == 400 and not bad.value.retryable

        sms.set_faults("error_503", count=1)
        with pytest.raises(SmsUnavailable) as down:
            gateway.send(phone, "503", idempotency_key=str(uuid.uuid4()))
        assert down.value.retryable and down.value.retry_after == 1.0

        sms.set_faults("error_500", count=1)
        with pytest.raises(SmsUnavailable):
            gateway.send(phone, "500", idempotency_key=str(uuid.uuid4()))
        assert [m.text for m in gateway.received(phone)] == ["你好"]  # nothing sent on 5xx

        for i in range(RATE_LIMIT - 1):
            gateway.send(phone, f"m{i}", idempotency_key=str(uuid.uuid4()))
        with pytest.raises(SmsUnavailable) as limited:
            gateway.send(phone, "limited", idempotency_key=str(uuid.uuid4()))
        assert limited.value.retry_after is not None and limited.value.retry_after >= 1


def test_a_timeout_fault_sends_but_withholds_the_answer_and_a_retry_does_not_resend(
    sms: SandboxSms,
) -> None:
    phone = fresh_phone()
    key = str(uuid.uuid4())
    sms.set_faults("timeout", count=1, hang_seconds=5)
    with HttpSmsGateway(sms.url, timeout=0.5) as gateway:
        with pytest.raises(SmsUnavailable, match="no answer"):
            gateway.send(phone, "验证码 654321", idempotency_key=key)
        again = gateway.send(phone, "验证码 654321", idempotency_key=key)
    received = sms.received(phone)
    assert [m["message_id"] for m in received] == [again.message_id]


def test_faults_count_down_then_stop(sms: SandboxSms) -> None:
    phone = fresh_phone()
    assert sms.set_faults("error_503", count=2)["remaining"] == 2
    codes = [post(sms, {"to": phone, "text": "x"}, str(uuid.uuid4())).status_code for _ in range(3)]
    assert codes == [503, 503, 202]


# ---- delivery receipts to a real callback server ------------------------------------------


class Callback:
    """A small HTTP server recording the receipts it is posted; fails the first ``fail``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[dict[str, Any], bool]] = []
        self.fail = 0
        app = FastAPI()

        @app.post("/receipts")
        async def receipt(request: Request) -> JSONResponse:
            body = await request.body()
            ok = verify_receipt(body, request.headers.get(SIGNATURE_HEADER), self.secret)
            self.received.append((json.loads(body), ok))
            if self.fail > 0:
                self.fail -= 1
                return JSONResponse({"error": "try later"}, status_code=503)
            return JSONResponse({}, status_code=200 if ok else 401)

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/receipts"

    def __enter__(self) -> Callback:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_for(check: Any, within: float = 10) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_receipts_are_signed_and_retried_until_the_callback_takes_them(sms: SandboxSms) -> None:
    phone = fresh_phone()
    with Callback(sms.secret) as cb:
        cb.fail = 2
        r = post(sms, {"to": phone, "text": "hi", "callback_url": cb.url}, str(uuid.uuid4()))
        message_id = r.json()["message_id"]
        wait_for(lambda: len(cb.received) == 3)
        bodies = {json.dumps(b, sort_keys=True) for b, _ in cb.received}
        assert len(bodies) == 1  # the same receipt each time
        body, signed = cb.received[-1]
        assert signed
        assert body["message_id"] == message_id and body["status"] == "delivered"
        assert body["at"].endswith("+00:00")
        assert sms.message(message_id)["receipt_attempts"] == [503, 503, 200]


def test_a_receipt_under_another_secret_does_not_verify(sms: SandboxSms) -> None:
    phone = fresh_phone()
    with Callback("not-the-gateway-secret") as cb:
        r = post(sms, {"to": phone, "text": "hi", "callback_url": cb.url}, str(uuid.uuid4()))
        message_id = r.json()["message_id"]
        wait_for(lambda: cb.received)
        assert cb.received[0][1] is False
        # 401 is not 2xx: the gateway tries again, a bounded number of times.
        wait_for(lambda: len(sms.message(message_id)["receipt_attempts"]) >= 2)


def test_an_undeliverable_message_never_reaches_the_handset_and_says_so(sms: SandboxSms) -> None:
    phone = fresh_phone()
    sms.set_faults("undeliverable", count=1)
    with Callback(sms.secret) as cb:
        r = post(sms, {"to": phone, "text": "lost", "callback_url": cb.url}, str(uuid.uuid4()))
        assert r.status_code == 202
        wait_for(lambda: cb.received)
        assert cb.received[0][0]["status"] == "undeliverable" and cb.received[0][1]
    assert sms.received(phone) == []


async def test_concurrent_sends_with_one_key_send_once(sms: SandboxSms) -> None:
    phone = fresh_phone()
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=10) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{sms.url}/v1/messages",
                    json={"to": phone, "text": "once"},
                    headers={"Idempotency-Key": key},
                )
                for _ in range(5)
            )
        )
    assert len({a.json()["message_id"] for a in answers}) == 1
    assert len(sms.received(phone)) == 1
