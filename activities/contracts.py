"""Offer and contract activities: record the offer, render and store the contract, send the
borrower the signing link, record the signature (the signed PDF) and the lender's seal."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.progress import beat
from activities.records import append_audit, enqueue_notice
from activities.rendering import (
    ContractContext,
    ContractInstallmentRow,
    Lender,
    pdf_sha256,
    render_contract_pdf,
)
from activities.signing_record import SigningRecord, append_pages, render_signing_record_pdf
from domain.identifiers import BUSINESS_REFUSAL, contract_no_for
from domain.intake import IntakeRules, prohibited_category
from domain.masking import mask_bank_card, mask_name, mask_phone
from domain.money import RATE_PLACES
from domain.penalty import PenaltyPolicy, penalty_annual_rate
from domain.policy import DEFAULT_POLICY
from domain.signing import (
    BORROWER_RECIPIENT,
    SIGNED_CONTRACT_KIND,
    SIGNING_LINK_TEMPLATE,
    SMS_CHANNEL,
)
from loanops.db import session_scope
from loanops.policy import loan_policy_version
from loanops.security import signing_link
from loanops.settings import Settings
from models.shapes import ContractInfo, ContractInput, OfferInput, SealInput, SignatureInput
from models.tables import (
    Application,
    ContractSignature,
    Document,
    Loan,
    borrower_data_of,
)

DOCUMENT_NAMESPACE = uuid.UUID("0d3c1f0e-92a6-4d7b-9f57-3c0f2bb3e6a4")


def contract_document_id(application_no: str, version: int = 1) -> uuid.UUID:
    """The stored contract of a version (version 1 keeps the id it always had)."""
    suffix = "" if version == 1 else f"/v{version}"
    return uuid.uuid5(DOCUMENT_NAMESPACE, f"{application_no}/contract{suffix}")


def contract_context(
    inp: ContractInput,
    *,
    lender: Lender,
    borrower_name: str,
    borrower_id_number: str,
    borrower_phone: str,
    bank_card: str,
    purpose: str,
    repayment_source: str,
) -> ContractContext:
    """What the contract prints, every figure from the objects the ledger uses: the offer's
    terms and their schedule (the one booked at disbursement, from the contract date here),
    the offer's APR and rate cap, and the penalty rate the ledger will charge."""
    offer = inp.offer
    terms = offer.terms
    schedule = terms.schedule(inp.contract_date)
    penalty = PenaltyPolicy(multiple=inp.penalty_multiple, grace_days=inp.penalty_grace_days)
    return ContractContext(
        contract_no=inp.contract_no,
        application_no=inp.application_no,
        contract_date=inp.contract_date,
        lender=lender,
        borrower_name=borrower_name,
        borrower_id_number=borrower_id_number,
        borrower_phone_masked=mask_phone(borrower_phone),
        bank_card_masked=mask_bank_card(bank_card),
        principal=terms.principal,
        annual_rate=terms.annual_rate,
        apr=offer.apr,
        apr_compound=offer.apr_compound,
        term_months=terms.term_months,
        method=terms.method,
        purpose=purpose,
        repayment_source=repayment_source,
        upfront_fee=terms.upfront_fee - terms.fee_deducted,
        monthly_fee=terms.monthly_fee,
        total_interest=schedule.total_interest,
        total_fees=schedule.total_fees,
        total_payment=schedule.total_payment,
        penalty_multiple=inp.penalty_multiple,
        penalty_annual_rate=penalty_annual_rate(
            annual_rate=terms.annual_rate, policy=penalty, max_annual_rate=offer.rate_cap
        ),
        rate_cap=offer.rate_cap,
        penalty_grace_days=penalty.grace_days,
        penalty_day_basis=penalty.day_basis,
        prepayment_fee_rate=offer.prepayment_fee_rate,
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
        version=inp.version,
        language=inp.language,
        upfront_fee_deducted=terms.fee_deducted,
    )


def signed_contract_document_id(document_id: uuid.UUID) -> uuid.UUID:
    """The signed PDF made from one contract document: one per contract document."""
    return uuid.uuid5(DOCUMENT_NAMESPACE, f"{document_id}/signed")


class ContractActivities:
    def __init__(self, engine: Engine, *, lender: Lender, settings: Settings | None = None) -> None:
        self.engine = engine
        self.lender = lender
        # The secret and public address the borrower's signing link is made from (read when
        # the link is sent, so a test server's address set after start-up applies).
        self.settings = settings or Settings()

    def queue_signing_link(
        self,
        s: Session,
        *,
        application_no: str,
        contract_no: str,
        document_id: uuid.UUID,
        at: datetime,
    ) -> None:
        """Queue the signing link for the borrower's phone (SMS outbox), once per contract
        document. The link goes to the borrower only: no staff view shows it."""
        app = s.exec(select(Application).where(Application.application_no == application_no)).one()
        policy = (
            loan_policy_version(self.engine, app.policy_version)
            if app.policy_version is not None
            else DEFAULT_POLICY
        )
        sign_by = (at + timedelta(days=policy.contract_sign_days)).astimezone(
            ZoneInfo(policy.business_timezone)
        )
        enqueue_notice(
            s,
            key=f"{application_no}/contract/{document_id}/signing-link",
            application_no=application_no,
            channel=SMS_CHANNEL,
            recipient=BORROWER_RECIPIENT,
            template=SIGNING_LINK_TEMPLATE,
            payload={
                "url": signing_link(
                    document_id,
                    secret=self.settings.secret_key,
                    base_url=self.settings.public_base_url,
                ),
                "contract_no": contract_no,
                "sign_by": sign_by.isoformat(timespec="minutes"),
            },
            created_at=at,
        )

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
            product = inp.offer.product
            loan.penalty_multiple = product.penalty_multiple if product else None
            loan.prepayment_fee_rate = inp.offer.prepayment_fee_rate
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
        """Render the contract PDF once per version and store it with its sha256; a retry
        returns the stored one. A new version supersedes the earlier ones (kept, marked).

        A purpose the department does not lend for never reaches a contract: it is refused as
        a business refusal (the workflow ends the application with the reason)."""
        doc_id = contract_document_id(inp.application_no, inp.version)
        with session_scope(self.engine) as s:
            existing = s.get(Document, doc_id)
            if existing is not None:
                self.queue_signing_link(
                    s,
                    application_no=inp.application_no,
                    contract_no=inp.contract_no,
                    document_id=doc_id,
                    at=inp.at,
                )
                return ContractInfo(str(doc_id), existing.sha256, inp.contract_no)
            app = s.exec(
                select(Application).where(Application.application_no == inp.application_no)
            ).one()
            # The borrower data the application was submitted with, not the newest version.
            borrower = borrower_data_of(s, app)
            if borrower is None:
                raise RuntimeError(f"application {inp.application_no} has no borrower record")
        beat("loaded")
        category = prohibited_category(app.purpose, IntakeRules())
        if category is not None:
            raise ApplicationError(
                "the contract was refused",
                f"purpose: the stated purpose is a prohibited use of the funds ({category})",
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            )
        pdf = render_contract_pdf(
            contract_context(
                inp,
                lender=self.lender,
                borrower_name=borrower.name,
                borrower_id_number=borrower.id_number,
                borrower_phone=borrower.phone,
                bank_card=borrower.bank_card,
                purpose=app.purpose,
                repayment_source=app.repayment_source,
            )
        )
        digest = pdf_sha256(pdf)
        beat("rendered")
        with session_scope(self.engine) as s:
            if s.get(Document, doc_id) is None:
                s.add(
                    Document(
                        id=doc_id,
                        application_no=inp.application_no,
                        kind="contract",
                        filename=f"{inp.contract_no}-v{inp.version}.pdf"
                        if inp.version > 1
                        else f"{inp.contract_no}.pdf",
                        content_type="application/pdf",
                        sha256=digest,
                        content=pdf,
                        size=len(pdf),
                        uploaded_by="system",
                        version=inp.version,
                        # The account the contract names for the payout (printed masked): the
                        # payout goes here, whatever card is on file later.
                        payee_account=borrower.bank_card,
                    )
                )
                earlier = s.exec(
                    select(Document).where(
                        Document.application_no == inp.application_no,
                        Document.kind == "contract",
                        Document.version < inp.version,
                        col(Document.superseded_at).is_(None),
                    )
                ).all()
                for old in earlier:
                    old.superseded_at = inp.at
                    old.superseded_by = doc_id
                loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
                loan.contract_no = inp.contract_no
                loan.status = "contract_pending"
                append_audit(
                    s,
                    key=f"{inp.application_no}/contract/prepared"
                    + (f"/v{inp.version}" if inp.version > 1 else ""),
                    application_no=inp.application_no,
                    actor="system",
                    action="contract.prepared",
                    occurred_at=inp.at,
                    detail={
                        "document_id": str(doc_id),
                        "sha256": digest,
                        "version": inp.version,
                        "supersedes": [str(old.id) for old in earlier],
                    },
                )
                self.queue_signing_link(
                    s,
                    application_no=inp.application_no,
                    contract_no=inp.contract_no,
                    document_id=doc_id,
                    at=inp.at,
                )
            else:  # a concurrent attempt stored it first: keep that one
                digest = s.get(Document, doc_id).sha256  # type: ignore[union-attr]
        return ContractInfo(str(doc_id), digest, inp.contract_no)

    @activity.defn
    def record_signature(self, inp: SignatureInput) -> None:
        """Bind the borrower's signature to the document, once: the signing record (the
        evidence the API verified) becomes the PDF's last page, stored as a new document
        (kind ``contract_signed``) with its own sha256. A contract whose stored bytes no longer
        match the sha256 recorded at issue is refused (a business refusal), never signed."""
        doc_id = uuid.UUID(inp.document_id)
        with session_scope(self.engine) as s:
            doc = s.get(Document, doc_id)
            if doc is None:
                raise RuntimeError(f"contract document {inp.document_id} does not exist")
            if doc.signed_at is not None:
                return
            if (
                doc.content is None
                or pdf_sha256(doc.content) != doc.sha256
                or doc.sha256 != inp.sha256
            ):
                raise ApplicationError(
                    "the contract changed after it was issued",
                    "document_changed",
                    type=BUSINESS_REFUSAL,
                    non_retryable=True,
                )
            evidence = s.get(ContractSignature, doc_id)
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            contract_no = loan.contract_no
            unsigned = doc.content
        beat("loaded")
        signed_pdf: bytes | None = None
        if evidence is not None:
            page = render_signing_record_pdf(
                SigningRecord(
                    contract_no=contract_no,
                    signer_name=evidence.signer_name,
                    signed_at=inp.signed_at,
                    code_issued_at=evidence.code_issued_at,
                    client_address=evidence.client_address,
                    user_agent=evidence.user_agent,
                    document_sha256=inp.sha256,
                    confirmed=tuple(evidence.confirmed),
                )
            )
            signed_pdf = append_pages(unsigned, page)
            beat("rendered")
        with session_scope(self.engine) as s:
            doc = s.get(Document, doc_id)
            if doc is None or doc.signed_at is not None:
                return
            detail: dict[str, object] = {
                "document_id": inp.document_id,
                "sha256": inp.sha256,
                # Masked: the audit trail is never rewritten, so it holds no personal data
                # retention would have to destroy (issue 11 §3, §6).
                "signer_name": None if doc.signer_name is None else mask_name(doc.signer_name),
                "client_address": doc.signer_address,
            }
            evidence = s.get(ContractSignature, doc_id)
            if evidence is not None and signed_pdf is not None:
                signed_id = signed_contract_document_id(doc_id)
                signed = s.get(Document, signed_id)
                if signed is None:
                    signed = Document(
                        id=signed_id,
                        application_no=inp.application_no,
                        kind=SIGNED_CONTRACT_KIND,
                        filename=f"{contract_no}-signed.pdf",
                        content_type="application/pdf",
                        sha256=pdf_sha256(signed_pdf),
                        content=signed_pdf,
                        size=len(signed_pdf),
                        uploaded_by="system",
                    )
                    s.add(signed)
                evidence.signed_at = inp.signed_at
                evidence.signed_document_id = signed_id
                evidence.signed_sha256 = signed.sha256
                detail.update(
                    signer_name=mask_name(evidence.signer_name),
                    client_address=evidence.client_address,
                    user_agent=evidence.user_agent,
                    confirmed=list(evidence.confirmed),
                    code_issued_at=evidence.code_issued_at.isoformat(),
                    signed_document_id=str(signed_id),
                    signed_sha256=signed.sha256,
                )
            # The API recorded who presented themselves when it verified them; the workflow
            # binds the signature to the document's hash.
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
                detail=detail,
            )

    @activity.defn
    def record_seal(self, inp: SealInput) -> None:
        """The lender's seal (or its refusal) on the signed contract's record, once: who and
        when, on the signature row and in the audit trail. Sealed, the contract is in force."""
        with session_scope(self.engine) as s:
            evidence = s.get(ContractSignature, uuid.UUID(inp.document_id))
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            detail: dict[str, object] = {"document_id": inp.document_id}
            if evidence is not None:
                detail.update(
                    signed_document_id=str(evidence.signed_document_id),
                    signed_sha256=evidence.signed_sha256,
                )
            if inp.decision == "seal":
                if evidence is not None and evidence.sealed_at is None:
                    evidence.sealed_by = inp.user
                    evidence.sealed_at = inp.at
                if loan.status == "signed":
                    loan.status = "sealed"
                action = "contract.sealed"
            else:
                if evidence is not None and evidence.seal_refused_at is None:
                    evidence.seal_refused_by = inp.user
                    evidence.seal_refused_at = inp.at
                    evidence.seal_refused_reason = inp.reason
                detail["reason"] = inp.reason
                action = "contract.seal_refused"
            append_audit(
                s,
                key=f"{inp.application_no}/contract/{inp.document_id}/{action}",
                application_no=inp.application_no,
                actor=inp.user,
                action=action,
                occurred_at=inp.at,
                detail=detail,
            )
