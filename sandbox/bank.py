"""The sandbox bank: payment orders from the lender's funding pool account to borrowers' cards,
account verification, simulated incoming repayments and a ledger, over HTTP, with its own ledger
on disk (a SQLite file: orders, executed movements and the callback outbox survive a kill -9).

Run it as its own process (``loanops dev`` does)::

    python -m sandbox.bank --port 8093 --ledger var/bank.db [--callback-secret S]
        [--latency-min-ms 20 --latency-max-ms 80 --exec-delay-ms 150 --faults '{"reject_next": 1}']

Endpoints:

- ``POST /v1/payments`` (header ``Idempotency-Key``; body ``amount``, ``payee_account``,
  ``payee_name``, ``payer_account``, ``reference``, optional ``callback_url``) → 202 with the
  order. The same key again returns the same order and never executes it twice; the same key
  with another body is 409. Execution is asynchronous: ``pending`` → ``executed`` (with a
  ``value_date``, Asia/Shanghai) or ``rejected`` with a ``reason_code`` (``ACCOUNT_UNKNOWN``,
  ``ACCOUNT_CLOSED``, ``ACCOUNT_FROZEN``, ``NAME_MISMATCH``, or the injected one).
- ``GET /v1/payments/{key}``: the order's status (404: the bank never accepted that key).
- ``POST /v1/accounts/verify`` ``{account, name}`` → ``belongs`` / ``name_mismatch`` /
  ``unknown`` (with the account's ``status`` when known: active, closed, frozen).
- ``POST /v1/incoming``: a simulated incoming transfer (a borrower's repayment) into a pool
  account, executed at once, idempotent by ``Idempotency-Key`` too.
- ``GET /v1/ledger``: every executed movement, oldest first (``direction`` out/in).
- Callbacks: on each status change, ``POST callback_url`` with the event as JSON and the headers
  ``X-Bank-Event-Id``, ``X-Bank-Timestamp`` and ``X-Bank-Signature`` = hex HMAC-SHA256 of
  ``"{timestamp}.{body}"`` with the shared secret; retried with backoff until a 2xx (at most
  ``MAX_CALLBACK_ATTEMPTS``). Receivers must dedupe by event id (duplicates are allowed).
- Faults (``POST /v1/faults`` replaces them, ``GET /v1/faults``; at start ``--faults JSON`` or
  the ``SANDBOX_BANK_FAULTS`` environment variable): ``timeout_after_execute`` (the next N
  payment requests are accepted and executed at once, and the answer is withheld for
  ``hang_seconds``), ``error_before_execute`` (the next N answer ``error_status``, nothing
  recorded), ``slow_ms`` (added to every answer), ``duplicate_callbacks``,
  ``late_callback_seconds``, ``bad_signature`` (callbacks signed with a wrong key),
  ``reject_next`` (the next N new orders are rejected with ``reject_reason``).
- ``POST /v1/admin/reset``: empty the ledger and reset the faults (tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

ACCOUNTS_FILE = Path(__file__).resolve().parent / "data" / "bank_accounts.json"
DEFAULT_PORT = 8093
DEFAULT_SECRET = "sandbox-bank-callback-secret"
MAX_CALLBACK_ATTEMPTS = 8
VALUE_DATE_ZONE = ZoneInfo("Asia/Shanghai")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    key TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,              -- payment / incoming
    body_hash TEXT NOT NULL,
    amount TEXT NOT NULL,
    payer_account TEXT NOT NULL,
    payer_name TEXT,
    payee_account TEXT NOT NULL,
    payee_name TEXT NOT NULL,
    reference TEXT NOT NULL,
    callback_url TEXT,
    status TEXT NOT NULL,            -- pending / executed / rejected
    reason_code TEXT,
    reason TEXT,
    forced_reason TEXT,              -- an injected rejection, decided at acceptance
    value_date TEXT,
    execute_at REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL UNIQUE,
    key TEXT NOT NULL,
    direction TEXT NOT NULL,         -- out / in
    amount TEXT NOT NULL,
    payer_account TEXT NOT NULL,
    payee_account TEXT NOT NULL,
    payee_name TEXT NOT NULL,
    reference TEXT NOT NULL,
    value_date TEXT NOT NULL,
    executed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    bad_signature INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    status TEXT NOT NULL,            -- pending / delivered / failed
    last_error TEXT
);
"""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The callback signature: hex HMAC-SHA256 of ``b"{timestamp}." + body``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class PaymentIn(BaseModel):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    payee_account: str = Field(pattern=r"^\d{12,19}$")
    payee_name: str = Field(min_length=1, max_length=64)
    payer_account: str = Field(pattern=r"^\d{12,19}$")
    reference: str = Field(min_length=1, max_length=100)
    callback_url: str | None = Field(default=None, max_length=500)

    @field_validator("amount")
    @classmethod
    def _fen(cls, v: Decimal) -> Decimal:
        return v.quantize(Decimal("0.01"))


class IncomingIn(BaseModel):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    payer_account: str = Field(pattern=r"^\d{12,19}$")
    payer_name: str = Field(min_length=1, max_length=64)
    payee_account: str = Field(pattern=r"^\d{12,19}$")
    reference: str = Field(min_length=1, max_length=100)
    callback_url: str | None = Field(default=None, max_length=500)

    @field_validator("amount")
    @classmethod
    def _fen(cls, v: Decimal) -> Decimal:
        return v.quantize(Decimal("0.01"))


class VerifyIn(BaseModel):
    account: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)


class Faults(BaseModel):
    """Faults in force; omitted fields are off. Counters count down as faults are injected."""

    timeout_after_execute: int = Field(default=0, ge=0)
    hang_seconds: float = Field(default=30.0, gt=0, le=600)
    error_before_execute: int = Field(default=0, ge=0)
    error_status: Literal[500, 502, 503, 504] = 503
    slow_ms: int = Field(default=0, ge=0, le=60_000)
    duplicate_callbacks: bool = False
    late_callback_seconds: float = Field(default=0, ge=0, le=600)
    bad_signature: bool = False
    reject_next: int = Field(default=0, ge=0)
    reject_reason: str = Field(default="ACCOUNT_FROZEN", pattern=r"^[A-Z_]{3,40}$")


@dataclass
class BankState:
    db: sqlite3.Connection
    accounts: dict[str, dict[str, str]]
    secret: str
    latency_ms: tuple[float, float]
    exec_delay_ms: float
    rng: random.Random
    faults: Faults = field(default_factory=Faults)
    injected: dict[str, int] = field(default_factory=dict)

    # -- faults -------------------------------------------------------------------------------

    def take(self, name: str) -> bool:
        """Use up one of the counted fault ``name`` if any is left."""
        left = getattr(self.faults, name)
        if left <= 0:
            return False
        setattr(self.faults, name, left - 1)
        self.injected[name] = self.injected.get(name, 0) + 1
        return True

    async def latency(self) -> None:
        low, high = self.latency_ms
        await asyncio.sleep((self.rng.uniform(low, high) + self.faults.slow_ms) / 1000)

    # -- orders -------------------------------------------------------------------------------

    def order(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM orders WHERE key = ?", (key,)).fetchone()
        return _order_view(row) if row else None

    def accept(self, key: str, kind: str, body: dict[str, Any], *, execute_now: bool) -> str:
        """Record a new order (pending); ``execute_now`` runs it before returning."""
        now = time.time()
        forced = (
            self.faults.reject_reason if kind == "payment" and self.take("reject_next") else None
        )
        with self.db:
            self.db.execute(
                "INSERT INTO orders (key, order_id, kind, body_hash, amount, payer_account,"
                " payer_name, payee_account, payee_name, reference, callback_url, status,"
                " forced_reason, execute_at, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,'pending',?,?,?,?)",
                (
                    key,
                    f"BO{uuid.uuid4().hex[:20].upper()}",
                    kind,
                    _hash(body),
                    str(body["amount"]),
                    body["payer_account"],
                    body.get("payer_name"),
                    body["payee_account"],
                    body.get("payee_name")
                    or self.accounts.get(body["payee_account"], {}).get("name", ""),
                    body["reference"],
                    body.get("callback_url"),
                    forced,
                    now + self.exec_delay_ms / 1000 * self.rng.uniform(0.5, 1.5),
                    _iso(now),
                    _iso(now),
                ),
            )
        if execute_now:
            self.execute(key)
        return key

    def execute(self, key: str) -> None:
        """Execute or reject a pending order: one transaction for the status and the ledger."""
        row = self.db.execute(
            "SELECT * FROM orders WHERE key = ? AND status = 'pending'", (key,)
        ).fetchone()
        if row is None:
            return
        reason_code, reason = self._refusal(row)
        now = time.time()
        with self.db:
            if reason_code:
                self.db.execute(
                    "UPDATE orders SET status='rejected', reason_code=?, reason=?, updated_at=?"
                    " WHERE key=? AND status='pending'",
                    (reason_code, reason, _iso(now), key),
                )
            else:
                value_date = datetime.fromtimestamp(now, VALUE_DATE_ZONE).date().isoformat()
                self.db.execute(
                    "UPDATE orders SET status='executed', value_date=?, updated_at=?"
                    " WHERE key=? AND status='pending'",
                    (value_date, _iso(now), key),
                )
                self.db.execute(
                    "INSERT INTO ledger (order_id, key, direction, amount, payer_account,"
                    " payee_account, payee_name, reference, value_date, executed_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        row["order_id"],
                        key,
                        "out" if row["kind"] == "payment" else "in",
                        row["amount"],
                        row["payer_account"],
                        row["payee_account"],
                        row["payee_name"],
                        row["reference"],
                        value_date,
                        _iso(now),
                    ),
                )
            if row["callback_url"]:
                self._enqueue_callback(key, row["callback_url"], now)

    def _refusal(self, row: sqlite3.Row) -> tuple[str | None, str | None]:
        if row["forced_reason"]:
            return row["forced_reason"], "rejected by the bank (injected)"
        if row["kind"] == "incoming":
            return None, None
        account = self.accounts.get(row["payee_account"])
        if account is None:
            return "ACCOUNT_UNKNOWN", "no such account at the payee's bank"
        if account["status"] == "closed":
            return "ACCOUNT_CLOSED", "the payee's account is closed"
        if account["status"] == "frozen":
            return "ACCOUNT_FROZEN", "the payee's account is frozen"
        if account["name"] != row["payee_name"]:
            return "NAME_MISMATCH", "the payee's name does not match the account holder"
        return None, None

    def _enqueue_callback(self, key: str, url: str, now: float) -> None:
        """Called inside the status change's transaction: the event is sent at least once."""
        order = self.order(key)
        assert order is not None
        event_id = f"EV{uuid.uuid4().hex[:20].upper()}"
        event = {
            "event_id": event_id,
            "type": "payment.status_changed" if order["kind"] == "payment" else "incoming.received",
            "occurred_at": _iso(now),
            "order": order,
        }
        body = json.dumps(event, ensure_ascii=False, sort_keys=True)
        copies = 2 if self.faults.duplicate_callbacks else 1
        for _ in range(copies):
            self.db.execute(
                "INSERT INTO callbacks (event_id, url, body, bad_signature, next_at, status)"
                " VALUES (?,?,?,?,?,'pending')",
                (
                    event_id,
                    url,
                    body,
                    int(self.faults.bad_signature),
                    now + self.faults.late_callback_seconds,
                ),
            )
        if copies == 2:
            self.injected["duplicate_callbacks"] = self.injected.get("duplicate_callbacks", 0) + 1
        if self.faults.late_callback_seconds:
            self.injected["late_callbacks"] = self.injected.get("late_callbacks", 0) + 1

    # -- background: execution and callback delivery ------------------------------------------

    def due_orders(self) -> list[str]:
        rows = self.db.execute(
            "SELECT key FROM orders WHERE status='pending' AND execute_at <= ? ORDER BY execute_at",
            (time.time(),),
        ).fetchall()
        return [r["key"] for r in rows]

    async def deliver_callbacks(self, client: httpx.AsyncClient) -> None:
        rows = self.db.execute(
            "SELECT * FROM callbacks WHERE status='pending' AND next_at <= ? ORDER BY id LIMIT 20",
            (time.time(),),
        ).fetchall()
        for row in rows:
            body = row["body"].encode()
            timestamp = str(int(time.time()))
            secret = "not-the-shared-secret" if row["bad_signature"] else self.secret
            error: str | None = None
            try:
                r = await client.post(
                    row["url"],
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "X-Bank-Event-Id": row["event_id"],
                        "X-Bank-Timestamp": timestamp,
                        "X-Bank-Signature": sign(secret, timestamp, body),
                    },
                    timeout=3.0,
                )
                if r.status_code >= 300:
                    error = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            attempts = row["attempts"] + 1
            with self.db:
                if error is None:
                    self.db.execute(
                        "UPDATE callbacks SET status='delivered', attempts=? WHERE id=?",
                        (attempts, row["id"]),
                    )
                else:
                    final = attempts >= MAX_CALLBACK_ATTEMPTS
                    self.db.execute(
                        "UPDATE callbacks SET status=?, attempts=?, next_at=?, last_error=?"
                        " WHERE id=?",
                        (
                            "failed" if final else "pending",
                            attempts,
                            time.time() + min(0.2 * 2**attempts, 5.0),
                            error,
                            row["id"],
                        ),
                    )

    def reset(self) -> None:
        with self.db:
            for table in ("orders", "ledger", "callbacks"):
                self.db.execute(f"DELETE FROM {table}")  # fixed table names
        self.faults = Faults()
        self.injected = {}


def _hash(body: dict[str, Any]) -> str:
    canonical = json.dumps({k: str(v) for k, v in body.items()}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _order_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "idempotency_key": row["key"],
        "kind": row["kind"],
        "status": row["status"],
        "amount": row["amount"],
        "payer_account": row["payer_account"],
        "payee_account": row["payee_account"],
        "payee_name": row["payee_name"],
        "reference": row["reference"],
        "value_date": row["value_date"],
        "reason_code": row["reason_code"],
        "reason": row["reason"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def open_ledger(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed movement survives a kill -9
    db.executescript(_SCHEMA)
    db.isolation_level = "DEFERRED"  # `with db:` is one transaction
    return db


def load_accounts(path: Path = ACCOUNTS_FILE) -> dict[str, dict[str, str]]:
    accounts: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))["accounts"]
    return accounts


def create_app(
    *,
    ledger: Path,
    accounts_file: Path = ACCOUNTS_FILE,
    secret: str = DEFAULT_SECRET,
    latency_ms: tuple[float, float] = (20, 80),
    exec_delay_ms: float = 150,
    faults: Faults | None = None,
    seed: int | None = None,
) -> FastAPI:
    low, high = latency_ms
    if not 0 <= low <= high:
        raise ValueError(f"latency bounds must satisfy 0 <= min <= max, got {low}..{high}")
    state = BankState(
        db=open_ledger(ledger),
        accounts=load_accounts(accounts_file),
        secret=secret,
        latency_ms=(low, high),
        exec_delay_ms=exec_delay_ms,
        rng=random.Random(seed),
        faults=faults or Faults(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def run() -> None:
            async with httpx.AsyncClient() as client:
                while True:
                    for key in state.due_orders():  # pending orders of a previous run, too
                        state.execute(key)
                    await state.deliver_callbacks(client)
                    await asyncio.sleep(0.02)

        task = asyncio.create_task(run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        state.db.close()

    app = FastAPI(title="Sandbox bank", docs_url="/docs", lifespan=lifespan)
    app.state.bank = state

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def _accept_or_replay(key: str, kind: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        existing = state.order(key)
        if existing is not None:
            row = state.db.execute("SELECT body_hash FROM orders WHERE key=?", (key,)).fetchone()
            if row["body_hash"] != _hash(body) or existing["kind"] != kind:
                raise HTTPException(
                    409, "Idempotency-Key was already used for another order (a different body)"
                )
            return existing, False
        state.accept(key, kind, body, execute_now=kind == "incoming")
        order = state.order(key)
        assert order is not None
        return order, True

    @app.post("/v1/payments", status_code=202)
    async def pay(
        req: PaymentIn,
        idempotency_key: str = Header(min_length=1, max_length=100, alias="Idempotency-Key"),
    ) -> JSONResponse:
        await state.latency()
        if state.take("error_before_execute"):
            return JSONResponse(
                {"error": "service unavailable (injected, nothing recorded)"},
                status_code=state.faults.error_status,
            )
        payer = state.accounts.get(req.payer_account)
        if payer is None or payer.get("kind") != "pool":
            raise HTTPException(422, "payer_account: not a pool account of this bank's customer")
        # No await from the look-up to the insert: one order per key even under concurrency.
        order, new = _accept_or_replay(idempotency_key, "payment", req.model_dump())
        if state.take("timeout_after_execute"):
            state.execute(idempotency_key)  # done at the bank; the caller never hears of it
            await asyncio.sleep(state.faults.hang_seconds)
            order = state.order(idempotency_key) or order
        return JSONResponse(order, status_code=202 if new else 200)

    @app.get("/v1/payments/{key}")
    async def payment_status(key: str) -> JSONResponse:
        await state.latency()
        order = state.order(key)
        if order is None or order["kind"] != "payment":
            raise HTTPException(404, "no payment order with this Idempotency-Key")
        return JSONResponse(order)

    @app.post("/v1/incoming", status_code=201)
    async def incoming(
        req: IncomingIn,
        idempotency_key: str = Header(min_length=1, max_length=100, alias="Idempotency-Key"),
    ) -> JSONResponse:
        await state.latency()
        payee = state.accounts.get(req.payee_account)
        if payee is None or payee.get("kind") != "pool":
            raise HTTPException(422, "payee_account: not a pool account of this bank's customer")
        order, new = _accept_or_replay(idempotency_key, "incoming", req.model_dump())
        return JSONResponse(order, status_code=201 if new else 200)

    @app.post("/v1/accounts/verify")
    async def verify(req: VerifyIn) -> dict[str, Any]:
        await state.latency()
        account = state.accounts.get(req.account)
        if account is None:
            return {"account": req.account, "result": "unknown", "status": None}
        result = "belongs" if account["name"] == req.name else "name_mismatch"
        return {"account": req.account, "result": result, "status": account["status"]}

    @app.get("/v1/ledger")
    async def ledger_entries(since: int = 0) -> dict[str, Any]:
        rows = state.db.execute(
            "SELECT * FROM ledger WHERE seq > ? ORDER BY seq", (since,)
        ).fetchall()
        return {"entries": [dict(r) for r in rows]}

    @app.post("/v1/faults")
    async def set_faults(req: Faults) -> dict[str, Any]:
        state.faults = req
        state.injected = {}
        return _faults_view(state)

    @app.get("/v1/faults")
    async def get_faults() -> dict[str, Any]:
        return _faults_view(state)

    @app.get("/v1/admin/callbacks")
    async def callbacks() -> dict[str, Any]:
        rows = state.db.execute(
            "SELECT id, event_id, url, attempts, status, last_error FROM callbacks ORDER BY id"
        ).fetchall()
        return {"callbacks": [dict(r) for r in rows]}

    @app.post("/v1/admin/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return app


def _faults_view(state: BankState) -> dict[str, Any]:
    return {**state.faults.model_dump(), "injected": dict(state.injected)}


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m sandbox.bank", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--ledger", type=Path, required=True, help="SQLite file of the ledger")
    parser.add_argument("--accounts", type=Path, default=ACCOUNTS_FILE)
    parser.add_argument(
        "--callback-secret",
        default=os.environ.get("SANDBOX_BANK_CALLBACK_SECRET", DEFAULT_SECRET),
        help="HMAC key of the callbacks (env SANDBOX_BANK_CALLBACK_SECRET)",
    )
    parser.add_argument("--latency-min-ms", type=float, default=20)
    parser.add_argument("--latency-max-ms", type=float, default=80)
    parser.add_argument("--exec-delay-ms", type=float, default=150, help="pending → executed")
    parser.add_argument(
        "--faults",
        default=os.environ.get("SANDBOX_BANK_FAULTS", ""),
        help="faults at start, JSON as for POST /v1/faults (env SANDBOX_BANK_FAULTS)",
    )
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        faults = Faults.model_validate_json(args.faults) if args.faults else Faults()
        app = create_app(
            ledger=args.ledger,
            accounts_file=args.accounts,
            secret=args.callback_secret,
            latency_ms=(args.latency_min_ms, args.latency_max_ms),
            exec_delay_ms=args.exec_delay_ms,
            faults=faults,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
