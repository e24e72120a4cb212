"""The sandbox SMS gateway: accepts text messages for mainland mobile numbers, "delivers" them to
an in-memory handset per number, and reports each delivery to the sender's callback URL.

Run it as its own process (``loanops dev`` does)::

    python -m sandbox.sms --port 8092 [--latency-min-ms 20 --latency-max-ms 120 --seed 0]
                          [--rate-limit 10 --rate-window-s 60 --receipt-delay-ms 300]

It behaves like the real thing where the system can tell the difference:

- ``POST /v1/messages`` ``{to, text, callback_url?}`` with an ``Idempotency-Key`` header
  (required, 400 without): the same key returns the same ``message_id`` and the message is never
  sent twice; the same key with another ``to`` or ``text`` is refused with 409. A number that is
  not a mainland mobile (11 digits, 13–19…, optionally +86) or an empty text is a 400 naming the
  field. 202 for a new message, 200 for a repeated key.
- a per-number rate limit (``--rate-limit`` messages per ``--rate-window-s``, default 10 a
  minute): 429 with ``Retry-After`` (seconds) beyond it;
- latency: each send waits a seeded random time between the bounds;
- delivery receipts: ``--receipt-delay-ms`` after accepting, the gateway POSTs
  ``{message_id, status: "delivered" | "undeliverable", at}`` to ``callback_url``, signed with
  ``X-Sms-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` under the shared secret
  (``LOANOPS_SMS_CALLBACK_SECRET``), retried up to ``--callback-attempts`` times with back-off
  until the callback answers 2xx;
- faults, injected over ``POST /v1/admin/faults`` (as the sandbox bureau):
  ``{"mode": "error_503", "count": 3}``, ``error_500`` (nothing is sent), ``timeout`` (the
  message is sent but the answer is withheld for ``hang_seconds``), ``undeliverable`` (accepted,
  never reaches the handset, the receipt says so), for the next ``count`` sends or with a
  ``probability``; ``{"mode": "none"}`` resets.

The handset: ``GET /v1/messages?to=13800138000`` lists what that number received, newest first
(``{"to", "messages": [{"message_id", "text", "received_at"}]}``): the demo and the tests read
one-time codes there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import random
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

DEFAULT_PORT = 8092
DEFAULT_CALLBACK_SECRET = "dev-sms-callback-secret-change-me"
SIGNATURE_HEADER = "X-Sms-Signature"
MAX_TEXT = 500

FaultMode = Literal["none", "timeout", "error_500", "error_503", "undeliverable"]


# Mainland mobile numbers: 11 digits starting 13–19, optionally prefixed +86 or 86.
_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")


def normalize_mobile(value: str) -> str | None:
    match = _MOBILE.match(value.strip())
    return match.group(1) if match else None


def sign(body: bytes, secret: str) -> str:
    """The receipt signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None, secret: str) -> bool:
    return signature is not None and hmac.compare_digest(sign(body, secret), signature)


class FaultRequest(BaseModel):
    mode: FaultMode
    count: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0, le=1)
    hang_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_trigger(self) -> FaultRequest:
        if self.count is not None and self.probability is not None:
            raise ValueError("give count or probability, not both")
        return self


@dataclass
class Faults:
    """The injected fault: ``count`` sends left, else each with ``probability``."""

    mode: FaultMode = "none"
    remaining: int | None = None
    probability: float | None = None
    hang_seconds: float = 30.0
    injected: int = 0

    def draw(self, rng: random.Random) -> FaultMode:
        if self.mode == "none":
            return "none"
        if self.remaining is not None:
            if self.remaining <= 0:
                return "none"
            self.remaining -= 1
        elif self.probability is not None and rng.random() >= self.probability:
            return "none"
        self.injected += 1
        return self.mode

    def view(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "remaining": self.remaining,
            "probability": self.probability,
            "hang_seconds": self.hang_seconds,
            "injected": self.injected,
        }


@dataclass
class Message:
    message_id: str
    key: str
    to: str
    text: str
    callback_url: str | None
    accepted_at: datetime
    status: str = "accepted"  # then delivered | undeliverable
    deliverable: bool = True
    receipt_attempts: list[int | str] = field(default_factory=list)  # callback statuses

    def view(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "to": self.to,
            "status": self.status,
            "accepted_at": self.accepted_at.isoformat(),
            "receipt_attempts": list(self.receipt_attempts),
        }


@dataclass
class SmsState:
    latency_ms: tuple[float, float]
    rng: random.Random
    rate_limit: int
    rate_window_s: float
    receipt_delay_s: float
    callback_attempts: int
    secret: str
    faults: Faults = field(default_factory=Faults)
    by_key: dict[str, Message] = field(default_factory=dict)
    by_id: dict[str, Message] = field(default_factory=dict)
    handsets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sent_times: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, to: str) -> int | None:
        """Seconds until ``to`` may receive again, or None when under its rate limit."""
        now = time.monotonic()
        window = self.sent_times.setdefault(to, deque())
        while window and window[0] <= now - self.rate_window_s:
            window.popleft()
        if len(window) < self.rate_limit:
            return None
        return max(1, math.ceil(window[0] + self.rate_window_s - now))

    def accept(self, key: str, to: str, text: str, callback_url: str | None, fault: str) -> Message:
        msg = Message(
            # Not seeded: ids stay unique across restarts, as a real gateway's.
            message_id=f"SM{uuid.uuid4().hex[:24].upper()}",
            key=key,
            to=to,
            text=text,
            callback_url=callback_url,
            accepted_at=datetime.now(UTC),
            deliverable=fault != "undeliverable",
        )
        self.by_key[key] = msg
        self.by_id[msg.message_id] = msg
        self.sent_times.setdefault(to, deque()).append(time.monotonic())
        if msg.deliverable:
            self.handsets.setdefault(to, []).append(
                {
                    "message_id": msg.message_id,
                    "text": text,
                    "received_at": msg.accepted_at.isoformat(),
                }
            )
        return msg


def _bad_request(field_name: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason, "field": field_name}, status_code=400)


def create_app(
    *,
    latency_ms: tuple[float, float] = (20, 120),
    seed: int | None = 0,
    rate_limit: int = 10,
    rate_window_s: float = 60.0,
    receipt_delay_ms: float = 300,
    callback_attempts: int = 5,
    secret: str | None = None,
) -> FastAPI:
    low, high = latency_ms
    if not 0 <= low <= high:
        raise ValueError(f"latency bounds must satisfy 0 <= min <= max, got {low}..{high}")
    if rate_limit < 1 or rate_window_s <= 0:
        raise ValueError("the rate limit must allow at least one message in a positive window")
    state = SmsState(
        latency_ms=(low, high),
        rng=random.Random(seed),
        rate_limit=rate_limit,
        rate_window_s=rate_window_s,
        receipt_delay_s=receipt_delay_ms / 1000,
        callback_attempts=max(callback_attempts, 1),
        secret=secret
        or os.environ.get("LOANOPS_SMS_CALLBACK_SECRET", "")
        or DEFAULT_CALLBACK_SECRET,
    )
    background: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            app.state.client = client
            yield
            for task in list(background):
                task.cancel()
            for task in list(background):
                with contextlib.suppress(BaseException):
                    await task

    app = FastAPI(title="Sandbox SMS gateway", docs_url="/docs", lifespan=lifespan)
    app.state.sms = state

    async def deliver(msg: Message) -> None:
        """After the receipt delay: the handset's answer, then the receipt to the callback."""
        await asyncio.sleep(state.receipt_delay_s)
        msg.status = "delivered" if msg.deliverable else "undeliverable"
        if not msg.callback_url:
            return
        body = json.dumps(
            {
                "message_id": msg.message_id,
                "status": msg.status,
                "at": datetime.now(UTC).isoformat(),
            },
            separators=(",", ":"),
        ).encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(body, state.secret)}
        client: httpx.AsyncClient = app.state.client
        for attempt in range(state.callback_attempts):
            try:
                response = await client.post(msg.callback_url, content=body, headers=headers)
                msg.receipt_attempts.append(response.status_code)
                if response.status_code < 300:
                    return
            except httpx.HTTPError as exc:
                msg.receipt_attempts.append(type(exc).__name__)
            await asyncio.sleep(state.receipt_delay_s * 2**attempt)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/messages")
    async def send(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        if not idempotency_key or len(idempotency_key) > 200:
            return _bad_request(
                "Idempotency-Key", "the Idempotency-Key header is required (1–200 characters)"
            )
        try:
            body = await request.json()
        except ValueError:
            return _bad_request("body", "the body must be a JSON object")
        if not isinstance(body, dict):
            return _bad_request("body", "the body must be a JSON object")
        raw_to, text, callback_url = body.get("to"), body.get("text"), body.get("callback_url")
        to = normalize_mobile(raw_to) if isinstance(raw_to, str) else None
        if to is None:
            return _bad_request("to", "must be a mainland China mobile number (11 digits, 13–19…)")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            return _bad_request(
                "text", f"must be a non-empty text of at most {MAX_TEXT} characters"
            )
        if callback_url is not None and (
            not isinstance(callback_url, str)
            or not callback_url.startswith(("http://", "https://"))
        ):
            return _bad_request("callback_url", "must be an http(s) URL")

        await asyncio.sleep(state.rng.uniform(*state.latency_ms) / 1000)
        done = state.by_key.get(idempotency_key)
        if done is not None:  # a repeated key is answered even while faults are injected
            if (done.to, done.text) != (to, text):
                return JSONResponse(
                    {"error": "this Idempotency-Key was used for another message"}, status_code=409
                )
            return JSONResponse({"message_id": done.message_id, "status": done.status}, 200)
        fault = state.faults.draw(state.rng)
        if fault == "error_500":
            return JSONResponse({"error": "internal error (injected)"}, status_code=500)
        if fault == "error_503":
            return JSONResponse(
                {"error": "service unavailable (injected)"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        wait = state.retry_after(to)
        if wait is not None:
            return JSONResponse(
                {
                    "error": f"rate limit: at most {state.rate_limit} messages per number every "
                    f"{state.rate_window_s:g} s"
                },
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        msg = state.accept(idempotency_key, to, text, callback_url, fault)
        task = asyncio.create_task(deliver(msg))
        background.add(task)
        task.add_done_callback(background.discard)
        if fault == "timeout":  # sent, but the answer comes too late for the caller
            await asyncio.sleep(state.faults.hang_seconds)
        return JSONResponse({"message_id": msg.message_id, "status": msg.status}, 202)

    @app.get("/v1/messages")
    async def handset(to: str = Query(..., description="the mobile number")) -> JSONResponse:
        """What the handset of ``to`` received, newest first."""
        number = normalize_mobile(to)
        if number is None:
            return _bad_request("to", "must be a mainland China mobile number")
        received = state.handsets.get(number, [])
        return JSONResponse({"to": number, "messages": list(reversed(received))})

    @app.get("/v1/messages/{message_id}")
    async def message(message_id: str) -> JSONResponse:
        msg = state.by_id.get(message_id)
        if msg is None:
            return JSONResponse({"error": "no such message"}, status_code=404)
        return JSONResponse(msg.view())

    @app.post("/v1/admin/faults")
    async def set_faults(req: FaultRequest) -> dict[str, Any]:
        if req.mode == "none":
            state.faults = Faults()
        else:
            state.faults = Faults(
                mode=req.mode,
                remaining=req.count,
                probability=req.probability if req.count is None else None,
                hang_seconds=req.hang_seconds,
            )
        return state.faults.view()

    @app.get("/v1/admin/faults")
    async def get_faults() -> dict[str, Any]:
        return state.faults.view()

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m sandbox.sms", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--latency-min-ms", type=float, default=20)
    parser.add_argument("--latency-max-ms", type=float, default=120)
    parser.add_argument("--seed", type=int, default=0, help="latency and faults")
    parser.add_argument(
        "--rate-limit",
        type=int,
        # The benches run many bots for the one demo borrower (one number): they raise it.
        default=int(os.environ.get("LOANOPS_SMS_RATE_LIMIT", "10")),
        help="messages per number per window (default 10, or LOANOPS_SMS_RATE_LIMIT)",
    )
    parser.add_argument("--rate-window-s", type=float, default=60)
    parser.add_argument("--receipt-delay-ms", type=float, default=300)
    parser.add_argument("--callback-attempts", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        app = create_app(
            latency_ms=(args.latency_min_ms, args.latency_max_ms),
            seed=args.seed,
            rate_limit=args.rate_limit,
            rate_window_s=args.rate_window_s,
            receipt_delay_ms=args.receipt_delay_ms,
            callback_attempts=args.callback_attempts,
        )
    except ValueError as exc:
        parser.error(str(exc))
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
