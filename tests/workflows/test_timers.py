"""Durable timers on the time-skipping server: SLA escalation, deadlines, reminders, overdue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from domain.calendar import add_business_days, business_date, zone
from domain.lpr import default_lpr_table
from models.tables import Application, AuditEvent, Installment, Notice, Task
from tests.api.helpers import sign_path
from tests.conftest import System
from tests.workflows.driving import MATCH_DATA, decide, drive_to, submit


async def eventually(check: Callable[[], Any], what: str, within: float = 20) -> Any:
    """Poll ``check`` until it returns something truthy (activities run asynchronously)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.1)


def open_task(system: System, app_no: str, kind: str) -> Task | None:
    with Session(system.engine) as s:
        return s.exec(
            select(Task).where(
                Task.application_no == app_no, Task.kind == kind, Task.status == "open"
            )
        ).first()


def stage_of(system: System, app_no: str) -> str:
    with Session(system.engine) as s:
        return s.exec(select(Application.stage).where(Application.application_no == app_no)).one()


async def test_overdue_task_escalates_each_sla_and_stays_decidable(sqlite_system: System) -> None:
    system = sqlite_system
    app_no = await submit(system)
    task = await eventually(lambda: open_task(system, app_no, "intake_review"), "intake task")
    assert task.priority == 50 and task.escalated_at is None

    await system.env.sleep(timedelta(hours=8, minutes=30))  # the intake SLA is 8 h
    escalated = await eventually(
        lambda: (t := open_task(system, app_no, "intake_review")) and t.escalated_at and t,
        "first escalation",
    )
    assert escalated.priority == 70
    assert escalated.due_at > task.due_at

    await system.env.sleep(timedelta(hours=8))
    again = await eventually(
        lambda: (t := open_task(system, app_no, "intake_review")) and t.priority == 90 and t,
        "second escalation",
    )
    assert again.id == task.id  # still the same task: escalation never opens a second one
    with Session(system.engine) as s:
        notices = s.exec(select(Notice).where(Notice.application_no == app_no)).all()
        assert [(n.recipient, n.template, n.payload["level"]) for n in notices] == [
            ("department_manager", "task_escalated", 1),
            ("department_manager", "task_escalated", 2),
        ]
    assert await decide(system, "ops", app_no, "intake_review", "approve") == "RISK_REVIEW"


async def test_return_for_supplement_then_deadline_expires_the_application(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    app_no = await submit(system)
    assert (
        await decide(system, "ops", app_no, "intake_review", "return", comment="缺收入证明")
        == "INTAKE_REVIEW"
    )
    supplement = await eventually(
        lambda: open_task(system, app_no, "supplement_documents"), "supplement task"
    )
    assert supplement.candidate_role == "business_officer"
    assert supplement.expires_at is not None
    # Due at 18:00 local time, five working days on (weekends skipped).
    tz = system.settings.business_timezone
    created_on = business_date(supplement.created_at, tz)
    assert business_date(supplement.expires_at, tz) == add_business_days(created_on, 5)
    assert supplement.expires_at.astimezone(zone(tz)).time() == time(18, 0)
    assert supplement.context == {
        "items": [],
        "note": "缺收入证明",
        "due": supplement.expires_at.isoformat(),
    }

    # Supplied in time: intake review comes back with a fresh task.
    assert await decide(system, "officer", app_no, "supplement_documents", "submit") == (
        "INTAKE_REVIEW"
    )
    await eventually(lambda: open_task(system, app_no, "intake_review"), "second intake task")
    await decide(system, "ops", app_no, "intake_review", "return", comment="仍缺材料")
    await eventually(lambda: open_task(system, app_no, "supplement_documents"), "2nd supplement")

    await system.env.sleep(timedelta(days=9))  # five working days, at most two weekends
    await eventually(lambda: stage_of(system, app_no) == "EXPIRED", "EXPIRED")
    with Session(system.engine) as s:
        ended = s.exec(
            select(Notice).where(
                Notice.application_no == app_no,
                Notice.template == "application_expired",
                Notice.channel == "inbox",
            )
        ).one()
    assert ended.recipient == "officer"
    assert ended.payload["reason"] == "supplement_documents passed its deadline"
    with Session(system.engine) as s:
        tasks = s.exec(
            select(Task).where(Task.application_no == app_no).order_by(col(Task.created_at))
        ).all()
        assert [(t.kind, t.status) for t in tasks] == [
            ("intake_review", "completed"),
            ("supplement_documents", "completed"),
            ("intake_review", "completed"),
            ("supplement_documents", "expired"),
        ]


async def test_unaccepted_offer_expires(sqlite_system: System) -> None:
    system = sqlite_system
    app_no = await drive_to(system, "OFFER_CONFIRMATION")
    await eventually(lambda: open_task(system, app_no, "offer_confirmation"), "offer task")
    await system.env.sleep(timedelta(days=7, hours=1))
    await eventually(lambda: stage_of(system, app_no) == "EXPIRED", "offer EXPIRED")
    assert open_task(system, app_no, "offer_confirmation") is None


async def test_unsigned_contract_expires(sqlite_system: System) -> None:
    system = sqlite_system
    app_no = await drive_to(system, "CONTRACT_SIGNING")
    link = await sign_path(system, app_no)
    await system.env.sleep(timedelta(days=5, hours=1))
    await eventually(lambda: stage_of(system, app_no) == "EXPIRED", "contract EXPIRED")
    r = await system.call("GET", f"/api/v1/loans/{app_no}", user="manager")
    assert r.json()["stage"] == "EXPIRED" and r.json()["signing"]["signed_at"] is None
    # The link the borrower holds no longer gets a code.
    r = await system.call("POST", f"{link}/code")
    assert r.status_code == 409 and "EXPIRED" in r.text


async def test_reminder_overdue_penalty_then_payment_clears_it(sqlite_system: System) -> None:
    system = sqlite_system
    app_no = await drive_to(system, "SERVICING")
    with Session(system.engine) as s:
        first = s.exec(
            select(Installment).where(Installment.application_no == app_no, Installment.number == 1)
        ).one()
    tz = system.settings.business_timezone

    # Up to the reminder: 3 days before the due date, 09:00 Shanghai.
    now = await system.env.get_current_time()
    until_reminder = (first.due_date - business_date(now, tz)).days - 3
    await system.env.sleep(timedelta(days=until_reminder, hours=12))
    await eventually(lambda: _notice(system, app_no, "installment_reminder"), "reminder notice")
    assert not _notice(system, app_no, "installment_overdue")

    # Ten days past the due date: overdue notice, status overdue, penalty accrued daily.
    await system.env.sleep(timedelta(days=13))
    overdue = await eventually(
        lambda: _notice(system, app_no, "installment_overdue"), "overdue notice"
    )
    # Marked at Shanghai midnight, but the borrower is contacted only from 08:00 (collection
    # conduct); the staff notice goes out at once.
    assert overdue.not_before is not None and overdue.not_before > overdue.created_at
    assert business_date(overdue.not_before, tz) == business_date(overdue.created_at, tz)
    assert overdue.not_before.astimezone(zone(tz)).time() == time(8, 0)
    today = business_date(await system.env.get_current_time(), tz)
    days_late = (today - first.due_date).days
    assert days_late >= 9
    row = await eventually(
        lambda: (r := _installment(system, app_no, 1)).penalty_accrued > 0 and r, "penalty"
    )
    assert row.status == "overdue"
    # The penalty accrues on overdue principal at rate × 1.5 / 360 a day, the rate capped at the
    # interest ceiling (4 × LPR), rounded to the fen at each daily accrual.
    rate = Decimal(str(MATCH_DATA["annual_rate"])) * Decimal("1.5")
    cap = 4 * default_lpr_table().in_force(first.due_date).one_year
    exact = first.principal_due * min(rate, cap) / 360 * days_late
    assert abs(row.penalty_accrued - exact) <= Decimal("0.005") * days_late + Decimal("0.01")

    # Paying what the loan view says is due now clears installment 1, penalty first.
    loan = (await system.call("GET", f"/api/v1/loans/{app_no}", user="ops")).json()
    due_now = Decimal(loan["balances"]["due_now"])
    paid_at = (await system.env.get_current_time()).isoformat()
    r = await system.call(
        "POST",
        f"/api/v1/loans/{app_no}/payments",
        user="ops",
        json={"amount": str(due_now), "paid_at": paid_at, "external_ref": f"late-{app_no}"},
    )
    assert r.status_code == 201, r.text
    lines = r.json()["allocation"]
    assert lines[0]["component"] == "penalty" and lines[0]["installment"] == 1
    assert sum(Decimal(x["amount"]) for x in lines) == due_now
    paid = await eventually(
        lambda: (r := _installment(system, app_no, 1)).status == "paid" and r, "installment 1 paid"
    )
    assert paid.penalty_paid == paid.penalty_accrued > 0


def _notice(system: System, app_no: str, template: str) -> Notice | None:
    with Session(system.engine) as s:
        return s.exec(
            select(Notice).where(Notice.application_no == app_no, Notice.template == template)
        ).first()


def _installment(system: System, app_no: str, number: int) -> Installment:
    with Session(system.engine) as s:
        return s.exec(
            select(Installment).where(
                Installment.application_no == app_no, Installment.number == number
            )
        ).one()


def _audit_actions(system: System, app_no: str) -> list[str]:
    with Session(system.engine) as s:
        return list(
            s.exec(select(AuditEvent.action).where(AuditEvent.application_no == app_no)).all()
        )
