"""The collections ladder end to end (real API, worker, activities and database, SQLite and
PostgreSQL): an overdue loan's episode sends its SMS step and opens customer service's call in
the inbox; the call's outcome goes through the inbox to the episode, a conduct rule refuses an
attempt with a 409 naming it, and ``GET /collections`` reads the log."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from typing import Any

from sqlmodel import Session, select

from domain.calendar import local_instant
from domain.identifiers import collections_workflow_id
from models.tables import Installment, Notice
from tests.conftest import System
from tests.workflows.driving import drive_to
from tests.workflows.test_timers import eventually, open_task


async def test_an_overdue_loan_is_collected_and_its_log_is_readable(system: System) -> None:
    app_no = await drive_to(system, "SERVICING")
    tz = system.settings.business_timezone
    with Session(system.engine) as s:
        first = s.exec(
            select(Installment).where(Installment.application_no == app_no, Installment.number == 1)
        ).one()
    # DPD 3, 10:00 Shanghai: the SMS step went out on DPD 1, the reminder call is open.
    at = local_instant(first.due_date + timedelta(days=3), time(10, 0), tz)
    await system.env.sleep(at - await system.env.get_current_time())
    call = await eventually(lambda: open_task(system, app_no, "reminder_call"), "reminder call")
    assert call.workflow_id == collections_workflow_id(app_no, 1)
    assert call.candidate_role == "customer_service"
    # One SMS on DPD 1: the overdue notice; the ladder's SMS step does not send a second one.
    with Session(system.engine) as s:
        sms = s.exec(
            select(Notice.template).where(Notice.application_no == app_no, Notice.channel == "sms")
        ).all()
    assert sms.count("installment_overdue") == 1 and "collections_notice" not in sms

    third_party = await system.call(
        "POST",
        f"/api/v1/tasks/{call.id}/decision",
        user="cs",
        json={"decision": "reached", "data": {"spoke_with": "employer"}},
    )
    assert third_party.status_code == 422, third_party.text
    assert "no_third_party" in third_party.text
    promised = (first.due_date + timedelta(days=6)).isoformat()
    r = await system.call(
        "POST",
        f"/api/v1/tasks/{call.id}/decision",
        user="cs",
        json={
            "decision": "promise_to_pay",
            "data": {"promise_amount": "1000.00", "promise_date": promised},
        },
    )
    assert r.status_code == 200, r.text

    async def log() -> dict[str, Any]:
        got = await system.call("GET", f"/api/v1/loans/{app_no}/collections", user="auditor")
        assert got.status_code == 200, got.text
        return dict(got.json())

    body = await log()
    for _ in range(100):  # the episode logs the outcome just after the decision is answered
        if len(body["entries"]) >= 3:
            break
        await asyncio.sleep(0.1)
        body = await log()
    steps = [(e["step"], e["channel"], e["outcome"], e["days_past_due"]) for e in body["entries"]]
    assert steps[:3] == [
        ("sms_notice", "sms", "queued", 1),
        ("reminder_call", "task", "opened", 3),
        ("reminder_call", "phone", "promise_to_pay", 3),
    ]
    assert body["entries"][0]["rule"].startswith("collection_ladder.sms_notice: at 1 days")
    assert "covered by the overdue notice" in body["entries"][0]["note"]
    contact = body["entries"][2]
    assert (contact["actor"], contact["promise_amount"], contact["promise_date"]) == (
        "cs",
        "1000.00",
        promised,
    )
    assert body["contacts"] == 1 and body["write_off"] is None
    # The product manager does not read collections.
    denied = await system.call("GET", f"/api/v1/loans/{app_no}/collections", user="product")
    assert denied.status_code == 403
