"""One loan with an upfront fee, through the whole system: the borrower receives the whole
principal, and the schedule, the ledger (loan view), the offer, the quote endpoint, the contract's
extracted PDF text and the settlement certificate show the same figures, each checked against
values computed here independently (textbook formula, numpy_financial IRR)."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy_financial as npf
from pypdf import PdfReader
from sqlmodel import Session, col, select
from temporalio.client import WorkflowExecutionStatus

from domain.identifiers import workflow_id
from domain.numerals import amount_in_capitals
from domain.products import SEED_CATALOG
from loanops.demo import DEMO_BORROWER
from loanops.products import create_product
from models.tables import Disbursement, Installment, Loan, contract_of
from tests.api.helpers import (
    PRODUCT_TERMS,
    add_months_clamped,
    application_body,
    drive,
    driver,
    equal_installment_rows,
    fen,
    mint_demo_tokens,
    money,
    submit,
)
from tests.conftest import System, workflow_runs
from tests.workflows.driving import confirm_settlement, pay_off
from tests.workflows.test_timers import eventually, stage_of

PRINCIPAL = Decimal("50000.00")
RATE = Decimal("0.108")
TERM = 6
FEE = Decimal("150.00")
# The tests' LPR table ends with 3.00 % (2025-05-20): the ceiling is 4 × 3 % = 12 %, below
# the 24 % line, so the penalty rate charged is min(10.8 % × 1.5 = 16.2 %, 12 %) = 12 %.
PENALTY_RATE = min(RATE * Decimal("1.5"), Decimal("0.12"))


def _pdf_text(content: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.0001'))}%"


async def test_every_document_and_view_shows_the_same_figures(system: System) -> None:
    mint_demo_tokens(system)
    # The product manager's product with a fixed service fee (the fee is the product's).
    smb = next(d for d in SEED_CATALOG if d.code == PRODUCT_TERMS["product_code"])
    now = datetime.now(UTC)
    await system.in_thread(
        create_product,
        system.engine,
        replace(smb, code="SMB_WITH_FEE", name="经营贷（含服务费）", upfront_fee=FEE),
        effective_from=date(2026, 1, 1),
        today=date(2026, 1, 1),
        by="pm",
        at=now,
    )
    terms = {**PRODUCT_TERMS, "product_code": "SMB_WITH_FEE"}
    assert (PRODUCT_TERMS["amount"], PRODUCT_TERMS["term_months"]) == ("50000.00", TERM)
    application_no = await submit(system)
    loan = await drive(system, application_no, "SERVICING", terms)
    with Session(system.engine) as s:
        row = s.exec(select(Loan).where(Loan.application_no == application_no)).one()
        start = row.start_date
        payout = s.exec(
            select(Disbursement).where(Disbursement.application_no == application_no)
        ).one()
    assert start is not None

    # The borrower received the whole principal.
    assert (payout.amount, payout.net_amount) == (PRINCIPAL, PRINCIPAL)

    # The schedule, computed here: level payments, the fee with installment 1.
    expected = equal_installment_rows(PRINCIPAL, RATE, TERM)
    expected[0]["fee"] += FEE
    expected[0]["payment"] += FEE
    payments = [e["payment"] for e in expected]
    irr = Decimal(repr(npf.irr([-float(PRINCIPAL), *(float(p) for p in payments)])))
    total_interest = sum((e["interest"] for e in expected), Decimal(0))
    total_payment = sum(payments, Decimal(0))
    assert total_payment == PRINCIPAL + total_interest + FEE

    # The ledger as the loan view shows it.
    assert [i["number"] for i in loan["installments"]] == list(range(1, TERM + 1))
    for got, want, k in zip(loan["installments"], expected, range(1, TERM + 1), strict=True):
        assert got["due_date"] == add_months_clamped(start, k).isoformat()
        assert (got["principal"], got["interest"], got["fee"]) == (
            money(want["principal"]),
            money(want["interest"]),
            money(want["fee"]),
        ), k
        assert got["outstanding"] == money(want["payment"])

    # The offer's figures (the loan view's terms).
    t = loan["terms"]
    assert (t["principal"], t["upfront_fee"]) == (money(PRINCIPAL), money(FEE))
    assert t["total_interest"] == money(total_interest)
    assert t["total_fees"] == money(FEE)
    assert t["total_payment"] == money(total_payment)
    assert abs(Decimal(t["apr"]) - 12 * irr) < Decimal("0.000002")
    assert abs(Decimal(t["apr_compound"]) - ((1 + irr) ** 12 - 1)) < Decimal("0.000002")

    # The quote endpoint, for the same terms from the same date.
    r = await system.call(
        "POST",
        "/api/v1/quotes/schedule",
        user="cs",
        json={
            "principal": str(PRINCIPAL),
            "annual_rate": str(RATE),
            "term_months": TERM,
            "method": "equal_installment",
            "start_date": start.isoformat(),
            "upfront_fee": str(FEE),
            "monthly_fee": "0",
        },
    )
    assert r.status_code == 200, r.text
    q = r.json()
    assert [line["payment"] for line in q["installments"]] == [money(p) for p in payments]
    assert [line["fee"] for line in q["installments"]] == [money(e["fee"]) for e in expected]
    assert (q["apr"], q["apr_compound"]) == (t["apr"], t["apr_compound"])
    assert (q["total_fees"], q["total_payment"]) == (t["total_fees"], t["total_payment"])

    # The contract's extracted text.
    pdf = await system.call("GET", f"/api/v1/loans/{application_no}/contract.pdf", user="ops")
    assert pdf.status_code == 200
    text = _pdf_text(pdf.content)
    flat = "".join(text.split())
    assert DEMO_BORROWER["name"] in text and DEMO_BORROWER["id_number"] in text
    assert system.settings.lender_name.replace(" ", "") in flat
    assert "50,000.00" in text and f"人民币{amount_in_capitals(PRINCIPAL)}" in flat
    assert _pct(Decimal(t["apr"])) in text and _pct(Decimal(t["apr_compound"])) in text
    for e in expected:
        assert f"{e['payment']:,}" in text
        assert f"{e['principal']:,}" in text
    assert f"{total_payment:,}" in text
    assert f"一次性服务费：人民币{FEE}元（大写：人民币{amount_in_capitals(FEE)}）" in flat
    assert f"费用合计人民币{FEE}元" in flat
    # The penalty rate printed is the one the ledger charges (below: an overdue installment).
    match = re.search(r"罚息年利率为(\d+\.\d{4})%", flat)
    assert match is not None
    assert Decimal(match.group(1)) / 100 == PENALTY_RATE
    assert _pct(PENALTY_RATE / 360) in text

    # Customer service sees PII masked: the contract (full identity number) is not theirs.
    r = await system.call("GET", f"/api/v1/loans/{application_no}/contract.pdf", user="cs")
    assert r.status_code == 403
    # No settlement certificate before the loan settles.
    cert_path = f"/api/v1/loans/{application_no}/settlement-certificate.pdf"
    assert (await system.call("GET", cert_path, user="ops")).status_code == 404

    # Installment 1 goes unpaid: the ledger charges the contract's penalty rate on its principal.
    await system.env.sleep(timedelta(days=40))
    overdue = (await system.call("GET", f"/api/v1/loans/{application_no}", user="ops")).json()
    days = overdue["balances"]["days_past_due"]
    assert days > 0
    first = overdue["installments"][0]
    assert first["status"] == "overdue"
    assert Decimal(first["penalty"]) == fen(expected[0]["principal"] * PENALTY_RATE * days / 360)

    # Paid off: the certificate is linked from the loan and holds the ledger's totals.
    r = await pay_off(system, application_no, f"payoff-{application_no}")
    assert r.status_code == 201, r.text
    await confirm_settlement(system, application_no)
    await eventually(lambda: stage_of(system, application_no) == "SETTLED", "SETTLED")
    settled = (await system.call("GET", f"/api/v1/loans/{application_no}", user="ops")).json()
    assert settled["settlement_certificate_url"] == cert_path
    with Session(system.engine) as s:
        rows = s.exec(
            select(Installment)
            .where(Installment.application_no == application_no, Installment.status != "cancelled")
            .order_by(col(Installment.number))
        ).all()
    parts = {
        name: sum((getattr(r, f"{name}_paid") for r in rows), Decimal(0))
        for name in ("principal", "interest", "fee", "penalty")
    }
    assert parts["principal"] == PRINCIPAL and parts["fee"] == FEE and parts["penalty"] > 0
    cert = await system.call("GET", cert_path, user="cs")
    assert cert.status_code == 200
    assert cert.headers["content-type"] == "application/pdf"
    assert (await system.call("GET", cert_path, user="risk")).status_code == 403
    ctext = _pdf_text(cert.content)
    for name in ("principal", "interest", "fee", "penalty"):
        assert f"{parts[name]:,}" in ctext, name
    assert f"{sum(parts.values(), Decimal(0)):,}" in ctext
    assert f"HT{application_no}" in ctext and DEMO_BORROWER["name"] in ctext
    assert DEMO_BORROWER["id_number"] not in ctext  # masked on the certificate
    assert "已结清" in "".join(ctext.split())


async def test_a_prohibited_purpose_never_reaches_a_contract(system: System) -> None:
    """Even when the reviewers approve it past its knock-out, the contract is refused as a
    business refusal: the application ends REJECTED with the reason, the workflow completes."""
    mint_demo_tokens(system)
    application_no = await submit(system, purpose="炒股")
    d = driver(system)
    await system.in_thread(d.decide, "ops", application_no, "intake_review", "approve")
    stage = await system.in_thread(d.decide, "risk", application_no, "risk_review", "approve")
    if stage == "RISK_REVIEW":  # beyond the risk manager's authority: the manager approves too
        await system.in_thread(d.decide, "manager", application_no, "risk_approval", "approve")
    await system.in_thread(
        d.decide, "product", application_no, "product_matching", "approve", data=PRODUCT_TERMS
    )
    await system.in_thread(d.decide, "officer", application_no, "offer_confirmation", "accept")
    await eventually(lambda: stage_of(system, application_no) == "REJECTED", "REJECTED")
    runs = await workflow_runs(system.client, application_no)
    handle = system.client.get_workflow_handle(workflow_id(application_no))
    # REJECTED is recorded before the run returns: its result first, then its status.
    assert await handle.result() == "REJECTED"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert len(runs) == 1  # never reached servicing
    with Session(system.engine) as s:
        assert contract_of(s, application_no) is None
    timeline = (
        await system.call("GET", f"/api/v1/loans/{application_no}/timeline", user="auditor")
    ).json()["entries"]
    ended = [e for e in timeline if e["action"] == "stage.entered"][-1]
    assert ended["detail"]["stage"] == "REJECTED"
    assert "prohibited use of the funds (securities)" in str(ended["detail"])
    r = await system.call("GET", f"/api/v1/loans/{application_no}/contract.pdf", user="ops")
    assert r.status_code == 404


async def test_a_contract_in_english_when_the_application_asks_for_it(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    mint_demo_tokens(system)
    application_no = await submit(system, contract_language="en")
    await drive(system, application_no, "CONTRACT_SIGNING")
    pdf = await system.call("GET", f"/api/v1/loans/{application_no}/contract.pdf", user="ops")
    assert pdf.status_code == 200, pdf.text
    text = _pdf_text(pdf.content)
    assert "Personal Loan Contract" in text and "50,000.00" in text
    bad = await system.call(
        "POST",
        "/api/v1/applications",
        user="officer",
        json={**application_body(), "contract_language": "fr"},
    )
    assert bad.status_code == 422 and "contract_language" in bad.text
