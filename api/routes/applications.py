"""Loan applications: the business officer submits one, and its workflow starts."""

from __future__ import annotations

import secrets
import string
from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, TemporalDep, require
from api.schemas import ApplicationIn, ApplicationOut
from api.workflow_calls import start_loan
from domain.calendar import business_date
from domain.lifecycle import Stage
from domain.permissions import Action
from loanops.policy import loan_policy_in_force
from models.shapes import LoanInput
from models.tables import Application, Borrower

router = APIRouter(prefix="/applications", tags=["applications"])

_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"


def new_application_no(now: datetime, tz_name: str) -> str:
    """A20261128-7K3F9Q: the business date and six unambiguous random characters."""
    day = business_date(now, tz_name).strftime("%Y%m%d")
    return f"A{day}-{''.join(secrets.choice(_ALPHABET) for _ in range(6))}"


@router.post("", response_model=ApplicationOut, status_code=status.HTTP_201_CREATED)
def submit_application(
    body: ApplicationIn,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.SUBMIT_APPLICATION),
) -> ApplicationOut:
    """business_officer. Records the borrower and the application, then starts its workflow."""
    now = clock()
    try:
        policy = loan_policy_in_force(
            session.get_bind(),  # type: ignore[arg-type]
            business_date(now, settings.business_timezone),
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    b = body.borrower
    borrower = session.exec(
        select(Borrower).where(Borrower.id_number == b.id_number.upper())
    ).first()
    if borrower is None:
        borrower = Borrower(
            id_number=b.id_number.upper(),
            name=b.name,
            phone=b.phone,
            bank_card=b.bank_card,
            monthly_income=b.monthly_income,
        )
    elif borrower.name != b.name:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="borrower.id_number is on record under another name; check the ID document",
        )
    else:
        borrower.phone, borrower.bank_card = b.phone, b.bank_card
        borrower.monthly_income = b.monthly_income
    session.add(borrower)
    session.flush()
    app = Application(
        application_no=new_application_no(now, settings.business_timezone),
        borrower_id=borrower.id,
        amount=body.amount,
        term_months=body.term_months,
        purpose=body.purpose,
        repayment_source=body.repayment_source,
        stage=Stage.INTAKE_REVIEW.value,
        submitted_by=user.username,
        policy_version=policy.version,
        created_at=now,
        updated_at=now,
    )
    session.add(app)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="please retry the submission"
        ) from None
    try:
        start_loan(
            temporal,
            LoanInput(
                application_no=app.application_no,
                submitted_by=user.username,
                requested_amount=body.amount,
                requested_term_months=body.term_months,
                policy=policy,
            ),
            task_queue=settings.temporal_task_queue,
        )
    except Exception as exc:
        # Nothing is half-done: without a workflow the application row goes too.
        session.delete(app)
        session.commit()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the loan process could not be started; nothing was recorded ({exc})",
        ) from exc
    return ApplicationOut(application_no=app.application_no, stage=app.stage)
