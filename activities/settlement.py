"""Settlement certificate (结清证明, seed §3.7): rendered once a loan settles, stored with its
sha256 as a document of kind ``settlement_certificate``."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio import activity

from activities.progress import beat
from activities.records import append_audit
from activities.rendering import (
    Lender,
    SettlementCertificateData,
    pdf_sha256,
    render_settlement_certificate_pdf,
)
from domain.masking import mask_id_number
from domain.money import ZERO
from loanops.db import session_scope
from models.shapes import SettlementCertificateInput
from models.tables import Application, Document, Installment, Loan, borrower_data_of

CERTIFICATE_NAMESPACE = uuid.UUID("8e3f5a52-6f0e-4d39-9a51-2b4c1f7d9e60")


def settlement_certificate_id(application_no: str) -> uuid.UUID:
    return uuid.uuid5(CERTIFICATE_NAMESPACE, f"{application_no}/settlement-certificate")


class SettlementActivities:
    def __init__(self, engine: Engine, *, lender: Lender) -> None:
        self.engine = engine
        self.lender = lender

    @activity.defn
    def issue_settlement_certificate(self, inp: SettlementCertificateInput) -> str:
        """Render and store the certificate once (a retry returns the stored one's id). The
        totals paid are the ledger's: what was applied to each component of each installment
        (the installment rows the servicing workflow keeps equal to its ledger)."""
        doc_id = settlement_certificate_id(inp.application_no)
        with session_scope(self.engine) as s:
            if s.get(Document, doc_id) is not None:
                return str(doc_id)
            app = s.exec(
                select(Application).where(Application.application_no == inp.application_no)
            ).one()
            borrower = borrower_data_of(s, app)
            if borrower is None:
                raise RuntimeError(f"application {inp.application_no} has no borrower record")
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            rows = s.exec(
                select(Installment)
                .where(
                    Installment.application_no == inp.application_no,
                    Installment.status != "cancelled",
                )
                .order_by(col(Installment.number))
            ).all()
            if loan.start_date is None or not rows:
                raise RuntimeError(f"loan {inp.application_no} was never booked")
            data = SettlementCertificateData(
                certificate_no=f"JQ{inp.application_no}",
                contract_no=inp.contract_no,
                application_no=inp.application_no,
                lender=self.lender,
                borrower_name=borrower.name,
                borrower_id_number_masked=mask_id_number(borrower.id_number),
                principal=loan.principal,
                start_date=loan.start_date,
                maturity_date=max(r.due_date for r in rows),
                settled_on=inp.settled_on,
                principal_paid=sum((r.principal_paid for r in rows), ZERO),
                interest_paid=sum((r.interest_paid for r in rows), ZERO),
                fees_paid=sum((r.fee_paid for r in rows), ZERO),
                penalty_paid=sum((r.penalty_paid for r in rows), ZERO),
                issued_on=inp.settled_on,
            )
        beat("loaded")
        pdf = render_settlement_certificate_pdf(data)
        digest = pdf_sha256(pdf)
        beat("rendered")
        with session_scope(self.engine) as s:
            if s.get(Document, doc_id) is None:
                s.add(
                    Document(
                        id=doc_id,
                        application_no=inp.application_no,
                        kind="settlement_certificate",
                        filename=f"{data.certificate_no}.pdf",
                        content_type="application/pdf",
                        sha256=digest,
                        content=pdf,
                        size=len(pdf),
                        uploaded_by="system",
                    )
                )
                append_audit(
                    s,
                    key=f"{inp.application_no}/settlement-certificate",
                    application_no=inp.application_no,
                    actor="system",
                    action="settlement_certificate.issued",
                    occurred_at=inp.at,
                    detail={
                        "document_id": str(doc_id),
                        "sha256": digest,
                        "principal_paid": str(data.principal_paid),
                        "interest_paid": str(data.interest_paid),
                        "fees_paid": str(data.fees_paid),
                        "penalty_paid": str(data.penalty_paid),
                    },
                )
        return str(doc_id)
