"""The sandbox bank as its own process over loopback HTTP, through the real adapter: payment
orders executed asynchronously, idempotency keys, rejections, account verification, the ledger,
signed callbacks, each injected fault, and a ledger that survives a kill -9."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.bank import (
    BankBadAnswer,
    BankOutcomeUnknown,
    BankRejected,
    BankRequestRefused,
    BankUnavailable,
    CallbackSignatureInvalid,
    HttpBank,
    PaymentOrder,
    PaymentStatus,
    verify_callback,
)
from tests.conftest import free_port
from tests.sandbox.bank_helpers import SandboxBank, sandbox_bank

POOL = "9558800200100000005"
CARD, NAME = "6222020200112233446", "张三丰"


def key() -> str:
    return f"payout-test-{uuid.uuid4()}"


def order(
    k: str, amount: str = "50000.00", *, callback_url: str | None = None, **kw: Any
) -> PaymentOrder:
    fields: dict[str, Any] = {
        "idempotency_key": k,
        "amount": Decimal(amount),
        "payee_account": CARD,
        "payee_name": NAME,
        "payer_account": POOL,
        "reference": f"放款 {k[-8:]}",
        "callback_url": callback_url,
    }
    fields.update(kw)
    return PaymentOrder(**fields)


def wait_final(client: HttpBank, k: str, timeout: float = 10) -> PaymentStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = client.status(k)
        assert status is not None
        if status.status != "pending":
            return status
        assert time.monotonic() < deadline, f"{k} still pending"
        time.sleep(0.05)


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def bank(fresh_bank: SandboxBank) -> SandboxBank:
    return fresh_bank


# ---- a callback receiver (the lender's side) ---------------------------------------------


class Receiver:
    """Records every callback the bank sends (body and headers); answers ``status``."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes, float]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls.append(({k: v for k, v in self.headers.items()}, body, time.time()))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/bank/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[Any]:
        return [
            verify_callback(
                secret,
                body,
                timestamp=headers.get("X-Bank-Timestamp"),
                signature=headers.get("X-Bank-Signature"),
            )
            for headers, body, _ in self.calls
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


# ---- orders --------------------------------------------------------------------------------


def test_a_payment_is_accepted_pending_then_executed_once_in_the_ledger(bank: SandboxBank) -> None:
    k = key()
    with HttpBank(bank.url) as client:
        accepted = client.pay(order(k))
        assert accepted.status == "pending" and accepted.value_date is None
        done = wait_final(client, k)
    assert done.status == "executed" and done.value_date is not None
    assert done.order_id == accepted.order_id
    (entry,) = bank.ledger()
    assert (entry["key"], entry["direction"], entry["amount"]) == (k, "out", "50000.00")
    assert (entry["payer_account"], entry["payee_account"]) == (POOL, CARD)


def test_the_same_key_50_times_at_once_is_one_order_and_one_ledger_entry(
    bank: SandboxBank,
) -> None:
    k = key()
    with HttpBank(bank.url) as client, ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: client.pay(order(k)), range(50)))
        assert len({a.order_id for a in answers}) == 1
        wait_final(client, k)
        time.sleep(0.3)  # time for a (wrong) second execution to show
        assert [e.key for e in client.ledger()] == [k]


def test_the_same_key_with_another_body_is_409_and_changes_nothing(bank: SandboxBank) -> None:
    k = key()
    with HttpBank(bank.url) as client:
        first = client.pay(order(k))
        with pytest.raises(BankRequestRefused) as refused:
            client.pay(order(k, "50001.00"))
        assert refused.value.status_code == 409 and not refused.value.retryable
        assert wait_final(client, k).amount == first.amount == Decimal("50000.00")
    assert len(bank.ledger()) == 1


def test_unknown_key_has_no_status(bank: SandboxBank) -> None:
    with HttpBank(bank.url) as client:
        assert client.status(key()) is None


@pytest.mark.parametrize(
    ("payee_account", "payee_name", "reason_code"),
    [
        ("6217000010001234569", "陈小雨", "ACCOUNT_CLOSED"),
        ("6225880000998877668", "赵冻结", "ACCOUNT_FROZEN"),
        (CARD, "张三", "NAME_MISMATCH"),
        ("6222020200112233115", NAME, "ACCOUNT_UNKNOWN"),
    ],
)
def test_a_bad_payee_is_rejected_with_a_reason_code_and_nothing_moves(
    bank: SandboxBank, payee_account: str, payee_name: str, reason_code: str
) -> None:
    k = key()
    with HttpBank(bank.url) as client:
        client.pay(order(k, payee_account=payee_account, payee_name=payee_name))
        final = wait_final(client, k)
        assert (final.status, final.reason_code) == ("rejected", reason_code)
        with pytest.raises(BankRejected) as rejected:
            final.raise_if_rejected()
        assert rejected.value.reason_code == reason_code
        # Sending the rejected order again is the same definitive rejection, not a new order.
        with pytest.raises(BankRejected):
            client.pay(order(k, payee_account=payee_account, payee_name=payee_name))
    assert bank.ledger() == []


def test_malformed_order_and_foreign_payer_are_refused_naming_the_field(bank: SandboxBank) -> None:
    r = httpx.post(
        f"{bank.url}/v1/payments",
        json={
            "amount": "-1",
            "payee_account": CARD,
            "payee_name": NAME,
            "payer_account": POOL,
            "reference": "x",
        },
        headers={"Idempotency-Key": key()},
        timeout=10,
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "amount"]
    with HttpBank(bank.url) as client, pytest.raises(BankRequestRefused) as refused:
        client.pay(order(key(), payer_account=CARD))
    assert refused.value.status_code == 422 and "payer_account" in str(refused.value)
    assert bank.ledger() == []


def test_account_verification(bank: SandboxBank) -> None:
    with HttpBank(bank.url) as client:
        assert client.verify_account(CARD, NAME).result == "belongs"
        assert client.verify_account(CARD, "张三").result == "name_mismatch"
        assert client.verify_account("6222020200112233115", NAME).result == "unknown"
        closed = client.verify_account("6217000010001234569", "陈小雨")
    assert (closed.result, closed.status) == ("belongs", "closed")


def test_incoming_repayment_is_in_the_ledger_once(bank: SandboxBank) -> None:
    body = {
        "amount": "8512.34",
        "payer_account": CARD,
        "payer_name": NAME,
        "payee_account": POOL,
        "reference": "还款 第1期",
    }
    k = key()
    for expected in (201, 200):
        r = httpx.post(
            f"{bank.url}/v1/incoming", json=body, headers={"Idempotency-Key": k}, timeout=10
        )
        assert r.status_code == expected and r.json()["status"] == "executed"
    (entry,) = bank.ledger()
    assert (entry["direction"], entry["amount"], entry["payee_account"]) == ("in", "8512.34", POOL)


# ---- faults ----------------------------------------------------------------------------------


def test_timeout_after_executing_is_outcome_unknown_and_status_says_executed(
    bank: SandboxBank,
) -> None:
    bank.set_faults(timeout_after_execute=1, hang_seconds=30)
    k = key()
    with HttpBank(bank.url, timeout=1.0) as client:
        started = time.monotonic()
        with pytest.raises(BankOutcomeUnknown) as unknown:
            client.pay(order(k))
        assert time.monotonic() - started < 20  # its own timeout, not the bank's 30 s hang
        assert unknown.value.retryable and unknown.value.key == k
        # The caller asks before sending again: the bank did pay.
        status = client.status(k)
        assert status is not None and status.status == "executed"
        again = client.pay(order(k))  # and a re-send with the key pays nothing more
    assert again.order_id == status.order_id
    assert len(bank.ledger()) == 1
    assert bank.faults()["injected"] == {"timeout_after_execute": 1}


def test_5xx_before_executing_is_unavailable_and_records_nothing(bank: SandboxBank) -> None:
    bank.set_faults(error_before_execute=2, error_status=500)
    k = key()
    with HttpBank(bank.url) as client:
        for _ in range(2):
            with pytest.raises(BankUnavailable, match="HTTP 500") as down:
                client.pay(order(k))
            assert not isinstance(down.value, BankOutcomeUnknown)
            assert client.status(k) is None  # nothing was recorded
        client.pay(order(k))
        assert wait_final(client, k).status == "executed"
    assert len(bank.ledger()) == 1


def test_definitive_rejection_for_the_next_n_orders(bank: SandboxBank) -> None:
    bank.set_faults(reject_next=2, reject_reason="ACCOUNT_FROZEN")
    keys = [key() for _ in range(3)]
    with HttpBank(bank.url) as client:
        for k in keys:
            client.pay(order(k))
        finals = [wait_final(client, k) for k in keys]
    assert [(f.status, f.reason_code) for f in finals] == [
        ("rejected", "ACCOUNT_FROZEN"),
        ("rejected", "ACCOUNT_FROZEN"),
        ("executed", None),
    ]
    assert [e["key"] for e in bank.ledger()] == [keys[2]]


def test_slow_responses(bank: SandboxBank) -> None:
    bank.set_faults(slow_ms=600)
    with HttpBank(bank.url) as client:
        started = time.monotonic()
        client.verify_account(CARD, NAME)
        assert time.monotonic() - started >= 0.6
        impatient = HttpBank(bank.url, timeout=0.2)
        with impatient, pytest.raises(BankUnavailable):  # a shorter timeout gives up
            impatient.verify_account(CARD, NAME)


def test_connection_refused_is_unavailable_not_unknown() -> None:
    client = HttpBank(f"http://127.0.0.1:{free_port()}", timeout=2)
    with client, pytest.raises(BankUnavailable, match="cannot reach") as down:
        client.pay(order(key()))
    assert not isinstance(down.value, BankOutcomeUnknown)


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"status": "paid"}'])
def test_an_unreadable_answer_is_a_bad_answer(body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(202, content=body))
    client = HttpBank("http://bank.invalid", transport=transport)
    with client, pytest.raises(BankBadAnswer) as bad:
        client.pay(order(key()))
    assert not bad.value.retryable


# ---- callbacks -------------------------------------------------------------------------------


def test_a_status_change_is_called_back_signed(bank: SandboxBank, receiver: Receiver) -> None:
    k = key()
    with HttpBank(bank.url) as client:
        client.pay(order(k, callback_url=receiver.url))
        wait_until(lambda: len(receiver.calls) == 1)
    (event,) = receiver.events(bank.secret)
    assert (event.order.idempotency_key, event.order.status) == (k, "executed")
    headers, body, _ = receiver.calls[0]
    assert headers["X-Bank-Event-Id"] == event.event_id
    with pytest.raises(CallbackSignatureInvalid):  # another secret
        verify_callback(
            "wrong",
            body,
            timestamp=headers["X-Bank-Timestamp"],
            signature=headers["X-Bank-Signature"],
        )
    with pytest.raises(CallbackSignatureInvalid):  # a tampered body
        verify_callback(
            bank.secret,
            body.replace(b"executed", b"rejected"),
            timestamp=headers["X-Bank-Timestamp"],
            signature=headers["X-Bank-Signature"],
        )
    with pytest.raises(CallbackSignatureInvalid):  # a replay long after
        verify_callback(
            bank.secret,
            body,
            timestamp=headers["X-Bank-Timestamp"],
            signature=headers["X-Bank-Signature"],
            now=time.time() + 3600,
        )


def test_callbacks_are_retried_until_the_receiver_accepts(
    bank: SandboxBank, receiver: Receiver
) -> None:
    receiver.status = 503
    with HttpBank(bank.url) as client:
        client.pay(order(key(), callback_url=receiver.url))
        wait_until(lambda: len(receiver.calls) >= 3)
        receiver.status = 200
        wait_until(lambda: bank.callbacks()[0]["status"] == "delivered")
    assert len({h["X-Bank-Event-Id"] for h, _, _ in receiver.calls}) == 1


def test_duplicate_callbacks_carry_one_event_id(bank: SandboxBank, receiver: Receiver) -> None:
    bank.set_faults(duplicate_callbacks=True)
    with HttpBank(bank.url) as client:
        client.pay(order(key(), callback_url=receiver.url))
        wait_until(lambda: len(receiver.calls) == 2)
    first, second = receiver.events(bank.secret)  # both validly signed
    assert first.event_id == second.event_id and first.order == second.order


def test_late_callback_arrives_after_status_already_says_executed(
    bank: SandboxBank, receiver: Receiver
) -> None:
    bank.set_faults(late_callback_seconds=3)
    k = key()
    with HttpBank(bank.url) as client:
        client.pay(order(k, callback_url=receiver.url))
        executed_seen = wait_final(client, k)
        seen_at = time.time()
        assert executed_seen.status == "executed" and receiver.calls == []
        wait_until(lambda: len(receiver.calls) == 1)
    (event,) = receiver.events(bank.secret)  # late, still validly signed
    assert event.order.status == "executed"
    assert receiver.calls[0][2] > seen_at


def test_a_callback_with_a_bad_signature_is_refused_by_the_receiver(
    bank: SandboxBank, receiver: Receiver
) -> None:
    bank.set_faults(bad_signature=True)
    with HttpBank(bank.url) as client:
        client.pay(order(key(), callback_url=receiver.url))
        wait_until(lambda: len(receiver.calls) == 1)
    with pytest.raises(CallbackSignatureInvalid, match="does not match"):
        receiver.events(bank.secret)


def test_faults_endpoint_refuses_bad_values(bank: SandboxBank) -> None:
    r = httpx.post(f"{bank.url}/v1/faults", json={"reject_next": -1}, timeout=10)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reject_next"]


# ---- durability ------------------------------------------------------------------------------


def test_kill_9_and_restart_keeps_the_ledger_and_finishes_pending_orders(
    tmp_path: Path,
) -> None:
    with sandbox_bank(tmp_path, exec_delay_ms=2000) as bank, HttpBank(bank.url) as client:
        done, pending = key(), key()
        client.pay(order(done))
        wait_final(client, done)
        client.pay(order(pending))  # executes two seconds from now: after the kill
        before = client.ledger()
        bank.kill()
        with pytest.raises(BankUnavailable):
            client.status(done)
        bank.restart()
        assert client.ledger()[: len(before)] == before
        assert client.status(done).status == "executed"  # type: ignore[union-attr]
        assert wait_final(client, pending).status == "executed"
        assert client.pay(order(done)).status == "executed"  # still idempotent
        assert [e.key for e in client.ledger()] == [done, pending]


def test_faults_from_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from loanops.processes import wait_for_http
    from loanops.settings import PROJECT_ROOT

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.bank",
            "--port",
            str(port),
            "--ledger",
            str(tmp_path / "b.db"),
            "--faults",
            json.dumps({"reject_next": 3}),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, process=proc)
        assert (
            httpx.get(f"http://127.0.0.1:{port}/v1/faults", timeout=10).json()["reject_next"] == 3
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
