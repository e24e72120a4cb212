"""Notices: what a loan's outbox said to staff and to the borrower and how it was delivered, and
the SMS gateway's delivery receipts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from adapters.sms import SIGNATURE_HEADER, verify_receipt
from api.audit_events import record_pii_reveal
from api.deps import (
    ClockDep,
    CurrentUserInfo,
    SessionDep,
    SettingsDep,
    get_engine,
    require,
    sms_gateway,
)
from api.loan_views import load_application, pii_of
from api.schemas import NoticeList, NoticeOut, SmsReceiptIn, SmsReceiptOut
from domain.masking import mask_phone, scrub_pii
from domain.notices import BORROWER_RECIPIENT, Channel, NoticeStatus, is_secret
from domain.permissions import Action
from loanops.notice_text import NoticeTemplateError, render_notice
from models.tables import Notice

router = APIRouter(tags=["notices"])


@router.get("/loans/{application_no}/notices", response_model=NoticeList)
def list_notices(
    application_no: str,
    session: SessionDep,
    clock: ClockDep,
    viewer: CurrentUserInfo = require(Action.READ_NOTICES),
) -> NoticeList:
    """Staff who deal with the borrower or oversee conduct: every notice of the loan, oldest
    first, with its delivery status; the borrower's number masked, secret texts never shown."""
    _app, borrower = load_application(session, application_no, viewer)
    pii = None if viewer.can(Action.READ_BORROWER_PII) else pii_of(borrower)
    notices = session.exec(
        select(Notice)
        .where(Notice.application_no == application_no)
        .order_by(col(Notice.created_at), col(Notice.key))
    ).all()
    items = [_notice_out(n, borrower_phone=borrower.phone, pii=pii) for n in notices]
    if pii is None and items != [
        _notice_out(n, borrower_phone=borrower.phone, pii=pii_of(borrower)) for n in notices
    ]:
        record_pii_reveal(
            session,
            viewer=viewer.username,
            application_no=application_no,
            obj=f"loan/{application_no}/notices",
            fields=["notices"],
            at=clock(),
        )
    return NoticeList(application_no=application_no, items=items)


def _notice_out(n: Notice, *, borrower_phone: str, pii: dict[str, str] | None) -> NoticeOut:
    """One notice; with ``pii`` (a viewer who sees personal data masked) the borrower's
    identifiers in its text are masked."""
    secret = is_secret(n.template)
    text = None
    if not secret:
        try:
            text = render_notice(n.channel, n.template, n.payload, application_no=n.application_no)
        except NoticeTemplateError:
            text = None
    if text is not None and pii is not None:
        text = str(scrub_pii(text, pii))
    recipient = n.recipient
    if n.channel == Channel.SMS.value:
        recipient = mask_phone(borrower_phone if n.recipient == BORROWER_RECIPIENT else recipient)
    return NoticeOut(
        id=str(n.id),
        channel=n.channel,
        template=n.template,
        recipient=recipient,
        status=n.status,
        attempts=n.attempts,
        secret=secret,
        text=text,
        created_at=n.created_at,
        not_before=n.not_before,
        sent_at=n.sent_at,
        delivered_at=n.delivered_at,
        last_error=n.last_error,
    )


@router.post(
    "/sms/receipts",
    response_model=SmsReceiptOut,
    dependencies=[sms_gateway(Action.RECORD_SMS_RECEIPT)],
    responses={401: {"description": "missing or wrong signature"}},
)
async def sms_receipt(
    request: Request,
    settings: SettingsDep,
    engine: Annotated[Engine, Depends(get_engine)],
    x_sms_signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> SmsReceiptOut:
    """The SMS gateway: a delivery receipt ``{message_id, status, at}``, its raw body signed
    with HMAC-SHA256 under the shared secret (401 otherwise). Idempotent; 404 for a message
    not (yet) recorded as sent, which the gateway retries."""
    body = await request.body()
    if not verify_receipt(body, x_sms_signature, settings.sms_callback_secret):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="invalid receipt signature")
    try:
        receipt = SmsReceiptIn.model_validate_json(body)
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
                for e in exc.errors()
            ],
        ) from None
    return await run_in_threadpool(_record_receipt, engine, receipt)


def _record_receipt(engine: Engine, receipt: SmsReceiptIn) -> SmsReceiptOut:
    with Session(engine) as s:
        notice = s.exec(
            select(Notice).where(Notice.provider_message_id == receipt.message_id)
        ).first()
        if notice is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"no notice sent as {receipt.message_id}"
            )
        if notice.status == NoticeStatus.SENT.value:
            if receipt.status == "delivered":
                notice.status = NoticeStatus.DELIVERED.value
                notice.delivered_at = receipt.at
            else:
                notice.status = NoticeStatus.FAILED.value
                notice.last_error = "undeliverable (the gateway's delivery receipt)"
            s.commit()
        return SmsReceiptOut(message_id=receipt.message_id, status=notice.status)
