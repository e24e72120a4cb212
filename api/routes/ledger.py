"""A loan's ledger corrections and its archive: the reversal of a bounced payment (maker; the
checker decides the ``payment_reversal`` task) and the archive manifest of a settled loan."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Response, status
from sqlmodel import select

from api.deps import CurrentUserInfo, SessionDep, TemporalDep, require
from api.loan_views import load_application, refuse_if_settled
from api.schemas import ArchivedDocumentOut, ArchiveOut, ReversalIn, ReversalOut
from api.workflow_calls import update_loan
from domain.identifiers import REVERSAL_UPDATE
from domain.lifecycle import Stage
from domain.permissions import Action
from models.shapes import ReversalRequest, ReversalTicket
from models.tables import LoanArchive, Payment

router = APIRouter(prefix="/loans", tags=["loans"])


@router.post(
    "/{application_no}/payments/{payment_id}/reversal",
    response_model=ReversalOut,
    status_code=status.HTTP_202_ACCEPTED,
)
def request_reversal(
    application_no: str,
    payment_id: str,
    body: ReversalIn,
    response: Response,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUserInfo = require(Action.REQUEST_PAYMENT_REVERSAL),
) -> ReversalOut:
    """operations_specialist. Ask for a bounced payment to be reversed: a ``payment_reversal``
    task opens for another operations specialist (202); a repeat while it is open answers with
    the same task (200). 409 when the payment was already reversed, or the loan is not in
    SERVICING (a SETTLED loan is read-only; a loan waiting for its settlement confirmation still
    takes reversals)."""
    app, _ = load_application(session, application_no, user)
    try:
        pid = uuid.UUID(payment_id)
    except ValueError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"payment {payment_id} does not exist"
        ) from None
    payment = session.get(Payment, pid)
    if payment is None or payment.application_no != application_no:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"payment {payment_id} is not a payment of loan {application_no}",
        )
    if payment.reversed_at is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"payment {payment.external_ref} was already reversed "
            f"({payment.reversed_at.isoformat()})",
        )
    if payment.mode == "credit":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"{payment.external_ref} applied credit held; it is not a payment to reverse",
        )
    refuse_if_settled(app, "its payments can no longer be reversed")
    if app.stage != Stage.SERVICING.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"payments are reversed in SERVICING, not {app.stage}",
        )
    ticket: ReversalTicket = update_loan(
        temporal,
        application_no,
        REVERSAL_UPDATE,
        ReversalRequest(
            external_ref=payment.external_ref,
            reason=body.reason,
            user=user.username,
            roles=user.roles,
            payment_id=str(payment.id),
        ),
        ReversalTicket,
    )
    if ticket.duplicate:
        response.status_code = status.HTTP_200_OK
    return ReversalOut(
        task_id=ticket.task_id,
        payment_id=str(payment.id),
        external_ref=ticket.external_ref,
        duplicate=ticket.duplicate,
    )


@router.get("/{application_no}/archive", response_model=ArchiveOut)
def get_archive(
    application_no: str,
    session: SessionDep,
    user: CurrentUserInfo = require(Action.READ_ARCHIVE),
) -> ArchiveOut:
    """operations_specialist, department_manager, auditor: the archive manifest of a settled
    loan (each document's id, kind, file name, size and sha256, recomputed from the stored bytes
    and checked against the recorded one; the retention date); 404 before it is archived."""
    load_application(session, application_no, user)
    archive = session.exec(
        select(LoanArchive).where(LoanArchive.application_no == application_no)
    ).first()
    if archive is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"loan {application_no} has no archive (archived once its settlement is "
            "confirmed)",
        )
    return ArchiveOut(
        application_no=archive.application_no,
        archived_at=archive.archived_at,
        settled_on=archive.settled_on,
        retain_until=archive.retain_until,
        document_count=archive.document_count,
        intact=archive.intact,
        bundle_sha256=archive.bundle_sha256,
        bundle_size=archive.bundle_size,
        documents=[ArchivedDocumentOut(**d) for d in archive.manifest],
    )
