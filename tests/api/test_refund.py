"""Nothing accepted after settlement goes unaccounted (issue 12 §2), through HTTP: payments
posted at the moment the settlement is confirmed are booked before it (their money is credit,
refunded) or refused with a 409 (nothing booked, the reference released, the refusal audited);
the credit is refunded by maker and checker through the sandbox bank. Against the real API,
worker, sandbox bank and Temporal test server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.department import DepartmentActivities
from domain.audit_actions import PAYMENT_REFUSED
from models.jobs import ReconcileInput
from models.tables import (
    AuditEvent,
    FundingMovement,
    Loan,
    Notice,
    Payment,
    PaymentRef,
    Refund,
)
from tests.api.helpers import contract_row, driver, mint_demo_tokens, rows
from tests.api.test_hardening import _at_once, _concurrently
from tests.conftest import System
from tests.workflows.driving import decide, drive_to, pay, pay_off

RACERS = 4


@pytest.fixture(autouse=True)
def _demo_logins(system: System) -> None:
    mint_demo_tokens(system)


async def _wait_loan(system: System, no: str, what: str, ready: Any) -> dict[str, Any]:
    d = driver(system)
    result: dict[str, Any] = await system.in_thread(d.wait_loan, no, what, ready)
    return result


async def test_payments_racing_the_settlement_are_booked_or_refused_and_the_credit_refunded(
    system: System,
) -> None:
    no = await drive_to(system, "SERVICING")
    r = await pay_off(system, no, f"off-{no}")
    assert r.status_code == 201, r.text
    r = await pay(system, no, "12.00", "installments", f"over-{no}")
    assert r.status_code == 201 and Decimal(r.json()["credit"]) == Decimal("12.00"), r.text
    view = await _wait_loan(
        system,
        no,
        "the settlement confirmation task",
        lambda v: any(t["kind"] == "settlement_confirmation" for t in v["open_tasks"]),
    )
    task_id = next(t["id"] for t in view["open_tasks"] if t["kind"] == "settlement_confirmation")

    now = (await system.env.get_current_time()).isoformat()
    refs = [f"race-{i}-{no}" for i in range(RACERS)]
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "POST",
            f"/api/v1/tasks/{task_id}/decision",
            "ops",
            {"decision": "confirm", "comment": "账务核对无误"},
        ),
        *(
            (
                "POST",
                f"/api/v1/loans/{no}/payments",
                "ops2",
                {"amount": "5.00", "paid_at": now, "external_ref": ref},
            )
            for ref in refs
        ),
    ]
    answers = await _concurrently(system, lambda: _at_once(system, calls))
    confirmed, payments = answers[0], answers[1:]
    assert confirmed.status_code == 200, confirmed.text
    assert all(r.status_code in (201, 409) for r in payments), [r.text for r in payments]
    booked = [ref for ref, r in zip(refs, payments, strict=True) if r.status_code == 201]
    refused = [ref for ref, r in zip(refs, payments, strict=True) if r.status_code == 409]
    for r in payments:
        if r.status_code == 409:
            assert "settled" in r.json()["detail"].lower(), r.text

    view = await _wait_loan(system, no, "SETTLED", lambda v: v["stage"] == "SETTLED")
    credit = Decimal("12.00") + Decimal("5.00") * len(booked)
    # Every accepted payment is in the ledger; every refused one left no booking and no claim,
    # and is on record as going back to the payer.
    assert {p.external_ref for p in rows(system, Payment, Payment.application_no == no)} == {
        f"off-{no}",
        f"over-{no}",
        *booked,
    }
    for ref in refused:
        assert rows(system, PaymentRef, PaymentRef.external_ref == ref) == []
    audited = rows(
        system, AuditEvent, AuditEvent.application_no == no, AuditEvent.action == PAYMENT_REFUSED
    )
    assert sorted(a.detail["external_ref"] for a in audited) == sorted(refused)
    assert all(a.detail["disposition"] == "return_to_payer" for a in audited)
    with Session(system.engine) as s:
        loan = s.exec(select(Loan).where(Loan.application_no == no)).one()
        assert loan.credit == credit
    # The whole credit of the settlement is to be refunded: the maker's task is open.
    view = await _wait_loan(system, no, "the refund row", lambda v: v["refund"] is not None)
    assert view["refund"]["status"] == "awaiting_maker"
    assert Decimal(view["refund"]["amount"]) == credit

    # Maker and checker: ops2 requests; ops2 may not authorize; ops authorizes.
    await decide(system, "ops2", no, "refund", "approve", comment="金额与合同账户核对无误")
    d = driver(system)
    task = await system.in_thread(d.wait_task, "ops", no, "refund_authorization")
    r = await system.call(
        "POST",
        f"/api/v1/tasks/{task}/decision",
        user="ops2",
        json={"decision": "authorize"},
    )
    assert r.status_code == 409 and "another person" in r.text, r.text
    await decide(system, "ops", no, "refund_authorization", "authorize")
    view = await _wait_loan(
        system, no, "the refund paid", lambda v: v["refund"]["status"] == "paid"
    )
    refund = view["refund"]
    assert (refund["made_by"], refund["checked_by"]) == ("ops2", "ops")
    assert refund["order_key"] == f"refund-{no}" and refund["bank_order_id"]
    assert refund["value_date"] is not None and "*" in refund["payee_account"]
    (row,) = rows(system, Refund, Refund.application_no == no)
    assert row.amount == credit
    # The sandbox bank paid it once, to the contract's account.
    paid = [e for e in system.bank_ledger() if e["key"] == f"refund-{no}"]
    assert len(paid) == 1 and Decimal(str(paid[0]["amount"])) == credit
    assert paid[0]["direction"] == "out"
    assert paid[0]["payee_account"] == contract_row(system, no).payee_account
    # The pool the overpayment came into pays it back: one refund movement off its balance.
    (out,) = rows(system, FundingMovement, FundingMovement.key == f"refund:refund-{no}")
    assert (out.kind, out.amount, out.application_no) == ("refund", credit, no)
    (sms,) = rows(system, Notice, Notice.application_no == no, Notice.template == "refund_paid")
    assert sms.recipient == "borrower"
    # The daily reconciliation finds the refund's bank movement on record (no difference).
    settings = system.settings.model_copy(update={"reconciliation_grace_minutes": 0.0})
    outcome = ActivityEnvironment().run(
        DepartmentActivities(system.engine, settings).reconcile_bank_ledger,
        ReconcileInput(date(2030, 1, 1), f"reconcile-{no}"),
    )
    assert outcome.matched >= 2  # the payout and the refund
    assert not [d for d in outcome.to_settle if f"refund-{no}" in d.key], outcome.to_settle
