"""The borrower's one-time signing link: read the contract and the risk disclosures, ask for a
one-time code on the phone on the application, then sign with the code, each disclosure
confirmed, the name and the last four characters of the ID. No staff login.

The link reaches the borrower by SMS only (queued when the contract is prepared); the code proves
the signer holds that phone. The name and ID digits are printed on the PDF the link serves, so
they never sign alone. The code is kept only as an HMAC; nothing here logs or audits it.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlmodel import Session, col, select, update

from api.deps import ClockDep, SessionDep, SettingsDep, TemporalDep
from api.deps import borrower as borrower_link
from api.errors import unprocessable
from api.schemas import DecisionOut, DisclosureOut, SignIn, SigningCodeOut, SigningInfo
from api.workflow_calls import update_loan
from domain.identifiers import SIGN_UPDATE
from domain.lifecycle import Stage
from domain.masking import mask_phone
from domain.permissions import BORROWER, Action
from domain.signing import (
    BORROWER_RECIPIENT,
    CODE_DIGITS,
    CODE_MAX_TRIES,
    CODE_RESEND_AFTER,
    CODE_VALID_FOR,
    CONTRACT_KIND,
    DISCLOSURE_ITEMS,
    MAX_IDENTITY_FAILURES,
    SIGNING_CODE_TEMPLATE,
    SMS_CHANNEL,
    unconfirmed,
    unknown_confirmations,
)
from loanops.security import (
    document_for_signing_token,
    new_signing_code,
    signing_code_hash,
    signing_code_matches,
)
from models.audit import append_audit
from models.shapes import DecisionResult, SignRequest
from models.tables import (
    Application,
    BorrowerData,
    ContractSignature,
    Document,
    Loan,
    Notice,
    SigningCode,
    borrower_data_of,
)

router = APIRouter(prefix="/sign", tags=["signing"])

# Kept for callers of the earlier module: the identity-failure limit of a link.
MAX_FAILED_ATTEMPTS = MAX_IDENTITY_FAILURES


def _document(
    session: Session, token: str, secret: str
) -> tuple[Document, BorrowerData, Loan, Application]:
    doc_id = document_for_signing_token(token, secret=secret)
    doc = session.get(Document, doc_id) if doc_id else None
    if doc is None or doc.kind != CONTRACT_KIND:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this signing link is not valid")
    app = session.exec(
        select(Application).where(Application.application_no == doc.application_no)
    ).one()
    borrower = borrower_data_of(session, app)  # the data the contract was drawn up with
    loan = session.exec(select(Loan).where(Loan.application_no == doc.application_no)).one()
    if borrower is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this signing link is not valid")
    return doc, borrower, loan, app


def _superseded(session: Session, doc: Document) -> bool:
    """Whether a newer contract document replaced ``doc`` for its application."""
    newest = session.exec(
        select(Document.id)
        .where(Document.application_no == doc.application_no, Document.kind == CONTRACT_KIND)
        .order_by(col(Document.created_at).desc())
    ).first()
    return newest is not None and newest != doc.id


def _tampered(doc: Document) -> bool:
    """Whether the stored bytes no longer match the sha256 recorded when it was issued."""
    return doc.content is None or hashlib.sha256(doc.content).hexdigest() != doc.sha256


def _check_signable(session: Session, doc: Document) -> None:
    """Refuse (409/423, naming why) a contract that cannot be signed through this link now."""
    if doc.signed_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this contract is already signed")
    if doc.sign_failures >= MAX_IDENTITY_FAILURES:
        raise HTTPException(
            status.HTTP_423_LOCKED,
            detail="too many failed attempts; ask the business officer for help",
        )
    if _superseded(session, doc):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this contract was superseded by a newer version; use the newest link sent",
        )
    if _tampered(doc):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this contract changed after it was issued and cannot be signed",
        )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
    if doc.sign_failures == MAX_IDENTITY_FAILURES:
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
    """The borrower: what they are asked to sign, where to read it in full, and the risk
    disclosures to confirm one by one (by id) when signing."""
    doc, borrower, loan, _ = _document(session, token, settings.secret_key)
    return SigningInfo(
        contract_no=loan.contract_no,
        borrower_name=borrower.name,
        principal=loan.principal,
        term_months=loan.term_months,
        annual_rate=loan.annual_rate,
        apr=loan.apr,
        sha256=doc.sha256,
        pdf_url=f"{settings.public_base_url.rstrip('/')}/api/v1/sign/{token}/contract.pdf",
        disclosures=[
            DisclosureOut(id=item.id, text=item.text_zh, text_en=item.text_en)
            for item in DISCLOSURE_ITEMS
        ],
        signed=doc.signed_at is not None,
        superseded=_superseded(session, doc),
    )


@router.get(
    "/{token}/contract.pdf",
    response_class=Response,
    dependencies=[borrower_link(Action.READ_SIGNING)],
)
def signing_pdf(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The borrower: the contract PDF behind the link."""
    doc, _, _, _ = _document(session, token, settings.secret_key)
    return Response(
        content=doc.content, media_type="application/pdf", headers={"X-Content-SHA256": doc.sha256}
    )


@router.post(
    "/{token}/code",
    response_model=SigningCodeOut,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[borrower_link(Action.REQUEST_SIGNING_CODE)],
)
def request_code(
    token: str, request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> SigningCodeOut:
    """The borrower: send a one-time code to the phone on the application (valid 5 minutes,
    5 tries). A new code replaces the previous one; at most one a minute (429 otherwise)."""
    doc, borrower, _, app = _document(session, token, settings.secret_key)
    _check_signable(session, doc)
    if app.stage != Stage.CONTRACT_SIGNING.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the contract cannot be signed in {app.stage}",
        )
    now = clock()
    last = session.exec(
        select(SigningCode)
        .where(SigningCode.document_id == doc.id)
        .order_by(col(SigningCode.issued_at).desc())
    ).first()
    if last is not None and now < last.issued_at + CODE_RESEND_AFTER:
        wait = int((last.issued_at + CODE_RESEND_AFTER - now).total_seconds()) + 1
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"a code was sent moments ago; ask for another in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    session.exec(
        update(SigningCode)
        .where(col(SigningCode.document_id) == doc.id, col(SigningCode.status) == "active")
        .values(status="replaced")
    )
    code = new_signing_code(CODE_DIGITS)
    row = SigningCode(
        document_id=doc.id,
        application_no=doc.application_no,
        code_hash="",
        issued_at=now,
        expires_at=now + CODE_VALID_FOR,
    )
    row.code_hash = signing_code_hash(code, code_id=row.id, secret=settings.secret_key)
    session.add(row)
    minutes = int(CODE_VALID_FOR.total_seconds() // 60)
    session.add(
        Notice(
            key=f"{doc.application_no}/signing-code/{row.id}",
            application_no=doc.application_no,
            channel=SMS_CHANNEL,
            recipient=BORROWER_RECIPIENT,
            template=SIGNING_CODE_TEMPLATE,
            payload={"code": code, "minutes": minutes},
            created_at=now,
        )
    )
    append_audit(
        session,
        key=f"document/{doc.id}/code-sent/{row.id}",
        application_no=doc.application_no,
        actor="borrower",
        action="contract.code_sent",
        occurred_at=now,
        detail={
            "document_id": str(doc.id),
            "code_id": str(row.id),
            "expires_at": row.expires_at.isoformat(),
            "client_address": _client(request),
        },
    )
    session.commit()
    return SigningCodeOut(
        sent_to=mask_phone(borrower.phone),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        max_tries=CODE_MAX_TRIES,
        resend_after_seconds=int(CODE_RESEND_AFTER.total_seconds()),
    )


def _missing_confirmations(confirmed: list[str]) -> HTTPException | None:
    unknown = unknown_confirmations(confirmed)
    if unknown:
        return unprocessable("confirmed", f"unknown disclosure items: {', '.join(unknown)}")
    missing = unconfirmed(confirmed)
    if not missing:
        return None
    texts = {item.id: item.text_zh for item in DISCLOSURE_ITEMS}
    detail: list[dict[str, Any]] = [
        {
            "type": "value_error",
            "loc": ["body", "confirmed", item_id],
            "msg": f"the borrower must confirm this disclosure to sign: {texts[item_id]}",
        }
        for item_id in missing
    ]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def _check_code(
    session: Session, doc: Document, code: str, *, secret: str, now: datetime, client: str
) -> SigningCode:
    """The open code ``code`` matches, else a 422 naming ``code`` and why (a wrong code counts
    a try; the last try locks the code)."""
    row = session.exec(
        select(SigningCode)
        .where(SigningCode.document_id == doc.id, SigningCode.status != "replaced")
        .order_by(col(SigningCode.issued_at).desc())
    ).first()
    if row is None:
        raise unprocessable("code", "request a code first (POST /sign/{token}/code)")
    if row.status == "used":  # a second submission of a signature under way (or one refused)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this code was already used to sign; if the contract is not signed, "
            "request a new code",
        )
    if row.status == "locked":
        raise unprocessable(
            "code", "this code is locked after too many wrong tries; request a new one"
        )
    if now >= row.expires_at:
        raise unprocessable("code", "this code has expired; request a new one")
    # The try is taken in the database before the code is compared, and only while the code is
    # open and has tries left: of concurrent attempts at most CODE_MAX_TRIES are ever compared,
    # the others are refused as locked (a burst of guesses cannot outrun the limit).
    taken = session.exec(
        update(SigningCode)
        .where(
            col(SigningCode.id) == row.id,
            col(SigningCode.status) == "active",
            col(SigningCode.tries) < CODE_MAX_TRIES,
        )
        .values(tries=col(SigningCode.tries) + 1)
        .returning(col(SigningCode.tries))
    ).first()
    session.commit()
    if taken is None:
        session.refresh(row)
        if row.status == "used":
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail="this code was already used to sign; if the contract is not signed, "
                "request a new code",
            )
        raise unprocessable(
            "code", "this code is locked after too many wrong tries; request a new one"
        )
    tries = int(taken[0])
    if signing_code_matches(code, row.code_hash, code_id=row.id, secret=secret):
        return row
    locked = tries >= CODE_MAX_TRIES
    if locked:
        session.exec(
            update(SigningCode)
            .where(col(SigningCode.id) == row.id, col(SigningCode.status) == "active")
            .values(status="locked")
        )
    append_audit(
        session,
        key=f"document/{doc.id}/code-failed/{row.id}/{tries}",
        application_no=doc.application_no,
        actor="borrower",
        action="contract.code_locked" if locked else "contract.code_failed",
        occurred_at=now,
        detail={
            "document_id": str(doc.id),
            "code_id": str(row.id),
            "tries": tries,
            "client_address": client,
        },
    )
    session.commit()
    if locked:
        raise unprocessable("code", "wrong code; it is now locked, request a new one")
    left = CODE_MAX_TRIES - tries
    raise unprocessable("code", f"wrong code; {left} {'try' if left == 1 else 'tries'} left")


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
    """The borrower signs: the one-time code sent to their phone, every disclosure confirmed,
    and the name and last four characters of the ID matching. The signature binds the PDF's
    sha256; the worker appends the signing record as the PDF's last page. A code signs once;
    five wrong identity attempts lock the link."""
    doc, borrower, _, _ = _document(session, token, settings.secret_key)
    _check_signable(session, doc)
    if (refused := _missing_confirmations(body.confirmed)) is not None:
        raise refused
    now = clock()
    client = _client(request)
    code = _check_code(session, doc, body.code, secret=settings.secret_key, now=now, client=client)
    mismatched = [
        field
        for field, matches in (
            ("signer_name", body.signer_name == borrower.name),
            ("id_last4", body.id_last4.upper() == borrower.id_number[-4:]),
        )
        if not matches
    ]
    if mismatched:
        _record_failed_attempt(session, doc, mismatched=mismatched, client_address=client, at=now)
        raise unprocessable("id_last4", "signer_name and id_last4 do not match the borrower")
    # The code signs once: of two submissions racing with it, one gets it.
    used = session.exec(
        update(SigningCode)
        .where(col(SigningCode.id) == code.id, col(SigningCode.status) == "active")
        .values(status="used", used_at=now)
    )
    if used.rowcount != 1:
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="this code was already used; the contract is signing"
        )
    # The evidence stays in the database, never in workflow history: the worker's activity
    # reads it to write the signing record page.
    evidence = session.get(ContractSignature, doc.id) or ContractSignature(
        document_id=doc.id,
        application_no=doc.application_no,
        signer_name=borrower.name,
        client_address=client,
        user_agent="",
        confirmed=[],
        code_id=code.id,
        code_issued_at=code.issued_at,
        submitted_at=now,
        document_sha256=doc.sha256,
    )
    evidence.signer_name = borrower.name
    evidence.client_address = client[:64]
    evidence.user_agent = request.headers.get("user-agent", "")[:300]
    evidence.confirmed = [i for i in (item.id for item in DISCLOSURE_ITEMS) if i in body.confirmed]
    evidence.code_id = code.id
    evidence.code_issued_at = code.issued_at
    evidence.submitted_at = now
    evidence.document_sha256 = doc.sha256
    session.add(evidence)
    doc.signer_name = borrower.name
    doc.signer_address = client[:64]
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
