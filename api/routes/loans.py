"""Loans: the live view, the managers' list, the timeline, the contract, payments, withdrawal
and the payoff quote."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import and_, delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.audit_events import record_pii_reveal, record_refused_payment
from api.deps import (
    ClockDep,
    CurrentUserInfo,
    SessionDep,
    SettingsDep,
    TemporalDep,
    require,
)
from api.errors import unprocessable
from api.loan_views import (
    load_application,
    load_record,
    loan_out,
    own_applications,
    pii_of,
    policy_of,
    refuse_if_settled,
)
from api.pagination import COUNT_DOC, CURSOR_DOC, decode_cursor, encode_cursor
from api.routes.documents import inline_document
from api.schemas import (
    MAX_OFFSET,
    AllocationLineOut,
    DecisionOut,
    LoanOut,
    LoanPage,
    LoanSummary,
    PaymentIn,
    PaymentOut,
    PayoffQuoteIn,
    PayoffQuoteOut,
    Timeline,
    TimelineEntry,
    WithdrawIn,
)
from api.workflow_calls import WorkflowRefusal, update_loan
from domain.allocation import PaymentMode
from domain.calendar import business_date
from domain.identifiers import PAYMENT_UPDATE, WITHDRAW_UPDATE
from domain.lifecycle import Stage
from domain.masking import mask_name, scrub_pii
from domain.money import FEN, format_money
from domain.permissions import Action
from domain.prepayment import payoff_quote
from models.shapes import DecisionResult, PaymentRequest, PaymentResult, WithdrawRequest
from models.tables import (
    Application,
    AuditEvent,
    Borrower,
    BorrowerVersion,
    ContractSignature,
    Document,
    Installment,
    Loan,
    Payment,
    PaymentRef,
    contract_of,
    settlement_certificate_of,
    utcnow,
)

router = APIRouter(prefix="/loans", tags=["loans"])


@router.get("", response_model=LoanPage)
def list_loans(
    session: SessionDep,
    stage: Stage | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    cursor: str | None = Query(None, description=CURSOR_DOC),
    count: bool = Query(True, description=COUNT_DOC),
    user: CurrentUserInfo = require(Action.LIST_LOANS),
) -> LoanPage:
    """Any role: the managers' list, newest first, optionally by stage; a business officer's
    own applications only (submitted or assigned). Pages by offset or by ``cursor`` (keyset:
    the next page starts after the last loan of this one, along the index
    ``ix_applications_(stage_)created``)."""
    where: list[Any] = [Application.stage == stage.value] if stage else []
    own = own_applications(user)
    if own is not None:
        where.append(own)
    total = (
        session.exec(select(func.count()).select_from(Application).where(*where)).one()
        if count
        else None
    )
    if cursor is not None:
        created, number = decode_cursor(cursor, (datetime, str), offset)
        where.append(
            or_(
                col(Application.created_at) < created,
                and_(
                    col(Application.created_at) == created,
                    col(Application.application_no) < number,
                ),
            )
        )
    # The page first (one index walk), then its borrowers' names for those rows only.
    page = select(Application).where(*where)
    page = page.order_by(col(Application.created_at).desc(), col(Application.application_no).desc())
    apps = session.exec(page.offset(offset).limit(limit + 1)).all()
    more, apps = len(apps) > limit, list(apps[:limit])
    names = _submitted_names(session, apps)
    last = apps[-1] if apps else None
    return LoanPage(
        items=[
            LoanSummary(
                application_no=a.application_no,
                stage=a.stage,
                borrower_name=names[a.application_no]
                if user.can(Action.READ_BORROWER_PII)
                else mask_name(names[a.application_no]),
                amount=a.amount,
                term_months=a.term_months,
                submitted_by=a.submitted_by,
                created_at=a.created_at,
                updated_at=a.updated_at,
            )
            for a in apps
        ],
        total=total,
        limit=limit,
        offset=offset,
        next_cursor=encode_cursor([last.created_at, last.application_no])
        if more and last is not None
        else None,
    )


def _submitted_names(session: SessionDep, apps: list[Application]) -> dict[str, str]:
    """The name each application was submitted with (its borrower version; the borrower row
    for applications without one), by application number: one query for the page's rows."""
    if not apps:
        return {}
    numbers = [a.application_no for a in apps]
    rows = session.exec(
        select(Application.application_no, Borrower, BorrowerVersion)
        .join(Borrower, col(Borrower.id) == col(Application.borrower_id))
        .outerjoin(
            BorrowerVersion,
            (col(BorrowerVersion.borrower_id) == col(Application.borrower_id))
            & (col(BorrowerVersion.version) == col(Application.borrower_version)),
        )
        .where(col(Application.application_no).in_(numbers))
    ).all()
    return {no: (v or b).name for no, b, v in rows}


@router.get("/{application_no}", response_model=LoanOut)
def get_loan(
    application_no: str,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.READ_LOAN),
) -> LoanOut:
    """Any role. Live from the workflow while it runs; from the database once it has closed."""
    record = load_record(session, temporal, application_no, user)
    today = business_date(clock(), record.policy.business_timezone)
    return loan_out(record, user=user, settings=settings, today=today)


@router.get("/{application_no}/timeline", response_model=Timeline)
def get_timeline(
    application_no: str,
    session: SessionDep,
    clock: ClockDep,
    viewer: CurrentUserInfo = require(Action.READ_TIMELINE),
) -> Timeline:
    """Any role: every recorded step (what, who, when), oldest first; personal data in the
    details masked for roles that see it masked (customer service)."""
    _app, borrower = load_application(session, application_no, viewer)
    full = viewer.can(Action.READ_BORROWER_PII)
    pii = pii_of(borrower)
    events = session.exec(
        select(AuditEvent)
        .where(AuditEvent.application_no == application_no)
        .order_by(col(AuditEvent.occurred_at), col(AuditEvent.recorded_at))
    ).all()
    timeline = Timeline(
        application_no=application_no,
        entries=[
            TimelineEntry(
                at=e.occurred_at,
                actor=e.actor,
                action=e.action,
                detail=e.detail if full else cast(dict[str, Any], scrub_pii(e.detail, pii)),
            )
            for e in events
        ],
    )
    if full and any(scrub_pii(e.detail, pii) != e.detail for e in events):
        record_pii_reveal(
            session,
            viewer=viewer.username,
            application_no=application_no,
            obj=f"loan/{application_no}/timeline",
            fields=["timeline"],
            at=clock(),
        )
    return timeline


@router.get("/{application_no}/contract.pdf", response_class=Response)
def get_contract_pdf(
    application_no: str,
    session: SessionDep,
    viewer: CurrentUserInfo = require(Action.READ_CONTRACT),
) -> Response:
    """Any role: the contract as rendered and, once the borrower signed, the signed PDF (the
    signing record is its last page)."""
    load_application(session, application_no, viewer)
    doc = contract_of(session, application_no)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no contract has been prepared yet")
    signature = session.get(ContractSignature, doc.id)
    if signature is not None and signature.signed_document_id is not None:
        signed = session.get(Document, signature.signed_document_id)
        if signed is not None:
            return inline_document(signed)
    return inline_document(doc)


@router.get("/{application_no}/settlement-certificate.pdf", response_class=Response)
def get_settlement_certificate_pdf(
    application_no: str,
    session: SessionDep,
    viewer: CurrentUserInfo = require(Action.READ_SETTLEMENT_CERTIFICATE),
) -> Response:
    """operations_specialist, business_officer, customer_service, department_manager, auditor:
    the settlement certificate (结清证明), issued when the loan settles; 404 before."""
    load_application(session, application_no, viewer)
    doc = settlement_certificate_of(session, application_no)
    if doc is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail="the loan has no settlement certificate (not settled)"
        )
    return inline_document(doc)


def _payment_out(p: Payment, stage: str, *, duplicate: bool) -> PaymentOut:
    return PaymentOut(
        external_ref=p.external_ref,
        mode=p.mode,
        amount=p.amount,
        paid_at=p.paid_at,
        allocation=[
            AllocationLineOut(
                installment=int(line["installment"]),
                component=line["component"],
                amount=Decimal(line["amount"]),
            )
            for line in p.allocation
        ],
        credit=p.credit_after,
        stage=stage,
        duplicate=duplicate,
        payment_id=str(p.id),
    )


def _held_elsewhere(external_ref: str, holder: str) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        detail=f"external_ref {external_ref} is already held by loan {holder}: a bank reference "
        "identifies one movement of money, whatever loan it is posted to",
    )


def _claim_ref(session: Session, external_ref: str, application_no: str, user: str) -> str | None:
    """Claim ``external_ref`` for ``application_no`` in its own committed transaction; the
    primary key of ``payment_refs`` decides between concurrent claims. Returns None when this
    call claimed it, else the loan that holds it."""
    session.rollback()  # the reads so far end here; the claim is a transaction of its own
    for _ in range(3):
        session.add(
            PaymentRef(external_ref=external_ref, application_no=application_no, claimed_by=user)
        )
        try:
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        holder = session.get(PaymentRef, external_ref)
        if holder is not None:
            return holder.application_no
        # Released in between (the first poster's payment was refused): claim it again.
    raise HTTPException(
        status.HTTP_409_CONFLICT, detail=f"external_ref {external_ref} is being posted: retry"
    )


def _release_ref(session: Session, external_ref: str, application_no: str) -> None:
    """The loan refused the payment (nothing booked): the reference is free again."""
    session.rollback()
    session.execute(
        delete(PaymentRef).where(
            col(PaymentRef.external_ref) == external_ref,
            col(PaymentRef.application_no) == application_no,
        )
    )
    session.commit()


# Stages in which money paid in belongs to a loan the lender paid out: a refusal there (the loan
# settled or settling meanwhile) is money to return to the payer, on record.
ON_THE_BOOKS = frozenset({Stage.SERVICING.value, Stage.WRITTEN_OFF.value, Stage.SETTLED.value})


def _refused_payment(
    session: Session, body: PaymentIn, application_no: str, user: str, reason: str
) -> None:
    record_refused_payment(
        session,
        actor=user,
        application_no=application_no,
        external_ref=body.external_ref,
        amount=format_money(body.amount),
        reason=reason,
        at=utcnow(),
    )


# A payment may exceed what is owed by a margin (a borrower rounding up, a bank fee refunded
# with it; the excess becomes credit and is refunded): the larger of ¥1,000.00 and 10% of the
# principal. Anything above is a keying or bank error (¥999,999,999,999.99 once settled a loan and
# queued a refund of nearly all of it) and is refused before the ledger sees it.
PAYMENT_MARGIN_FLOOR = Decimal("1000.00")
PAYMENT_MARGIN_RATE = Decimal("0.10")


def payment_ceiling(session: Session, application_no: str) -> tuple[Decimal, Decimal] | None:
    """(the most this loan could still owe, the margin allowed above it), from its recorded
    schedule: every installment's principal, interest, fees and penalty accrued so far, less
    what was paid. None before the loan has a schedule (the ledger refuses by stage then)."""
    loan = session.exec(select(Loan).where(Loan.application_no == application_no)).first()
    rows = session.exec(
        select(Installment).where(
            Installment.application_no == application_no, Installment.status != "cancelled"
        )
    ).all()
    if loan is None or not rows:
        return None
    owed = sum(
        (
            i.principal_due
            + i.interest_due
            + i.fee_due
            + i.penalty_accrued
            - i.principal_paid
            - i.interest_paid
            - i.fee_paid
            - i.penalty_paid
            for i in rows
        ),
        Decimal("0"),
    )
    margin = max(PAYMENT_MARGIN_FLOOR, (loan.principal * PAYMENT_MARGIN_RATE).quantize(FEN))
    return max(owed, Decimal("0")), margin


@router.post("/{application_no}/payments", response_model=PaymentOut, status_code=201)
def post_payment(
    application_no: str,
    body: PaymentIn,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    user: CurrentUserInfo = require(Action.POST_PAYMENT),
) -> PaymentOut:
    """operations_specialist. A repayment, an early payoff or a partial prepayment (``mode``).
    The same external_ref twice records one payment (the second call answers 200 with
    ``duplicate: true`` and the first result); the same reference with other figures is a 409.

    A bank reference is unique across ALL loans: one already held by another loan is refused
    with a 409 naming that loan, before the ledger is touched. The reference is claimed in the
    database (``payment_refs``) before the loan's ledger is asked to book it, so of two loans
    posting it at the same moment exactly one wins; of many identical posts to one loan exactly
    one answers 201, the others 200 with ``duplicate: true``. A payment the loan refuses (4xx)
    releases the reference; one whose outcome is unknown (503) keeps it for this loan only."""
    app, _ = load_application(session, application_no, user)
    existing = session.exec(
        select(Payment).where(Payment.external_ref == body.external_ref)
    ).first()
    if existing is not None:
        if existing.application_no != application_no:
            raise _held_elsewhere(body.external_ref, existing.application_no)
        if (existing.amount, existing.mode) != (body.amount, body.mode):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"external_ref {body.external_ref} was already used for another payment",
            )
        response.status_code = status.HTTP_200_OK
        return _payment_out(existing, app.stage, duplicate=True)
    # A repeat of a payment gets its first answer (above); a new one on a settled loan is refused
    # (and recorded: the money goes back to the payer).
    try:
        refuse_if_settled(app, "no payment can be posted")
    except HTTPException as exc:
        _refused_payment(session, body, application_no, user.username, str(exc.detail))
        raise
    bound = payment_ceiling(session, application_no)
    if bound is not None and body.amount > bound[0] + bound[1]:
        owed, margin = bound
        raise unprocessable(
            "amount",
            f"¥{format_money(body.amount)} is above ¥{format_money(owed + margin)}: the most this "
            f"loan could still owe (¥{format_money(owed)}) plus a margin of "
            f"¥{format_money(margin)}",
        )
    request = PaymentRequest(
        external_ref=body.external_ref,
        amount=body.amount,
        paid_at=body.paid_at,
        paid_on=business_date(body.paid_at, policy_of(session, app).business_timezone),
        recorded_by=user.username,
        mode=PaymentMode(body.mode),
        roles=user.roles,
    )
    stage = app.stage  # read now: the claim below may end the transaction the row came from
    holder = _claim_ref(session, body.external_ref, application_no, user.username)
    if holder is not None and holder != application_no:
        raise _held_elsewhere(body.external_ref, holder)
    first = holder is None
    # No database connection is held while the ledger books (the worker's activities need them).
    session.close()
    try:
        result: PaymentResult = update_loan(
            temporal,
            application_no,
            PAYMENT_UPDATE,
            request,
            PaymentResult,
            update_id=f"payment-{body.external_ref}",
        )
    except HTTPException as exc:
        if first and exc.status_code < 500:
            _release_ref(session, body.external_ref, application_no)
            if (
                isinstance(exc, WorkflowRefusal)
                and exc.refusal == "WrongStage"
                and stage in ON_THE_BOOKS
            ):
                # Settled (or settling) meanwhile: nothing booked, the money goes back. (A loan
                # not paid out yet refuses a payment as a mistaken post: nothing to return.)
                _refused_payment(session, body, application_no, user.username, exc.reason)
        raise
    duplicate = result.duplicate or not first
    if duplicate and result.amount != body.amount:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"external_ref {body.external_ref} was already used for another payment",
        )
    if duplicate:
        response.status_code = status.HTTP_200_OK
    session.rollback()  # end the read snapshot: the row the workflow's activity just wrote
    payment_id = session.exec(
        select(Payment.id).where(Payment.external_ref == body.external_ref)
    ).first()
    return PaymentOut(
        external_ref=result.external_ref,
        mode=body.mode,
        amount=result.amount,
        paid_at=body.paid_at,
        allocation=[
            AllocationLineOut(
                installment=line.installment, component=line.component.value, amount=line.amount
            )
            for line in result.lines
        ],
        credit=result.credit,
        stage=result.stage,
        duplicate=duplicate,
        payment_id=str(payment_id) if payment_id is not None else None,
    )


@router.post("/{application_no}/withdraw", response_model=DecisionOut)
def withdraw(
    application_no: str,
    body: WithdrawIn,
    session: SessionDep,
    temporal: TemporalDep,
    user: CurrentUserInfo = require(Action.WITHDRAW),
) -> DecisionOut:
    """business_officer or department_manager, before disbursement: the borrower walks away.
    A business officer only on their own applications (404 on others')."""
    app, _ = load_application(session, application_no, user)
    refuse_if_settled(app, "it can no longer be withdrawn")
    result: DecisionResult = update_loan(
        temporal,
        application_no,
        WITHDRAW_UPDATE,
        WithdrawRequest(user=user.username, roles=user.roles, reason=body.reason),
        DecisionResult,
    )
    return DecisionOut(task_id=result.task_id, stage=result.stage)


@router.post("/{application_no}/payoff-quote", response_model=PayoffQuoteOut)
def get_payoff_quote(
    application_no: str,
    body: PayoffQuoteIn,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    viewer: CurrentUserInfo = require(Action.QUOTE_PAYOFF),
) -> PayoffQuoteOut:
    """Any role: what settles the loan on ``as_of`` (principal, interest to date, penalties)."""
    record = load_record(session, temporal, application_no, viewer)
    if record.stage != Stage.SERVICING or record.annual_rate is None or not record.start_date:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"a payoff quote needs a loan in SERVICING, not {record.stage.value}",
        )
    if body.as_of < record.start_date:
        raise unprocessable("as_of", f"must not be before the loan started ({record.start_date})")
    quote = payoff_quote(
        installments=record.installments,
        as_of=body.as_of,
        annual_rate=record.annual_rate,
        start_date=record.start_date,
        penalty_policy=record.penalty,
        prepayment_fee_rate=record.prepayment_fee_rate,
        max_annual_rate=record.rate_cap,
    )
    return PayoffQuoteOut(
        application_no=application_no,
        as_of=quote.as_of,
        remaining_principal=quote.remaining_principal,
        accrued_interest=quote.accrued_interest,
        overdue_interest=quote.overdue_interest,
        fees=quote.fees,
        penalty=quote.penalty,
        prepayment_fee=quote.prepayment_fee,
        prepaid_credit=quote.prepaid_credit,
        total=quote.total,
        credit_held=record.credit,
        amount_to_pay=max(quote.total - record.credit, Decimal("0.00")),
    )
