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
from models.borrowers import BorrowerFields, record_borrower_data
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
    """business_officer. Records the borrower, the version of their data the application is
    based on (a new one when the data changed) and the application, then starts its workflow."""
    now = clock()
    try:
        policy = loan_policy_in_force(
            session.get_bind(),  # type: ignore[arg-type]
            business_date(now, settings.business_timezone),
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    b = body.borrower
    data = BorrowerFields(
        name=b.name, phone=b.phone, bank_card=b.bank_card, monthly_income=b.monthly_income
    )
    application_no = new_application_no(now, settings.business_timezone)
    borrower = session.exec(
        select(Borrower).where(Borrower.id_number == b.id_number.upper())
    ).first()
    if borrower is None:
        borrower = Borrower(id_number=b.id_number.upper(), **vars(data))
    elif borrower.name != b.name:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="borrower.id_number is on record under another name; check the ID document",
        )
    try:
        session.add(borrower)
        session.flush()
        # The data this application is based on: the latest version when unchanged, else a new
        # one. Earlier applications keep theirs (the borrower row itself is never changed).
        version = record_borrower_data(
            session,
            borrower,
            data,
            by=user.username,
            reason=f"submitted with application {application_no}",
            at=now,
            application_no=application_no,
        )
        app = Application(
            application_no=application_no,
            borrower_id=borrower.id,
            borrower_version=version.version,
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
        # Without a workflow the application row goes too (the borrower and the version of
        # their data stay: they are what the officer entered, and audited).
        session.delete(app)
        session.commit()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the loan process could not be started; the application was not recorded ({exc})",
        ) from exc
    return ApplicationOut(application_no=app.application_no, stage=app.stage)
