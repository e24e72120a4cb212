"""A loan through every stage over HTTP, against a real worker on a real Temporal server."""

from __future__ import annotations

import functools
import io
from decimal import Decimal

from pypdf import PdfReader
from sqlmodel import Session, col, select

from loanops.demo import DEMO_BORROWER, read_sms_from_handset, run_demo
from models.tables import (
    AuditEvent,
    Disbursement,
    FundingMovement,
    Installment,
    Loan,
    Payment,
    Task,
)
from tests.api.helpers import ORIGINATION, latest_signing_code, signing_link
from tests.conftest import DEMO_PASSWORD, System, workflow_runs

ALL_STAGES = [*ORIGINATION, "SETTLED"]


async def test_demo_drives_a_loan_to_settled(system: System) -> None:
    said: list[str] = []
    application_no = await system.in_thread(
        run_demo,
        system.http,
        password=DEMO_PASSWORD,
        say=said.append,
        read_sms=functools.partial(read_sms_from_handset, system.engine, system.sms.url),
        clock=await system.clock(),
        bank_url=system.bank.url,
    )

    r = await system.call("GET", f"/api/v1/loans/{application_no}", user="manager")
    assert r.status_code == 200
    loan = r.json()
    assert loan["stage"] == "SETTLED"
    assert loan["source"] == "database"
    assert all(i["status"] == "paid" for i in loan["installments"])
    assert loan["balances"]["total_outstanding"] == "0.00"

    timeline = (
        await system.call("GET", f"/api/v1/loans/{application_no}/timeline", user="auditor")
    ).json()["entries"]
    entered = [e["detail"]["stage"] for e in timeline if e["action"] == "stage.entered"]
    assert entered == ALL_STAGES
    actions = [e["action"] for e in timeline]
    for expected in (
        "intake_review.return",
        "document.uploaded",
        "supplement_documents.submit",
        "application.assessed",
        "intake_review.approve",
        "risk_review.approve",
        "product_matching.approve",
        "offer_confirmation.accept",
        "contract.code_sent",
        "contract.signed",
        "lender_seal.seal",
        "contract.sealed",
        "disbursement.approve",
        "payout.prechecked",
        "payout.order_sent",
        "loan.disbursed",
        "loan.settled",
    ):
        assert expected in actions
    assert [e["actor"] for e in timeline if e["action"] == "disbursement.approve"] == ["ops2"]
    assert [e["actor"] for e in timeline if e["action"] == "contract.sealed"] == ["manager"]
    assert actions.index("contract.sealed") < actions.index("loan.disbursed")

    pdf = await system.call("GET", f"/api/v1/loans/{application_no}/contract.pdf", user="ops")
    assert pdf.status_code == 200
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert DEMO_BORROWER["name"] in text
    assert "50,000.00" in text
    assert "伍万元整" in text
    assert "Signing record" in text  # the signed PDF, its record the last page

    # Whatever upfront fee the demo's product states is paid with installment 1, never deducted
    # (the demo's small-business loan has none; tests/api/test_money_figures.py has one).
    with Session(system.engine) as s:
        payout = s.exec(
            select(Disbursement).where(Disbursement.application_no == application_no)
        ).one()
        rows = s.exec(
            select(Installment)
            .where(Installment.application_no == application_no, Installment.status != "cancelled")
            .order_by(col(Installment.number))
        ).all()
    assert payout.net_amount == payout.amount == Decimal("50000.00")
    assert rows[0].fee_paid == Decimal(loan["terms"]["upfront_fee"])
    paid = {
        name: sum((getattr(r, f"{name}_paid") for r in rows), Decimal(0))
        for name in ("principal", "interest", "fee", "penalty")
    }
    # The settlement certificate exists once the demo has settled, and holds the ledger's totals.
    assert loan["settlement_certificate_url"].endswith("/settlement-certificate.pdf")
    cert = await system.call("GET", loan["settlement_certificate_url"], user="ops")
    assert cert.status_code == 200
    ctext = "".join(p.extract_text() for p in PdfReader(io.BytesIO(cert.content)).pages)
    assert "结清证明" in ctext and DEMO_BORROWER["name"] in ctext
    assert paid["principal"] == Decimal("50000.00")
    for name, amount in paid.items():
        assert f"{amount:,}" in ctext, name
    assert f"{sum(paid.values(), Decimal(0)):,}" in ctext
    assert "settlement_certificate.issued" in actions

    with Session(system.engine) as s:
        tasks = s.exec(select(Task).where(Task.application_no == application_no)).all()
        assert sorted(t.kind for t in tasks) == sorted(
            [
                "intake_review",
                "supplement_documents",
                "intake_review",
                "risk_review",
                "product_matching",
                "offer_confirmation",
                "lender_seal",
                "disbursement",
                # ¥50,000 is not above the policy's limit: no manager authorization.
                "disbursement_authorization",
                "settlement_confirmation",
            ]
        )
        assert {t.status for t in tasks} == {"completed"}
        loan_row = s.exec(select(Loan).where(Loan.application_no == application_no)).one()
        assert loan_row.status == "settled" and loan_row.settled_at is not None
        assert loan_row.principal == Decimal("50000.00")
        installments = s.exec(
            select(Installment).where(Installment.application_no == application_no)
        ).all()
        payments = s.exec(select(Payment).where(Payment.application_no == application_no)).all()
        due = sum((i.principal_due + i.interest_due + i.fee_due for i in installments), Decimal(0))
        assert sum((p.amount for p in payments), Decimal(0)) == due
        assert sum((i.principal_due for i in installments), Decimal(0)) == Decimal("50000.00")
        disb = s.exec(
            select(Disbursement).where(Disbursement.application_no == application_no)
        ).one()
        assert all(disb.checklist.values())
        assert len(disb.checklist) == 11  # every item of domain.payout.Check
        # Paid by the sandbox bank, once, to the contract's account, on its value date.
        assert disb.idempotency_key == f"disburse-{application_no}"
        assert disb.bank_order_id and disb.value_date is not None
        assert disb.bank_card == DEMO_BORROWER["bank_card"]
        events = s.exec(
            select(AuditEvent)
            .where(AuditEvent.application_no == application_no)
            .order_by(col(AuditEvent.occurred_at))
        ).all()
        assert len({e.event_key for e in events}) == len(events)
    assert said[-1].endswith("SETTLED")
    paid_out = [e for e in system.bank_ledger() if e["key"] == disb.idempotency_key]
    assert [(e["direction"], e["amount"], e["payee_account"]) for e in paid_out] == [
        ("out", "50000.00", DEMO_BORROWER["bank_card"])
    ]
    # Each repayment arrived at the bank into the pool's account and grew the pool once.
    paid_in = [e for e in system.bank_ledger() if e["direction"] == "in"]
    with Session(system.engine) as s:
        payments = s.exec(select(Payment).where(Payment.application_no == application_no)).all()
        inflows = s.exec(
            select(FundingMovement).where(
                FundingMovement.application_no == application_no, FundingMovement.kind == "inflow"
            )
        ).all()
    assert sorted(e["key"] for e in paid_in) == sorted(p.external_ref for p in payments)
    assert sorted((m.reference, m.amount) for m in inflows) == sorted(
        (p.external_ref, p.amount) for p in payments
    )
    authorized = "disbursement_authorization.authorize"
    assert [e["actor"] for e in timeline if e["action"] == authorized] == ["ops3"]

    # Two assessment rounds: the papers were missing, then attached.
    page = (await system.call("GET", f"/api/v1/applications/{application_no}", user="ops")).json()
    assert page["assessment"]["round"] == 2
    checks = {c["code"]: c["outcome"] for c in page["assessment"]["checks"]}
    assert checks["documents"] == "pass" and checks["purpose"] == "pass"
    assert {d["kind"] for d in page["documents"]} >= {
        "id_card_front",
        "id_card_back",
        "income_proof",
    }

    # No personal data in workflow history, in any run (the signer's name and address stay in
    # the database; the workflows carry ids, figures and hashes), nor the link or the code.
    runs = await workflow_runs(system.client, application_no)
    assert [
        r.events[0].workflow_execution_started_event_attributes.workflow_type.name for r in runs
    ] == ["OriginationWorkflow", "ServicingWorkflow"]
    for run in runs:
        text = run.to_json()
        for secret in (
            DEMO_BORROWER["name"],
            DEMO_BORROWER["id_number"],
            DEMO_BORROWER["phone"],
            DEMO_BORROWER["bank_card"],
            (await signing_link(system, application_no)).rsplit(".", 1)[1],
            f'"{await latest_signing_code(system, application_no)}"',
        ):
            assert secret not in text
