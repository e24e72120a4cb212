"""Assessment activities before the intake review: the bureau's report (one HTTP call through the
adapter, retried by Temporal), then the automatic checks and the score, stored once per round.

Personal data never crosses into the workflow: the activities read the borrower from the
database by application number and return figures, codes and grades.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from pydantic import TypeAdapter
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.progress import beat
from activities.records import append_audit
from activities.rendering import RiskReportData, render_risk_report_html, render_risk_report_pdf
from adapters.bureau import BureauBadAnswer, BureauRequestRefused, BureauUnavailable, CreditBureau
from domain.bureau import BureauReport
from domain.calendar import zone
from domain.disclosure import CeilingPolicy
from domain.identifiers import BUSINESS_REFUSAL, risk_report_id
from domain.identity import age_on, check_resident_id
from domain.intake import IntakeFacts, knock_outs, purpose_category, run_checks
from domain.lifecycle import TERMINAL_STAGES
from domain.masking import mask_id_number, mask_name, mask_phone
from domain.schedule import RepaymentMethod, build_schedule
from domain.scorecard import ScoreInputs, ScoreResult, score
from loanops.db import session_scope
from loanops.policy import lpr_table
from loanops.scorecards import scorecard_in_force
from models.assessments import CHECKS, summary_of
from models.shapes import (
    AssessInput,
    AssessmentSummary,
    BureauAnswer,
    BureauRequest,
    RiskReportInput,
)
from models.tables import (
    Application,
    Assessment,
    Document,
    Installment,
    Loan,
    blacklisted,
    borrower_data_of,
)

_SCORE = TypeAdapter(ScoreResult)
_REPORT = TypeAdapter(BureauReport)


class AssessmentActivities:
    def __init__(self, engine: Engine, bureau: CreditBureau) -> None:
        self.engine = engine
        self.bureau = bureau

    @activity.defn
    def fetch_bureau_report(self, inp: BureauRequest) -> BureauAnswer:
        """One call to the bureau; a timeout or a 5xx raises so that Temporal retries it (the
        workflow gives up after its retry policy and asks the specialist)."""
        with Session(self.engine) as s:
            app = _application(s, inp.application_no)
            borrower = borrower_data_of(s, app)
            if borrower is None:
                raise ApplicationError("the application has no borrower", type=BUSINESS_REFUSAL)
            id_number, name = borrower.id_number, borrower.name
        try:
            report = self.bureau.report(id_number, name, request_id=inp.request_id)
        except (BureauBadAnswer, BureauRequestRefused) as exc:
            raise ApplicationError(
                "the credit bureau's answer could not be read",
                str(exc),
                type=BUSINESS_REFUSAL,
                non_retryable=True,
            ) from exc
        except BureauUnavailable as exc:
            raise ApplicationError(f"the credit bureau is unavailable: {exc}") from exc
        return BureauAnswer(status="found" if report else "no_record", report=report)

    @activity.defn
    def assess_application(self, inp: AssessInput) -> AssessmentSummary:
        """Run the checks and the score on the facts on record; store them once per round."""
        with session_scope(self.engine) as s:
            done = s.exec(
                select(Assessment).where(
                    Assessment.application_no == inp.application_no, Assessment.seq == inp.seq
                )
            ).first()
            if done is None:
                done = self._assess(s, inp)
                s.add(done)
                append_audit(
                    s,
                    key=f"{inp.application_no}/assessment/{inp.seq}",
                    application_no=inp.application_no,
                    actor="system",
                    action="application.assessed",
                    occurred_at=inp.at,
                    detail={
                        "grade": done.grade,
                        "recommendation": done.recommendation,
                        "scorecard_version": done.scorecard_version,
                        "bureau": done.bureau_status,
                    },
                )
            return summary_of(done)

    def _assess(self, s: Session, inp: AssessInput) -> Assessment:
        app = _application(s, inp.application_no)
        borrower = borrower_data_of(s, app)
        if borrower is None:
            raise ApplicationError("the application has no borrower", type=BUSINESS_REFUSAL)
        today = inp.business_date
        birth = check_resident_id(borrower.id_number, today=today).birth_date
        report = inp.bureau
        # One version of the rules for the checks and the score: the one in force today.
        card = scorecard_in_force(s, today)
        rules = card.intake
        facts = IntakeFacts(
            application_date=today,
            birth_date=birth,
            amount=app.amount,
            monthly_income=borrower.monthly_income,
            purpose=app.purpose,
            document_kinds=tuple(
                s.exec(
                    select(Document.kind).where(Document.application_no == app.application_no)
                ).all()
            ),
            other_open_applications=_other_open(s, app),
            blacklisted=blacklisted(s, borrower.id_number) is not None,
            outstanding_here=_outstanding_here(s, app),
            outstanding_elsewhere=sum((o.balance for o in report.open_loans), Decimal("0.00"))
            if report
            else (Decimal("0.00") if inp.bureau_status == "no_record" else None),
        )
        checks = run_checks(facts, rules)
        result = score(
            ScoreInputs(
                monthly_income=borrower.monthly_income,
                monthly_debt_payments=report.total_monthly_payments if report else Decimal("0"),
                new_monthly_payment=_reference_payment(self.engine, app, inp),
                requested_amount=app.amount,
                employment_years=borrower.employment_years,
                age=age_on(birth, today),
                delinquencies_24m=report.overdue_count_24m if report else 0,
                max_days_past_due_24m=report.max_days_past_due_24m if report else 0,
                enquiries_6m=report.enquiries_6m if report else 0,
                other_platform_loans=report.other_platform_loans if report else 0,
                purpose_category=purpose_category(app.purpose, rules),
                intake_knockouts=tuple(c.code for c in knock_outs(checks)),
            ),
            card,
        )
        return Assessment(
            application_no=app.application_no,
            seq=inp.seq,
            bureau_status=inp.bureau_status,
            bureau=_REPORT.dump_python(report, mode="json") if report else None,
            checks=list(CHECKS.dump_python(checks, mode="json")),
            score=_SCORE.dump_python(result, mode="json"),
            scorecard_version=result.card_version,
            grade=result.grade,
            recommendation=result.recommendation.value,
            created_at=inp.at,
        )


def _application(s: Session, application_no: str) -> Application:
    return s.exec(select(Application).where(Application.application_no == application_no)).one()


def _other_open(s: Session, app: Application) -> int:
    ended = [stage.value for stage in TERMINAL_STAGES]
    return int(
        s.exec(
            select(func.count())
            .select_from(Application)
            .where(
                Application.borrower_id == app.borrower_id,
                Application.application_no != app.application_no,
                col(Application.stage).not_in(ended),
            )
        ).one()
    )


def _outstanding_here(s: Session, app: Application) -> Decimal:
    """Principal the borrower still owes on this platform (active loans' installment rows)."""
    loans = s.exec(
        select(Loan.application_no)
        .join(Application, col(Application.application_no) == col(Loan.application_no))
        .where(Application.borrower_id == app.borrower_id, Loan.status == "active")
    ).all()
    if not loans:
        return Decimal("0.00")
    rows = s.exec(
        select(Installment).where(
            col(Installment.application_no).in_(loans), Installment.status != "cancelled"
        )
    ).all()
    return sum((r.principal_due - r.principal_paid for r in rows), Decimal("0.00"))


def _reference_payment(engine: Engine, app: Application, inp: AssessInput) -> Decimal:
    """The monthly payment the request would cost at the loan policy's ceiling rate in force
    (the most any product may charge): the scorecard judges affordability before a product is
    chosen."""
    lpr = lpr_table(engine).in_force(inp.business_date)
    ceiling = CeilingPolicy(lpr_multiple=inp.lpr_multiple, absolute_cap=inp.absolute_rate_cap)
    schedule = build_schedule(
        principal=app.amount,
        annual_rate=ceiling.binding_cap(lpr.one_year),
        term_months=app.term_months,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        start_date=inp.business_date,
    )
    return max(i.payment for i in schedule.installments)


class ReportActivities:
    """The risk report (HTML and PDF) of an assessment round, stored with the application's
    documents (kinds ``risk_report`` and ``risk_report_html``) once per round."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def render_risk_report(self, inp: RiskReportInput) -> str:
        """Returns the PDF's document id."""
        pdf_id = risk_report_id(inp.application_no, inp.seq, "pdf")
        with Session(self.engine) as s:
            if s.get(Document, pdf_id) is not None:
                return str(pdf_id)
            data = _report_data(s, inp)
        beat("loaded")
        html = render_risk_report_html(data)
        pdf = render_risk_report_pdf(data)
        beat("rendered")
        with session_scope(self.engine) as s:
            if s.get(Document, pdf_id) is not None:  # a retry got here first
                return str(pdf_id)
            for fmt, kind, content, content_type in (
                ("html", "risk_report_html", html.encode(), "text/html; charset=utf-8"),
                ("pdf", "risk_report", pdf, "application/pdf"),
            ):
                s.add(
                    Document(
                        id=risk_report_id(inp.application_no, inp.seq, fmt),
                        application_no=inp.application_no,
                        kind=kind,
                        filename=f"risk-report-{inp.application_no}-{inp.seq}.{fmt}",
                        content_type=content_type,
                        sha256=hashlib.sha256(content).hexdigest(),
                        content=content,
                        size=len(content),
                        created_at=inp.at,
                    )
                )
            append_audit(
                s,
                key=f"{inp.application_no}/risk-report/{inp.seq}",
                application_no=inp.application_no,
                actor="system",
                action="risk_report.prepared",
                occurred_at=inp.at,
                detail={"document_id": str(pdf_id), "round": inp.seq},
            )
        return str(pdf_id)


def _report_data(s: Session, inp: RiskReportInput) -> RiskReportData:
    app = _application(s, inp.application_no)
    borrower = borrower_data_of(s, app)
    row = s.exec(
        select(Assessment).where(
            Assessment.application_no == inp.application_no, Assessment.seq == inp.seq
        )
    ).one()
    if borrower is None:
        raise ApplicationError("the application has no borrower", type=BUSINESS_REFUSAL)
    beyond = "；".join(inp.beyond_authority)
    return RiskReportData(
        application_no=app.application_no,
        prepared_at=inp.at.astimezone(zone(inp.business_timezone)),
        borrower_name=mask_name(borrower.name),
        id_number=mask_id_number(borrower.id_number),
        phone=mask_phone(borrower.phone),
        monthly_income=borrower.monthly_income,
        amount=app.amount,
        term_months=app.term_months,
        purpose=app.purpose,
        repayment_source=app.repayment_source,
        checks=CHECKS.validate_python(row.checks),
        bureau_status=row.bureau_status,  # type: ignore[arg-type]
        bureau=_REPORT.validate_python(row.bureau) if row.bureau else None,
        score=_SCORE.validate_python(row.score),
        approval_note=f"超出风控经理审批权限：{beyond}；需部门经理审批"
        if beyond
        else "风控经理审批权限内",
        scorecard_version=row.scorecard_version,
    )
