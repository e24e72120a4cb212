"""The whole system delivers borrower SMS: an application that expires or is rejected queues a
message inside the contact window, the worker's notice relay sends it through the sandbox
gateway, and the gateway's signed receipt (to the real API) marks it delivered."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from domain.masking import mask_phone
from loanops.demo import DEMO_BORROWER
from models.tables import Notice
from tests.conftest import System
from tests.workflows.driving import decide, drive_to, submit
from tests.workflows.test_timers import eventually, open_task, stage_of

PHONE = DEMO_BORROWER["phone"]


def borrower_notice(system: System, app_no: str, template: str) -> Notice | None:
    with Session(system.engine) as s:
        return s.exec(
            select(Notice).where(
                Notice.application_no == app_no,
                Notice.template == template,
                Notice.channel == "sms",
            )
        ).first()


async def delivered(system: System, app_no: str, template: str) -> Notice:
    """Wait for the borrower's SMS of ``template`` to be delivered, skipping the test server's
    time to the contact window when the message is held for it."""
    queued = await eventually(lambda: borrower_notice(system, app_no, template), "queued SMS")
    assert queued.recipient == "borrower" and queued.not_before is not None
    now = await system.env.get_current_time()
    if queued.not_before > now:  # outside 08:00–21:00 in Shanghai: held until the window
        await system.env.sleep(queued.not_before - now + timedelta(minutes=1))
    row: Notice = await eventually(
        lambda: (n := borrower_notice(system, app_no, template)) and n.status == "delivered" and n,
        f"{template} delivered",
        within=30,
    )
    return row


def on_handset(system: System, app_no: str) -> list[dict[str, Any]]:
    """The demo borrower's messages about this application (the handset is shared)."""
    return [m for m in system.sms.received(PHONE) if app_no in m["text"]]


async def test_an_expired_application_gets_its_borrower_sms_delivered(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    app_no = await submit(system)
    await decide(system, "ops", app_no, "intake_review", "return", comment="缺收入证明")
    await eventually(lambda: open_task(system, app_no, "supplement_documents"), "supplement")
    await system.env.sleep(timedelta(days=9))
    await eventually(lambda: stage_of(system, app_no) == "EXPIRED", "EXPIRED")

    row = await delivered(system, app_no, "application_expired")
    assert row.attempts == 1 and row.provider_message_id and row.sent_at and row.delivered_at
    (message,) = on_handset(system, app_no)
    assert message["message_id"] == row.provider_message_id
    assert "已自动失效" in message["text"]

    # The officer's inbox notice is delivered too (read in the app).
    r = await system.call("GET", f"/api/v1/loans/{app_no}/notices", user="officer")
    assert r.status_code == 200, r.text
    items = {(i["channel"], i["template"]): i for i in r.json()["items"]}
    sms = items[("sms", "application_expired")]
    assert sms["status"] == "delivered" and sms["recipient"] == mask_phone(PHONE)
    assert items[("inbox", "application_expired")]["status"] == "delivered"
    assert items[("inbox", "application_expired")]["recipient"] == "officer"


async def test_a_rejected_borrower_is_told_the_reasons_in_plain_words(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    app_no = await drive_to(system, "RISK_REVIEW")
    stage = await decide(
        system,
        "risk",
        app_no,
        "risk_review",
        "reject",
        comment="内部备注：多头借贷严重",
        data={"reason_codes": ["DTI_HIGH", "DTI_VERY_HIGH", "KO_BLACKLIST"]},
    )
    assert stage == "REJECTED"
    row = await delivered(system, app_no, "application_rejected")
    assert row.payload == {"reason": "负债水平相对收入过高；未通过综合信用评估"}
    (message,) = on_handset(system, app_no)
    assert "未获批准" in message["text"]
    assert "负债水平相对收入过高；未通过综合信用评估" in message["text"]
    assert "内部备注" not in message["text"] and "黑名单" not in message["text"]
