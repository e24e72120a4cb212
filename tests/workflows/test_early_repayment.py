"""Early repayment through the API and the workflow: a payoff settles the loan with interest
only to date; a partial prepayment re-amortizes over the same term or at the same installment."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlmodel import Session, col, select

from models.tables import Installment, Loan, Notice, Payment
from tests.conftest import System
from tests.workflows.driving import MATCH_DATA, confirm_settlement, drive_to, pay, pay_off, today
from tests.workflows.test_timers import eventually, stage_of

PRINCIPAL = Decimal(str(MATCH_DATA["amount"]))
RATE = Decimal(str(MATCH_DATA["annual_rate"]))


async def _loan(system: System, app_no: str) -> dict[str, Any]:
    r = await system.call("GET", f"/api/v1/loans/{app_no}", user="ops")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _rows(system: System, app_no: str) -> list[Installment]:
    with Session(system.engine) as s:
        return list(
            s.exec(
                select(Installment)
                .where(Installment.application_no == app_no)
                .order_by(col(Installment.number))
            ).all()
        )


async def test_payoff_ten_days_in_settles_with_interest_to_date(system: System) -> None:
    app_no = await drive_to(system, "SERVICING")
    await system.env.sleep(timedelta(days=10))
    r = await system.call(
        "POST",
        f"/api/v1/loans/{app_no}/payoff-quote",
        user="cs",
        json={"as_of": await today(system)},
    )
    assert r.status_code == 200, r.text
    quote = r.json()
    days = 10
    interest = (PRINCIPAL * RATE * days / 360).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert Decimal(quote["accrued_interest"]) == interest
    assert Decimal(quote["total"]) == PRINCIPAL + interest
    assert quote["amount_to_pay"] == quote["total"]

    short = await pay(system, app_no, PRINCIPAL + interest - Decimal("0.01"), "payoff", "po-1")
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "amount"]
    assert _rows(system, app_no)[0].status == "scheduled"  # nothing changed

    paid = await pay(system, app_no, PRINCIPAL + interest, "payoff", "po-2")
    assert paid.status_code == 201, paid.text
    body = paid.json()
    # The last fen is paid: the loan waits for operations to confirm the settlement.
    assert body["mode"] == "payoff" and body["stage"] == "SERVICING"
    assert Decimal(body["credit"]) == 0
    assert sum(Decimal(x["amount"]) for x in body["allocation"]) == PRINCIPAL + interest

    await confirm_settlement(system, app_no)
    await eventually(lambda: stage_of(system, app_no) == "SETTLED", "SETTLED")
    rows = _rows(system, app_no)
    assert all(r.status == "paid" for r in rows)
    assert sum((r.principal_paid for r in rows), Decimal(0)) == PRINCIPAL
    assert sum((r.interest_paid for r in rows), Decimal(0)) == interest
    with Session(system.engine) as s:
        assert s.exec(select(Loan.status).where(Loan.application_no == app_no)).one() == "settled"
        modes = s.exec(select(Payment.mode).where(Payment.application_no == app_no)).all()
        assert modes == ["payoff"]


async def test_partial_prepayment_keep_term_lowers_the_installments(sqlite_system: System) -> None:
    system = sqlite_system
    app_no = await drive_to(system, "SERVICING")
    before = await _loan(system, app_no)
    old_payment = Decimal(before["installments"][1]["principal"]) + Decimal(
        before["installments"][1]["interest"]
    )
    await system.env.sleep(timedelta(days=10))

    r = await pay(system, app_no, Decimal("5000.00"), "keep_term", "pp-1")
    assert r.status_code == 201, r.text
    assert r.json()["stage"] == "SERVICING"
    after = await _loan(system, app_no)
    assert len(after["installments"]) == 3
    new_payment = Decimal(after["installments"][1]["principal"]) + Decimal(
        after["installments"][1]["interest"]
    )
    assert new_payment < old_payment
    assert sum(Decimal(i["principal"]) for i in after["installments"]) == PRINCIPAL
    assert Decimal(after["balances"]["principal_outstanding"]) < PRINCIPAL - Decimal("4900")
    rows = [r for r in _rows(system, app_no) if r.status != "cancelled"]
    assert [(str(r.principal_due), str(r.interest_due)) for r in rows] == [
        (i["principal"], i["interest"]) for i in after["installments"]
    ]

    # The rest of the loan can still be paid off, and then it is settled.
    done = await pay_off(system, app_no, "pp-2")
    assert done.status_code == 201, done.text
    assert done.json()["stage"] == "SERVICING"  # until the settlement is confirmed
    await confirm_settlement(system, app_no)
    await eventually(lambda: stage_of(system, app_no) == "SETTLED", "SETTLED")


async def test_partial_prepayment_keep_installment_shortens_the_term(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    app_no = await drive_to(system, "SERVICING")
    await system.env.sleep(timedelta(days=10))
    r = await pay(system, app_no, Decimal("5000.00"), "keep_installment", "ki-1")
    assert r.status_code == 201, r.text
    after = await _loan(system, app_no)
    assert len(after["installments"]) == 2
    assert sum(Decimal(i["principal"]) for i in after["installments"]) == PRINCIPAL
    rows = _rows(system, app_no)
    assert [r.status for r in rows][-1] == "cancelled"
    assert len(rows) == 3


async def test_overpayment_held_as_credit_pays_the_next_installment_on_its_due_date(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    await system.use_policy(overpayment="credit")
    app_no = await drive_to(system, "SERVICING")
    first, second = (await _loan(system, app_no))["installments"][:2]
    due1, due2 = Decimal(first["outstanding"]), Decimal(second["outstanding"])

    r = await pay(system, app_no, due1 + due2, "installments", "cr-1")
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["credit"]) == due2  # held, not applied to installment 2 yet
    assert {x["installment"] for x in r.json()["allocation"]} == {1}

    await system.env.sleep(timedelta(days=62))  # past installment 2's due date
    rows = await eventually(
        lambda: (rs := _rows(system, app_no))[1].status == "paid" and rs, "credit applied"
    )
    assert rows[1].principal_paid == rows[1].principal_due
    with Session(system.engine) as s:
        credit_payment = s.exec(
            select(Payment).where(Payment.application_no == app_no, Payment.mode == "credit")
        ).one()
        notices = s.exec(select(Notice.template).where(Notice.application_no == app_no)).all()
    assert credit_payment.amount == 0 and credit_payment.credit_after == 0
    assert sum(Decimal(line["amount"]) for line in credit_payment.allocation) == due2
    assert "installment_overdue" not in notices  # installment 2 was never overdue
