"""Loan applications: the business officer submits one and its workflow starts; the reviewers' page
shows what they decide on."""

from __future__ import annotations

import secrets
import string
import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.audit_events import record_pii_reveal
from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, TemporalDep, require
from api.errors import service_unavailable, unprocessable
from api.loan_views import load_application
from api.routes.documents import document_out, inline_document
from api.schemas import (
    ApplicantOut,
    ApplicationIn,
    ApplicationOut,
    ApplicationView,
    AssessmentOut,
    CheckOut,
)
from api.workflow_calls import start_loan
from domain.calendar import business_date
from domain.lifecycle import Role, Stage
from domain.masking import mask_bank_card, mask_id_number, mask_name, mask_phone
from domain.permissions import Action
from loanops.policy import loan_policy_in_force
from models.assessments import summary_of
from models.audit import append_audit
from models.borrowers import BorrowerFields, record_borrower_data
from models.shapes import LoanInput
from models.tables import (
    Application,
    Assessment,
    Borrower,
    Document,
    User,
    borrower_by_id_number,
    borrower_data_of,
)

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
        name=b.name,
        phone=b.phone,
        bank_card=b.bank_card,
        monthly_income=b.monthly_income,
        employment_years=b.employment_years,
    )
    application_no = new_application_no(now, settings.business_timezone)
    borrower = borrower_by_id_number(session, b.id_number.upper())
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
        # Lost a race (another submission created the same new borrower first): nothing was
        # stored; the same request succeeds when sent again.
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="please retry the submission",
            headers={"Retry-After": "1"},
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
                contract_language=body.contract_language,
            ),
            task_queue=settings.temporal_task_queue,
        )
    except Exception as exc:
        # Without a workflow the application row goes too (the borrower and the version of
        # their data stay: they are what the officer entered, and audited).
        session.delete(app)
        session.commit()
        raise service_unavailable(
            f"the loan process could not be started; the application was not recorded ({exc})"
        ) from exc
    return ApplicationOut(application_no=app.application_no, stage=app.stage)


@router.get("/{application_no}", response_model=ApplicationView)
def get_application(
    application_no: str,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.READ_APPLICATION),
) -> ApplicationView:
    """Any staff role: what the reviewers decide on — the application, the borrower as it was
    submitted (masked unless the role reads personal data), the documents, and the latest
    automatic assessment (checks, bureau answer, score with breakdown and reason codes)."""
    app, _ = load_application(session, application_no, user)
    data = borrower_data_of(session, app)
    if data is None:  # the foreign key makes this impossible short of manual edits
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail="borrower missing")
    full = user.can(Action.READ_BORROWER_PII)
    docs = session.exec(
        select(Document)
        .where(Document.application_no == app.application_no)
        .order_by(col(Document.created_at), col(Document.id))
    ).all()
    latest = session.exec(
        select(Assessment)
        .where(Assessment.application_no == app.application_no)
        .order_by(col(Assessment.seq).desc())
    ).first()
    view = ApplicationView(
        application_no=app.application_no,
        stage=app.stage,
        submitted_by=app.submitted_by,
        submitted_at=app.created_at,
        amount=app.amount,
        term_months=app.term_months,
        purpose=app.purpose,
        repayment_source=app.repayment_source,
        applicant=ApplicantOut(
            name=data.name if full else mask_name(data.name),
            id_number=data.id_number if full else mask_id_number(data.id_number),
            phone=data.phone if full else mask_phone(data.phone),
            bank_card=data.bank_card if full else mask_bank_card(data.bank_card),
            monthly_income=data.monthly_income,
            employment_years=data.employment_years,
            version=data.version,
        ),
        policy_version=app.policy_version,
        documents=[document_out(d).model_dump(mode="json") for d in docs],
        assessment=_assessment_out(latest) if latest else None,
    )
    if full:
        record_pii_reveal(
            session,
            viewer=user.username,
            application_no=app.application_no,
            obj=f"application/{app.application_no}/applicant",
            fields=["name", "id_number", "phone", "bank_card"],
            at=clock(),
        )
    return view


def _assessment_out(row: Assessment) -> AssessmentOut:
    score = row.score
    summary = summary_of(row)
    return AssessmentOut(
        round=row.seq,
        assessed_at=row.created_at,
        checks=[CheckOut(**c) for c in row.checks],
        bureau_status=row.bureau_status,
        bureau=row.bureau,
        score=int(score["score"]),
        grade=row.grade,
        probability_of_default=str(score["pd"]),
        recommendation=row.recommendation,
        knock_outs=list(summary.knock_outs),
        top_reasons=[str(r) for r in score["top_reasons"]],
        breakdown=list(score["attributes"]),
        scorecard_version=row.scorecard_version,
    )


@router.get(
    "/{application_no}/risk-report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def get_risk_report_pdf(
    application_no: str,
    session: SessionDep,
    viewer: CurrentUserInfo = require(Action.READ_APPLICATION),
) -> Response:
    """Any staff role: the latest risk report (identifiers masked), as prepared for the risk
    manager's task; 404 until the application reaches risk review."""
    return _risk_report(session, application_no, "risk_report", viewer)


@router.get(
    "/{application_no}/risk-report",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
def get_risk_report_html(
    application_no: str,
    session: SessionDep,
    viewer: CurrentUserInfo = require(Action.READ_APPLICATION),
) -> Response:
    """Any staff role: the latest risk report as a web page."""
    return _risk_report(session, application_no, "risk_report_html", viewer)


def _risk_report(
    session: Session, application_no: str, kind: str, viewer: CurrentUserInfo
) -> Response:
    app, _ = load_application(session, application_no, viewer)
    doc = session.exec(
        select(Document)
        .where(Document.application_no == app.application_no, Document.kind == kind)
        .order_by(col(Document.created_at).desc())
    ).first()
    if doc is None or doc.content is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail="no risk report has been prepared yet"
        )
    return inline_document(doc)


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # The business officer who may see and act on the application besides its submitter;
    # null removes the assignment.
    assigned_officer: str | None = Field(max_length=64)


class AssignmentOut(BaseModel):
    application_no: str
    submitted_by: str
    assigned_officer: str | None


@router.put("/{application_no}/assigned-officer", response_model=AssignmentOut)
def assign_officer(
    application_no: str,
    body: AssignmentIn,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.ASSIGN_OFFICER),
) -> AssignmentOut:
    """department_manager: name a second business officer for an application (who then sees
    and acts on it as its submitter does — collection, a colleague's leave), or none. The
    officer must be an active business officer (422 naming ``assigned_officer``). Audited."""
    app, _ = load_application(session, application_no, user)
    officer = body.assigned_officer or None
    if officer is not None:
        row = session.exec(select(User).where(User.username == officer)).first()
        if row is None or not row.is_active or Role.BUSINESS_OFFICER.value not in row.roles:
            raise unprocessable("assigned_officer", "must be an active business officer")
    before = app.assigned_officer
    if before != officer:
        app.assigned_officer = officer
        session.add(app)
        append_audit(
            session,
            key=f"application/{app.application_no}/assigned/{uuid.uuid4().hex}",
            application_no=app.application_no,
            actor=user.username,
            action="application.officer_assigned",
            occurred_at=clock(),
            detail={"before": before, "after": officer},
        )
        session.commit()
    return AssignmentOut(
        application_no=app.application_no,
        submitted_by=app.submitted_by,
        assigned_officer=app.assigned_officer,
    )
