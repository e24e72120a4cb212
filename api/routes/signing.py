"""The borrower's one-time signing link: read the contract, then sign it. No staff login."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlmodel import Session, col, select, update

from api.deps import ClockDep, SessionDep, SettingsDep, TemporalDep
from api.deps import borrower as borrower_link
from api.errors import unprocessable
from api.schemas import DecisionOut, SignIn, SigningInfo
from api.workflow_calls import update_loan
from domain.identifiers import SIGN_UPDATE
from domain.permissions import BORROWER, Action
from loanops.security import document_for_signing_token
from models.audit import append_audit
from models.shapes import DecisionResult, SignRequest
from models.tables import Application, BorrowerData, Document, Loan, borrower_data_of

router = APIRouter(prefix="/sign", tags=["signing"])

MAX_FAILED_ATTEMPTS = 5


def _document(session: Session, token: str, secret: str) -> tuple[Document, BorrowerData, Loan]:
    doc_id = document_for_signing_token(token, secret=secret)
    doc = session.get(Document, doc_id) if doc_id else None
    if doc is None or doc.kind != "contract":
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this signing link is not valid")
    app = session.exec(
        select(Application).where(Application.application_no == doc.application_no)
    ).one()
    borrower = borrower_data_of(session, app)  # the data the contract was drawn up with
    loan = session.exec(select(Loan).where(Loan.application_no == doc.application_no)).one()
    if borrower is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this signing link is not valid")
    return doc, borrower, loan


def _record_failed_attempt(
    session: Session, doc: Document, *, mismatched: list[str], client_address: str, at: datetime
) -> None:
    """Count a failed identity check and audit it, and the lock when this one reaches the limit.
    The count is raised in the database, so concurrent attempts each get their own number. The
    audit names the fields that did not match, never what was typed nor the link's token."""
    session.exec(
        update(Document)
        .where(col(Document.id) == doc.id)
        .values(sign_failures=col(Document.sign_failures) + 1)
    )
    session.refresh(doc)
    detail = {"document_id": str(doc.id), "failures": doc.sign_failures}
    append_audit(
        session,
        key=f"document/{doc.id}/sign-failed/{doc.sign_failures}",
        application_no=doc.application_no,
        actor="borrower",
        action="contract.sign_failed",
        occurred_at=at,
        detail={**detail, "mismatched": mismatched, "client_address": client_address},
    )
    if doc.sign_failures == MAX_FAILED_ATTEMPTS:
        append_audit(
            session,
            key=f"document/{doc.id}/signing-locked",
            application_no=doc.application_no,
            actor="borrower",
            action="contract.signing_locked",
            occurred_at=at,
            detail=detail,
        )
    session.commit()


@router.get(
    "/{token}", response_model=SigningInfo, dependencies=[borrower_link(Action.READ_SIGNING)]
)
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


@router.get(
    "/{token}/contract.pdf",
    response_class=Response,
    dependencies=[borrower_link(Action.READ_SIGNING)],
)
def signing_pdf(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The borrower: the contract PDF behind the link."""
    doc, _, _ = _document(session, token, settings.secret_key)
    return Response(
        content=doc.content, media_type="application/pdf", headers={"X-Content-SHA256": doc.sha256}
    )


@router.post(
    "/{token}", response_model=DecisionOut, dependencies=[borrower_link(Action.SIGN_CONTRACT)]
)
def sign(
    token: str,
    body: SignIn,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    clock: ClockDep,
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
    mismatched = [
        field
        for field, matches in (
            ("signer_name", body.signer_name == borrower.name),
            ("id_last4", body.id_last4.upper() == borrower.id_number[-4:]),
        )
        if not matches
    ]
    if mismatched:
        _record_failed_attempt(
            session,
            doc,
            mismatched=mismatched,
            client_address=request.client.host if request.client else "unknown",
            at=clock(),
        )
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
        SignRequest(
            document_id=str(uuid.UUID(str(doc.id))), sha256=doc.sha256, principals=(BORROWER,)
        ),
        DecisionResult,
    )
    return DecisionOut(task_id=result.task_id, stage=result.stage)
