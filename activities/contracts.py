"""Offer and contract activities: record the offer, render and store the contract, record signing."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity

from activities.records import append_audit
from activities.rendering import (
    ContractContext,
    ContractInstallmentRow,
    pdf_sha256,
    render_contract_pdf,
)
from domain.identifiers import contract_no_for
from domain.masking import mask_bank_card, mask_id_number, mask_phone
from domain.money import RATE_PLACES
from domain.schedule import RepaymentMethod
from loanops.db import session_scope
from models.shapes import ContractInfo, ContractInput, OfferInput, SignatureInput
from models.tables import Application, Document, Loan, borrower_data_of

DOCUMENT_NAMESPACE = uuid.UUID("0d3c1f0e-92a6-4d7b-9f57-3c0f2bb3e6a4")

METHOD_LABELS_ZH = {
    RepaymentMethod.EQUAL_INSTALLMENT: "等额本息",
    RepaymentMethod.EQUAL_PRINCIPAL: "等额本金",
    RepaymentMethod.INTEREST_ONLY: "先息后本",
    RepaymentMethod.BULLET: "到期一次还本付息",
}


def contract_document_id(application_no: str) -> uuid.UUID:
    return uuid.uuid5(DOCUMENT_NAMESPACE, f"{application_no}/contract")


class ContractActivities:
    def __init__(self, engine: Engine, *, lender_name: str) -> None:
        self.engine = engine
        self.lender_name = lender_name

    @activity.defn
    def record_offer(self, inp: OfferInput) -> None:
        """Create (or refresh, before signing) the loan row with the offered terms."""
        terms = inp.offer.terms
        with session_scope(self.engine) as s:
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).first()
            if loan is None:
                loan = Loan(
                    application_no=inp.application_no,
                    contract_no=contract_no_for(inp.application_no),
                    principal=terms.principal,
                    annual_rate=terms.annual_rate,
                    term_months=terms.term_months,
                    method=terms.method.value,
                    apr=Decimal(0),
                    apr_compound=Decimal(0),
                )
            elif loan.status != "offered":
                return
            loan.principal = terms.principal
            loan.annual_rate = terms.annual_rate
            loan.term_months = terms.term_months
            loan.method = terms.method.value
            loan.upfront_fee = terms.upfront_fee
            loan.monthly_fee = terms.monthly_fee
            loan.apr = inp.offer.apr.quantize(RATE_PLACES)
            loan.apr_compound = inp.offer.apr_compound.quantize(RATE_PLACES)
            loan.rate_cap = inp.offer.rate_cap.quantize(RATE_PLACES)
            loan.status = "offered"
            s.add(loan)
            product = inp.offer.product
            append_audit(
                s,
                # One event per matching round (a new round after the borrower asked for
                # other terms makes a new offer).
                key=f"{inp.application_no}/offer" + (f"/{inp.round}" if inp.round > 1 else ""),
                application_no=inp.application_no,
                actor=inp.matched_by,
                action="offer.made",
                occurred_at=inp.at,
                detail={
                    "principal": str(terms.principal),
                    "term_months": terms.term_months,
                    "annual_rate": str(terms.annual_rate),
                    "method": terms.method.value,
                    "apr": str(inp.offer.apr.quantize(RATE_PLACES)),
                    "lpr": str(inp.offer.lpr),
                    "rate_cap": str(inp.offer.rate_cap),
                    "upfront_fee": str(terms.upfront_fee),
                    "monthly_fee": str(terms.monthly_fee),
                    "product_code": product.code if product else None,
                    "product_version": product.version if product else None,
                    "round": inp.round,
                },
            )

    @activity.defn
    def prepare_contract(self, inp: ContractInput) -> ContractInfo:
        """Render the contract PDF once and store it with its sha256; a retry returns the stored one."""
        doc_id = contract_document_id(inp.application_no)
        with session_scope(self.engine) as s:
            existing = s.get(Document, doc_id)
            if existing is not None:
                return ContractInfo(str(doc_id), existing.sha256, inp.contract_no)
            app = s.exec(
                select(Application).where(Application.application_no == inp.application_no)
            ).one()
            # The borrower data the application was submitted with, not the newest version.
            borrower = borrower_data_of(s, app)
            if borrower is None:
                raise RuntimeError(f"application {inp.application_no} has no borrower record")
        terms = inp.offer.terms
        schedule = terms.schedule(inp.contract_date)
        pdf = render_contract_pdf(
            ContractContext(
                contract_no=inp.contract_no,
                application_no=inp.application_no,
                borrower_name=borrower.name,
                borrower_id_number_masked=mask_id_number(borrower.id_number),
                borrower_phone_masked=mask_phone(borrower.phone),
                bank_card_masked=mask_bank_card(borrower.bank_card),
                principal=terms.principal,
                annual_rate=terms.annual_rate,
                apr=inp.offer.apr,
                apr_compound=inp.offer.apr_compound,
                term_months=terms.term_months,
                method_label=METHOD_LABELS_ZH[terms.method],
                purpose=app.purpose,
                repayment_source=app.repayment_source,
                upfront_fee=terms.upfront_fee,
                monthly_fee=terms.monthly_fee,
                total_interest=schedule.total_interest,
                total_payment=schedule.total_payment,
                penalty_multiple=inp.penalty_multiple,
                contract_date=inp.contract_date,
                lender_name=self.lender_name,
                installments=tuple(
                    ContractInstallmentRow(
                        number=i.number,
                        due_date=i.due_date,
                        principal=i.principal,
                        interest=i.interest,
                        fee=i.fee,
                        payment=i.payment,
                    )
                    for i in schedule.installments
                ),
            )
        )
        digest = pdf_sha256(pdf)
        with session_scope(self.engine) as s:
            if s.get(Document, doc_id) is None:
                s.add(
                    Document(
                        id=doc_id,
                        application_no=inp.application_no,
                        kind="contract",
                        filename=f"{inp.contract_no}.pdf",
                        content_type="application/pdf",
                        sha256=digest,
                        content=pdf,
                        size=len(pdf),
                        uploaded_by="system",
                    )
                )
                loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
                loan.contract_no = inp.contract_no
                loan.status = "contract_pending"
                append_audit(
                    s,
                    key=f"{inp.application_no}/contract/prepared",
                    application_no=inp.application_no,
                    actor="system",
                    action="contract.prepared",
                    occurred_at=inp.at,
                    detail={"document_id": str(doc_id), "sha256": digest},
                )
            else:  # a concurrent attempt stored it first: keep that one
                digest = s.get(Document, doc_id).sha256  # type: ignore[union-attr]
        return ContractInfo(str(doc_id), digest, inp.contract_no)

    @activity.defn
    def record_signature(self, inp: SignatureInput) -> None:
        """Bind the borrower's signature to the document hash, once."""
        with session_scope(self.engine) as s:
            doc = s.get(Document, uuid.UUID(inp.document_id))
            if doc is None or doc.signed_at is not None:
                return
            # The API recorded who presented themselves (signer_name, signer_address) when
            # it verified them; the workflow binds the signature to the document's hash.
            doc.signed_at = inp.signed_at
            doc.signed_sha256 = inp.sha256
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            loan.status = "signed"
            append_audit(
                s,
                key=f"{inp.application_no}/contract/signed",
                application_no=inp.application_no,
                actor="borrower",
                action="contract.signed",
                occurred_at=inp.signed_at,
                detail={
                    "document_id": inp.document_id,
                    "sha256": inp.sha256,
                    "signer_name": doc.signer_name,
                    "client_address": doc.signer_address,
                },
            )
