"""A loan keeps the policy version it started with: quotes, views and payments of a running loan
use it after a new version comes into force, and the database view of a loan equals the live one
(rate cap and penalty accrual date included)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlmodel import Session, select

from api.loan_views import load_application, record_from_database
from domain.identifiers import STATE_QUERY
from models.shapes import LoanView
from models.tables import Application, AuditEvent, Task
from tests.conftest import System
from tests.workflows.driving import confirm_settlement, drive_to, pay, today
from tests.workflows.test_timers import eventually, stage_of


async def test_a_running_loan_is_quoted_and_paid_off_under_its_own_policy(system: System) -> None:
    app_no = await drive_to(system, "SERVICING")
    await system.env.sleep(timedelta(days=40))  # installment 1 overdue: penalty accrues
    # The department grants 60 days of grace from now on: new loans only.
    newer = await system.use_policy(penalty_grace_days=60)
    later = await drive_to(system, "INTAKE_REVIEW")

    loan = (await system.call("GET", f"/api/v1/loans/{app_no}", user="ops")).json()
    assert loan["policy_version"] == 1
    assert Decimal(loan["balances"]["penalty"]) > 0  # no grace for this loan
    quote = await system.call(
        "POST",
        f"/api/v1/loans/{app_no}/payoff-quote",
        user="ops",
        json={"as_of": await today(system)},
    )
    assert quote.status_code == 200, quote.text
    assert Decimal(quote.json()["penalty"]) == Decimal(loan["balances"]["penalty"])

    # Paying exactly what the quote says settles the loan (it was refused before).
    paid = await pay(system, app_no, quote.json()["amount_to_pay"], "payoff", f"po-{app_no}")
    assert paid.status_code == 201, paid.text
    await confirm_settlement(system, app_no)
    await eventually(lambda: stage_of(system, app_no) == "SETTLED", "SETTLED")

    new_loan = (await system.call("GET", f"/api/v1/loans/{later}", user="ops")).json()
    assert new_loan["policy_version"] == newer.version
    with Session(system.engine) as s:
        assert (
            s.exec(
                select(Application.policy_version).where(Application.application_no == later)
            ).one()
            == newer.version
        )
        # Decisions record the version they were taken under.
        closed = s.exec(
            select(AuditEvent).where(
                AuditEvent.application_no == app_no, AuditEvent.action == "intake_review.approve"
            )
        ).one()
        assert closed.detail["policy_version"] == 1
        opened = s.exec(select(Task).where(Task.application_no == later)).first()
        assert opened is not None and opened.policy_version == newer.version


async def test_the_database_view_of_a_loan_equals_the_live_view(system: System) -> None:
    """One read path, two sources: the rows the activities keep equal the workflow's state,
    so a closed loan's view has the same rate cap and penalty accrual dates."""
    app_no = await drive_to(system, "SERVICING")
    await system.env.sleep(timedelta(days=40))  # overdue, refreshed daily
    view = await system.client.get_workflow_handle(f"loan-{app_no}").query(
        STATE_QUERY, result_type=LoanView
    )
    with Session(system.engine) as s:
        app, borrower = load_application(s, app_no, None)
        stored = record_from_database(s, app, borrower)
    assert view.offer is not None
    assert stored.rate_cap == view.offer.rate_cap
    assert stored.policy == view.policy
    assert stored.installments == view.installments
    overdue = [i for i in stored.installments if i.penalty_accrued > 0]
    assert overdue and all(i.penalty_accrued_through is not None for i in overdue)
