"""The borrower's one-time signing link: read the contract, then sign it. No staff login."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlmodel import Session, select

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import unprocessable
from api.schemas import DecisionOut, SignIn, SigningInfo
from api.workflow_calls import update_loan
from domain.identifiers import SIGN_UPDATE
from loanops.security import document_for_signing_token
from models.shapes import DecisionResult, SignRequest
from models.tables import Application, Borrower, Document, Loan

router = APIRouter(prefix="/sign", tags=["signing"])

MAX_FAILED_ATTEMPTS = 5


def _document(session: Session, token: str, secret: str) -> tuple[Document, Borrower, Loan]:
    doc_id = document_for_signing_token(token, secret=secret)
    doc = session.get(Document, doc_id) if doc_id else None
    if doc is None or doc.kind != "contract":
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this signing link is not valid")
    app = session.exec(
        select(Application).where(Application.application_no == doc.application_no)
    ).one()
    borrower = session.get(Borrower, app.borrower_id)
    loan = session.exec(select(Loan).where(Loan.application_no == doc.application_no)).one()
    if borrower is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this signing link is not valid")
    return doc, borrower, loan


@router.get("/{token}", response_model=SigningInfo)
def signing_info(token: str, session: SessionDep, settings: SettingsDep) -> SigningInfo:
    """The borrower: what they are asked to sign, and where to read it in full."""
    doc, borrower, loan = _document(session, token, settings.secret_key)
    return SigningInfo(
        contract_no=loan.contract_no,
        borrower_name=borrower.name,
        principal=loan.principal,
        term_months=loan.term_months,
        annual_rate=loan.annual_rate,
        apr=loan.apr,
        sha256=doc.sha256,
        pdf_url=f"{settings.public_base_url.rstrip('/')}/api/v1/sign/{token}/contract.pdf",
        signed=doc.signed_at is not None,
    )


@router.get("/{token}/contract.pdf", response_class=Response)
def signing_pdf(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The borrower: the contract PDF behind the link."""
    doc, _, _ = _document(session, token, settings.secret_key)
    return Response(
        content=doc.content, media_type="application/pdf", headers={"X-Content-SHA256": doc.sha256}
    )


@router.post("/{token}", response_model=DecisionOut)
def sign(
    token: str,
    body: SignIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> DecisionOut:
    """The borrower signs: name and the last four characters of the ID must match, and the terms
    must be accepted. The signature binds the PDF's sha256. The link works once; five wrong
    identity attempts lock it."""
    doc, borrower, _ = _document(session, token, settings.secret_key)
    if doc.signed_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this contract is already signed")
    if doc.sign_failures >= MAX_FAILED_ATTEMPTS:
        raise HTTPException(
            status.HTTP_423_LOCKED,
            detail="too many failed attempts; ask the business officer for help",
        )
    if not body.accept_terms:
        raise unprocessable("accept_terms", "the borrower must accept the terms to sign")
    if body.signer_name != borrower.name or body.id_last4.upper() != borrower.id_number[-4:]:
        doc.sign_failures += 1
        session.add(doc)
        session.commit()
        raise unprocessable("id_last4", "signer_name and id_last4 do not match the borrower")
    # Who presented themselves stays in the database, never in workflow history: the
    # workflow's activity binds the signature to the hash and keeps these fields.
    doc.signer_name = borrower.name
    doc.signer_address = request.client.host if request.client else "unknown"
    session.add(doc)
    session.commit()
    result: DecisionResult = update_loan(
        temporal,
        doc.application_no,
        SIGN_UPDATE,
        SignRequest(document_id=str(uuid.UUID(str(doc.id))), sha256=doc.sha256),
        DecisionResult,
    )
    return DecisionOut(task_id=result.task_id, stage=result.stage)
