"""The API's side of notices: a loan's notices by role (masked number, secret texts never shown)
and the SMS gateway's signed delivery receipts (401 unsigned, idempotent)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from adapters.sms import SIGNATURE_HEADER, receipt_signature
from domain.masking import mask_phone
from loanops.seed import seed_demo_users
from loanops.settings import Settings
from models.tables import Application, Borrower, Notice
from tests.conftest import DEMO_PASSWORD, _demo_password_hash, _tokens

PHONE = "13912345678"
SECRET = "receipts-test-secret"
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from api.app import create_app

    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_password_hash())
    settings = Settings(
        environment="test", temporal_address="127.0.0.1:9", sms_callback_secret=SECRET
    )
    with TestClient(create_app(settings, engine=engine)) as http:
        yield http, _tokens(settings)


@pytest.fixture
def loan(engine: Engine) -> str:
    """An application with a sent reminder, a signing code (sent, payload redacted) and one
    still queued (the code in its payload), and an inbox notice."""
    no = f"LA{uuid.uuid4().hex[:12].upper()}"
    with Session(engine) as s:
        borrower = Borrower(
            name="赵六",
            id_number=uuid.uuid4().hex[:18],
            phone=PHONE,
            bank_card="6222020200112233446",
            monthly_income=Decimal("9000.00"),
        )
        s.add(borrower)
        s.flush()
        s.add(
            Application(
                application_no=no,
                borrower_id=borrower.id,
                amount=Decimal("10000.00"),
                term_months=12,
                purpose="经营周转",
                repayment_source="工资",
                stage="SERVICING",
                submitted_by="officer",
            )
        )
        common: dict[str, Any] = {"application_no": no, "created_at": T0}
        s.add(
            Notice(
                key=f"{no}/reminder",
                channel="sms",
                recipient="borrower",
                template="installment_reminder",
                payload={"installment": 2, "business_date": "2026-03-02", "days_past_due": 0},
                status="sent",
                attempts=1,
                provider_message_id=f"SM{uuid.uuid4().hex[:20].upper()}",
                sent_at=T0 + timedelta(seconds=1),
                **common,
            )
        )
        s.add(
            Notice(
                key=f"{no}/code/1",
                channel="sms",
                recipient="borrower",
                template="signing_code",
                payload={"code": "[redacted]", "minutes": "[redacted]"},
                status="sent",
                attempts=1,
                **common,
            )
        )
        s.add(
            Notice(
                key=f"{no}/code/2",
                channel="sms",
                recipient="borrower",
                template="signing_code",
                payload={"code": "771203", "minutes": 10},
                **common,
            )
        )
        s.add(
            Notice(
                key=f"{no}/refund",
                channel="inbox",
                recipient="operations_specialist",
                template="refund_overpayment",
                payload={"amount": "8.00"},
                **common,
            )
        )
        s.commit()
    return no


def get(api: tuple[TestClient, dict[str, str]], url: str, username: str | None) -> Any:
    http, tokens = api
    headers = {"Authorization": f"Bearer {tokens[username]}"} if username else {}
    return http.get(url, headers=headers)


@pytest.mark.parametrize("username", ["officer", "ops", "cs", "manager", "auditor"])
def test_staff_with_need_to_know_see_the_notices_masked_and_without_secrets(
    api: tuple[TestClient, dict[str, str]], loan: str, username: str
) -> None:
    r = get(api, f"/api/v1/loans/{loan}/notices", username)
    assert r.status_code == 200, r.text
    items = {
        i["template"] + ("/q" if i["status"] == "queued" else ""): i for i in r.json()["items"]
    }
    reminder = items["installment_reminder"]
    assert reminder["recipient"] == mask_phone(PHONE) == "139****5678"
    assert reminder["status"] == "sent" and reminder["attempts"] == 1
    assert reminder["sent_at"] is not None and reminder["delivered_at"] is None
    assert "第2期" in reminder["text"] and reminder["secret"] is False
    for key in ("signing_code", "signing_code/q"):
        assert items[key]["secret"] is True and items[key]["text"] is None
    assert items["refund_overpayment/q"]["recipient"] == "operations_specialist"
    assert "8.00" in items["refund_overpayment/q"]["text"]
    assert PHONE not in r.text
    assert "771203" not in r.text  # a code still waiting to be sent is never shown either
    assert "payload" not in reminder


@pytest.mark.parametrize("username", ["product", "risk"])
def test_roles_without_need_to_know_are_refused(
    api: tuple[TestClient, dict[str, str]], loan: str, username: str
) -> None:
    r = get(api, f"/api/v1/loans/{loan}/notices", username)
    assert r.status_code == 403
    assert "read_notices requires one of" in r.json()["detail"]


def test_an_unknown_loan_is_404_and_no_login_is_401(
    api: tuple[TestClient, dict[str, str]], loan: str
) -> None:
    assert get(api, "/api/v1/loans/A20990101-NOSUCH/notices", "manager").status_code == 404
    assert get(api, f"/api/v1/loans/{loan}/notices", None).status_code == 401


# ---- delivery receipts -------------------------------------------------------------------


def message_id_of(engine: Engine, key: str) -> str:
    with Session(engine) as s:
        n = s.exec(select(Notice).where(Notice.key == key)).one()
    assert n.provider_message_id is not None
    return n.provider_message_id


def post_receipt(
    api: tuple[TestClient, dict[str, str]], body: dict[str, Any], secret: str | None = SECRET
) -> Any:
    http, _ = api
    raw = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[SIGNATURE_HEADER] = receipt_signature(raw, secret)
    return http.post("/api/v1/sms/receipts", content=raw, headers=headers)


def notice_row(engine: Engine, key: str) -> Notice:
    with Session(engine) as s:
        return s.exec(select(Notice).where(Notice.key == key)).one()


def test_a_signed_receipt_marks_the_notice_delivered_once(
    api: tuple[TestClient, dict[str, str]], engine: Engine, loan: str
) -> None:
    key = f"{loan}/reminder"
    mid = message_id_of(engine, key)
    at = (T0 + timedelta(seconds=5)).isoformat()
    body = {"message_id": mid, "status": "delivered", "at": at}
    r = post_receipt(api, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"message_id": mid, "status": "delivered"}
    row = notice_row(engine, key)
    assert row.status == "delivered" and row.delivered_at == T0 + timedelta(seconds=5)

    # The gateway retries a receipt: the same answer, nothing changes.
    later = {**body, "at": (T0 + timedelta(minutes=5)).isoformat()}
    assert post_receipt(api, later).json() == {"message_id": mid, "status": "delivered"}
    assert notice_row(engine, key).delivered_at == T0 + timedelta(seconds=5)
    # A contradicting late receipt does not undo a delivery either.
    assert post_receipt(api, {**body, "status": "undeliverable"}).json()["status"] == "delivered"


def test_an_undeliverable_receipt_fails_the_notice(
    api: tuple[TestClient, dict[str, str]], engine: Engine, loan: str
) -> None:
    key = f"{loan}/reminder"
    mid = message_id_of(engine, key)
    r = post_receipt(api, {"message_id": mid, "status": "undeliverable", "at": T0.isoformat()})
    assert r.status_code == 200 and r.json()["status"] == "failed"
    row = notice_row(engine, key)
    assert row.status == "failed" and "undeliverable" in (row.last_error or "")


@pytest.mark.parametrize("secret", [None, "someone-else", ""])
def test_an_unsigned_or_wrongly_signed_receipt_is_401_and_changes_nothing(
    api: tuple[TestClient, dict[str, str]], engine: Engine, loan: str, secret: str | None
) -> None:
    key = f"{loan}/reminder"
    mid = message_id_of(engine, key)
    r = post_receipt(
        api, {"message_id": mid, "status": "delivered", "at": T0.isoformat()}, secret=secret
    )
    assert r.status_code == 401
    assert notice_row(engine, key).status == "sent"


def test_a_receipt_for_an_unknown_message_is_404_and_a_malformed_one_422(
    api: tuple[TestClient, dict[str, str]], loan: str
) -> None:
    unknown = {"message_id": "SMNOSUCH", "status": "delivered", "at": T0.isoformat()}
    assert post_receipt(api, unknown).status_code == 404
    bad = post_receipt(api, {"message_id": "SMX", "status": "read", "at": "yesterday"})
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "status"), ("body", "at")}
