"""The notice relay against the sandbox SMS gateway process and a real database (SQLite and
PostgreSQL): delivery exactly once through faults, the contact window, back-off and its limit,
secret payloads redacted, claims that keep two relays off one notice, inbox notices."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from activities.records import enqueue_notice
from adapters.sms import HttpSmsGateway
from domain.notices import REDACTED
from loanops.notice_relay import NoticeRelay, RelayConfig
from models.tables import Application, Borrower, BorrowerVersion, Notice
from tests.conftest import free_port
from tests.sandbox.helpers import SandboxSms, sandbox_sms

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture(scope="module")
def sms_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxSms]:
    with sandbox_sms(tmp_path_factory.mktemp("sms"), rate_limit=1000) as sms:
        yield sms


@pytest.fixture
def sms(sms_process: SandboxSms) -> Iterator[SandboxSms]:
    sms_process.set_faults("none")
    yield sms_process
    sms_process.set_faults("none")


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def fresh_phone() -> str:
    return f"137{uuid.uuid4().int % 10**8:08d}"


@pytest.fixture
def borrower_app(engine: Engine) -> tuple[str, str]:
    """An application whose borrower data version (2) has a phone other than the borrower's
    first record: (application number, the version's phone)."""
    no = f"LA{uuid.uuid4().hex[:12].upper()}"
    first_phone, phone = fresh_phone(), fresh_phone()
    with Session(engine) as s:
        borrower = Borrower(
            name="王五",
            id_number=uuid.uuid4().hex[:18],
            phone=first_phone,
            bank_card="6222020200112233446",
            monthly_income=Decimal("15000.00"),
        )
        s.add(borrower)
        s.flush()
        for version, p in ((1, first_phone), (2, phone)):
            s.add(
                BorrowerVersion(
                    borrower_id=borrower.id,
                    version=version,
                    name="王五",
                    phone=p,
                    bank_card="6222020200112233446",
                    monthly_income=Decimal("15000.00"),
                    recorded_at=T0,
                    recorded_by="officer",
                    reason="test",
                )
            )
        s.flush()
        s.add(
            Application(
                application_no=no,
                borrower_id=borrower.id,
                borrower_version=2,
                amount=Decimal("10000.00"),
                term_months=12,
                purpose="经营周转",
                repayment_source="工资",
                stage="SERVICING",
                submitted_by="officer",
            )
        )
        s.commit()
    return no, phone


def enqueue(engine: Engine, application_no: str, **kw: Any) -> str:
    key = kw.pop("key", f"{application_no}/{uuid.uuid4().hex[:8]}")
    fields: dict[str, Any] = {
        "channel": "sms",
        "recipient": "borrower",
        "template": "installment_reminder",
        "payload": {"installment": 1, "business_date": "2026-03-02", "days_past_due": 0},
        "created_at": T0,
    }
    fields.update(kw)
    with Session(engine) as s:
        assert enqueue_notice(s, key=key, application_no=application_no, **fields)
        s.commit()
    return key


def notice(engine: Engine, key: str) -> Notice:
    with Session(engine) as s:
        return s.exec(select(Notice).where(Notice.key == key)).one()


def relay_for(
    engine: Engine, sms: SandboxSms, clock: ManualClock, **config: Any
) -> tuple[NoticeRelay, HttpSmsGateway]:
    gateway = HttpSmsGateway(sms.url, timeout=config.pop("timeout", 2.0))
    cfg = RelayConfig(retry_base=timedelta(seconds=10), retry_cap=timedelta(minutes=5), **config)
    return NoticeRelay(engine, gateway, callback_url=lambda: None, clock=clock, config=cfg), gateway


def test_a_gateway_that_fails_then_recovers_delivers_each_notice_exactly_once(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, phone = borrower_app
    keys = [
        enqueue(
            engine,
            no,
            payload={"installment": i, "business_date": "2026-03-02", "days_past_due": 0},
        )
        for i in (1, 2, 3)
    ]
    relay, gateway = relay_for(engine, sms, clock, timeout=0.5)
    with gateway:
        # Three refusals, then one message taken whose answer never comes back in time.
        sms.set_faults("error_503", count=3)
        relay.run_once()
        assert sms.received(phone) == []
        assert {notice(engine, k).status for k in keys} == {"queued"}
        sms.set_faults("timeout", count=1, hang_seconds=3)
        for _ in range(6):
            clock.advance(timedelta(minutes=1))
            relay.run_once()
    received = sms.received(phone)
    texts = sorted(m["text"] for m in received)
    assert len(received) == 3, texts
    for i in (1, 2, 3):
        assert sum(f"第{i}期" in t for t in texts) == 1
    rows = [notice(engine, k) for k in keys]
    assert all(r.status == "sent" and r.provider_message_id for r in rows)
    assert {r.provider_message_id for r in rows} == {m["message_id"] for m in received}
    assert sum(r.attempts for r in rows) == 7  # three 503s and a lost answer were retried
    assert all(r.sent_at is not None and r.last_error is None for r in rows)
    assert no in received[0]["text"]


def test_a_retryable_failure_backs_off_exponentially_then_fails_at_the_limit(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, phone = borrower_app
    key = enqueue(engine, no)
    relay, gateway = relay_for(engine, sms, clock, max_attempts=3)
    sms.set_faults("error_503", count=10)
    with gateway:
        relay.run_once()
        first = notice(engine, key)
        assert first.status == "queued" and first.attempts == 1
        assert first.next_attempt_at == T0 + timedelta(seconds=10)
        assert "HTTP 503" in (first.last_error or "")
        relay.run_once()  # not due yet: nothing happens
        assert notice(engine, key).attempts == 1
        clock.advance(timedelta(seconds=10))
        relay.run_once()
        second = notice(engine, key)
        assert second.attempts == 2
        assert second.next_attempt_at == clock.now + timedelta(seconds=20)
        clock.advance(timedelta(seconds=20))
        relay.run_once()
    failed = notice(engine, key)
    assert failed.status == "failed" and failed.attempts == 3
    assert "HTTP 503" in (failed.last_error or "")
    assert sms.received(phone) == []


def test_a_notice_held_by_not_before_is_not_sent_early(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, phone = borrower_app
    key = enqueue(engine, no, not_before=T0 + timedelta(hours=8))
    relay, gateway = relay_for(engine, sms, clock)
    with gateway:
        relay.run_once()
        clock.advance(timedelta(hours=7, minutes=59))
        relay.run_once()
        held = notice(engine, key)
        assert held.status == "queued" and held.attempts == 0
        assert sms.received(phone) == []
        clock.advance(timedelta(minutes=1))
        relay.run_once()
    assert notice(engine, key).status == "sent"
    assert len(sms.received(phone)) == 1


def test_a_secret_payload_is_redacted_once_the_gateway_has_it(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, phone = borrower_app
    key = enqueue(engine, no, template="signing_code", payload={"code": "482913", "minutes": 10})
    relay, gateway = relay_for(engine, sms, clock)
    sms.set_faults("error_503", count=1)
    with gateway:
        relay.run_once()
        # Not accepted yet: the code is still needed for the retry.
        assert notice(engine, key).payload == {"code": "482913", "minutes": 10}
        clock.advance(timedelta(minutes=1))
        relay.run_once()
    row = notice(engine, key)
    assert row.status == "sent"
    assert row.payload == {"code": REDACTED, "minutes": REDACTED}
    (message,) = sms.received(phone)
    assert "482913" in message["text"] and "10分钟" in message["text"]


def test_two_relays_never_work_on_one_notice(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, phone = borrower_app
    keys = [enqueue(engine, no, key=f"{no}/both/{i}") for i in range(8)]
    relays = [relay_for(engine, sms, clock) for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(relay: NoticeRelay) -> None:
        barrier.wait()
        relay.run_once()

    threads = [threading.Thread(target=run, args=(r,)) for r, _ in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for _, gateway in relays:
        gateway.close()
    rows = [notice(engine, k) for k in keys]
    # Each notice was claimed once (one attempt), and sent once.
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] * 8
    assert len(sms.received(phone)) == 8


def test_a_notice_that_cannot_be_rendered_fails_at_once(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, phone = borrower_app
    missing = enqueue(engine, no, template="no_such_template", payload={})
    incomplete = enqueue(engine, no, template="signing_code", payload={"minutes": 5})
    relay, gateway = relay_for(engine, sms, clock)
    with gateway:
        relay.run_once()
    assert notice(engine, missing).status == "failed"
    assert "no template sms/no_such_template.txt" in (notice(engine, missing).last_error or "")
    assert notice(engine, incomplete).status == "failed"
    assert "code" in (notice(engine, incomplete).last_error or "")
    assert sms.received(phone) == []


def test_inbox_notices_are_delivered_at_once(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, _ = borrower_app
    key = enqueue(
        engine,
        no,
        channel="inbox",
        recipient="operations_specialist",
        template="refund_overpayment",
        payload={"amount": "12.34"},
    )
    relay, gateway = relay_for(engine, sms, clock)
    with gateway:
        assert relay.run_once() == 1
    row = notice(engine, key)
    assert row.status == "delivered" and row.delivered_at == T0 and row.attempts == 0


def test_a_gateway_that_cannot_be_reached_is_retried_later(
    engine: Engine, sms: SandboxSms, clock: ManualClock, borrower_app: tuple[str, str]
) -> None:
    no, phone = borrower_app
    key = enqueue(engine, no)
    nowhere = HttpSmsGateway(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    down = NoticeRelay(engine, nowhere, callback_url=lambda: None, clock=clock)
    with nowhere:
        down.run_once()
    row = notice(engine, key)
    assert row.status == "queued" and row.attempts == 1
    assert "cannot reach" in (row.last_error or "")
    # The gateway is back (another worker's relay, say): the notice goes out once.
    relay, gateway = relay_for(engine, sms, clock)
    clock.advance(timedelta(minutes=1))
    with gateway:
        relay.run_once()
    assert notice(engine, key).status == "sent" and notice(engine, key).attempts == 2
    assert len(sms.received(phone)) == 1
