"""A long loan keeps its history small: servicing continues as new, carrying the ledger, and the
loan goes on to settle in a later run."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlmodel import Session, select

from models.tables import Installment, Notice
from tests.conftest import System
from tests.workflows.driving import confirm_settlement, drive_to, pay_off
from tests.workflows.test_timers import eventually, stage_of


async def test_servicing_continues_as_new_and_still_settles(sqlite_system: System) -> None:
    system = sqlite_system
    await system.use_policy(continue_as_new_after_events=150)
    app_no = await drive_to(system, "SERVICING")
    handle = system.client.get_workflow_handle(f"loan-{app_no}")
    first_run = (await handle.describe()).run_id

    await system.env.sleep(timedelta(days=75))  # two installments overdue, daily refreshes
    await eventually(
        lambda: _notice_count(system, app_no, "installment_overdue") == 2, "two overdue notices"
    )
    latest = await handle.describe()
    assert latest.run_id != first_run
    history = await handle.fetch_history()
    assert len(history.events) < 200  # the current run's history, not the whole loan's

    # The ledger came across intact: the loan view (from the latest run) matches the rows.
    r = await system.call("GET", f"/api/v1/loans/{app_no}", user="ops")
    loan = r.json()
    assert loan["stage"] == "SERVICING"
    assert loan["balances"]["days_past_due"] > 30
    with Session(system.engine) as s:
        rows = s.exec(select(Installment).where(Installment.application_no == app_no)).all()
    assert {r.number: r.penalty_accrued for r in rows} == {
        i["number"]: Decimal(i["penalty"]) for i in loan["installments"]
    }

    paid = await pay_off(system, app_no, f"can-{app_no}")
    assert paid.status_code == 201, paid.text
    await confirm_settlement(system, app_no)
    await eventually(lambda: stage_of(system, app_no) == "SETTLED", "SETTLED")
    assert _notice_count(system, app_no, "installment_reminder") == 2  # none sent twice


def _notice_count(system: System, app_no: str, template: str) -> int:
    with Session(system.engine) as s:
        return len(
            s.exec(
                select(Notice).where(Notice.application_no == app_no, Notice.template == template)
            ).all()
        )
