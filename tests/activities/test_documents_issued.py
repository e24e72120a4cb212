"""The documents the worker issues: the contract (refused for a prohibited purpose, one stored
document per version, a re-issue superseding the earlier one) and the settlement certificate
(its figures from the ledger's rows), on both databases."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from activities.contracts import ContractActivities
from activities.rendering import Lender
from activities.settlement import SettlementActivities
from domain.identifiers import BUSINESS_REFUSAL
from domain.schedule import RepaymentMethod
from models.shapes import ContractInput, LoanTerms, Offer, SettlementCertificateInput
from models.tables import Application, Document, Installment, Loan, contract_of
from tests.activities.test_idempotency import T0, add_loan, application_no  # noqa: F401

LENDER = Lender("示例小额贷款有限公司", "91310000MA1EXAMPLE", "上海市示例路 8 号", "400-123-4567")
TERMS = LoanTerms(
    Decimal("10000.00"),
    3,
    Decimal("0.108"),
    RepaymentMethod.EQUAL_INSTALLMENT,
    upfront_fee=Decimal("100.00"),
)


def _offer() -> Offer:
    schedule = TERMS.schedule(date(2026, 3, 2))
    return Offer(
        terms=TERMS,
        apr=Decimal("0.17"),
        apr_compound=Decimal("0.18"),
        total_interest=schedule.total_interest,
        total_fees=schedule.total_fees,
        total_payment=schedule.total_payment,
        first_payment=schedule.installments[0].payment,
        lpr=Decimal("0.0345"),
        rate_cap=Decimal("0.138"),
        offered_on=date(2026, 3, 2),
        expires_at=T0 + timedelta(days=7),
    )


def _contract_input(no: str, version: int = 1) -> ContractInput:
    return ContractInput(
        application_no=no,
        contract_no=f"HT{no}",
        offer=_offer(),
        contract_date=date(2026, 3, 2),
        penalty_multiple=Decimal("1.5"),
        at=T0 + timedelta(hours=version),
        version=version,
    )


def _text(pdf: bytes | None) -> str:
    assert pdf is not None
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def test_a_prohibited_purpose_is_refused_before_any_contract_is_stored(
    engine: Engine,
    application_no: str,  # noqa: F811
) -> None:
    add_loan(engine, application_no)
    with Session(engine) as s:
        app = s.exec(select(Application).where(Application.application_no == application_no)).one()
        app.purpose = "炒股配资"
        s.add(app)
        s.commit()
    with pytest.raises(ApplicationError) as exc:
        ContractActivities(engine, lender=LENDER).prepare_contract(_contract_input(application_no))
    assert exc.value.type == BUSINESS_REFUSAL and exc.value.non_retryable
    assert "prohibited use of the funds (securities)" in str(exc.value.details[0])
    with Session(engine) as s:
        assert s.exec(select(Document).where(Document.application_no == application_no)).all() == []


def test_a_reissued_contract_is_a_new_version_and_the_old_one_is_kept_superseded(
    engine: Engine,
    application_no: str,  # noqa: F811
) -> None:
    add_loan(engine, application_no)
    acts = ContractActivities(engine, lender=LENDER)
    first = acts.prepare_contract(_contract_input(application_no))
    assert acts.prepare_contract(_contract_input(application_no)) == first  # a retry
    second = acts.prepare_contract(_contract_input(application_no, version=2))
    assert second.document_id != first.document_id
    with Session(engine) as s:
        old = s.get(Document, uuid.UUID(first.document_id))
        new = s.get(Document, uuid.UUID(second.document_id))
        assert old is not None and new is not None
        assert old.superseded_at is not None and old.superseded_by == new.id
        assert (old.version, new.version) == (1, 2) and new.superseded_at is None
        assert old.content is not None  # kept, immutable
        current = contract_of(s, application_no)
        assert current is not None and current.id == new.id
        assert new.sha256 == second.sha256
        text = _text(new.content)
    assert "第 2 版" in text
    # The fee falls due with installment 1: its row's payment includes it.
    row1 = TERMS.schedule(date(2026, 3, 2)).installments[0]
    assert f"{row1.payment:,}" in text and row1.fee == Decimal("100.00")
    assert "人民币壹万元整" in text


def test_the_settlement_certificate_holds_the_ledgers_totals(
    engine: Engine,
    application_no: str,  # noqa: F811
) -> None:
    add_loan(engine, application_no, start_date=date(2026, 3, 2), principal=Decimal("10000.00"))
    paid = [
        # principal, interest, fee, penalty paid on each installment
        ("3300.00", "90.00", "100.00", "0.00"),
        ("3333.00", "60.30", "0.00", "12.34"),
        ("3367.00", "30.31", "0.00", "0.00"),
    ]
    with Session(engine) as s:
        for k, (p, i, f, pen) in enumerate(paid, start=1):
            s.add(
                Installment(
                    application_no=application_no,
                    number=k,
                    due_date=date(2026, 3 + k, 2),
                    principal_due=Decimal(p),
                    interest_due=Decimal(i),
                    fee_due=Decimal(f),
                    principal_paid=Decimal(p),
                    interest_paid=Decimal(i),
                    fee_paid=Decimal(f),
                    penalty_accrued=Decimal(pen),
                    penalty_paid=Decimal(pen),
                    status="paid",
                )
            )
        s.commit()
    acts = SettlementActivities(engine, lender=LENDER)
    inp = SettlementCertificateInput(
        application_no=application_no,
        contract_no=f"HT-{application_no}",
        at=T0 + timedelta(days=90),
        settled_on=date(2026, 6, 2),
    )
    doc_id = acts.issue_settlement_certificate(inp)
    assert acts.issue_settlement_certificate(inp) == doc_id  # a retry issues nothing new
    with Session(engine) as s:
        docs = s.exec(
            select(Document).where(
                Document.application_no == application_no,
                Document.kind == "settlement_certificate",
            )
        ).all()
        assert [str(d.id) for d in docs] == [doc_id]
        loan = s.exec(select(Loan).where(Loan.application_no == application_no)).one()
        assert loan.principal == Decimal("10000.00")
        text = _text(docs[0].content)
    flat = " ".join(text.split())
    assert "结清证明" in text and "示例小额贷款有限公司" in text
    assert "李四" in text and f"HT-{application_no}" in text
    assert "10,000.00" in text and "壹万元整" in text
    assert "180.61" in text  # interest 90.00 + 60.30 + 30.31
    assert "100.00" in text  # fees
    assert "12.34" in text  # penalty
    assert "10,292.95" in text  # 10,000 + 180.61 + 100 + 12.34
    assert "2026年3月2日" in text and "2026年6月2日" in text
    assert "已结清" in flat and "不再负有任何还款义务" in flat
