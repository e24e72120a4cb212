"""The loan as officers see it: built from the live workflow query or, once closed, from the DB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import or_
from sqlmodel import Session, col, select

from api.deps import CurrentUserInfo, TemporalGateway
from api.schemas import (
    BalancesOut,
    InstallmentOut,
    LoanOut,
    PendingTaskOut,
    RefundOut,
    SigningStatusOut,
    TermsOut,
)
from api.workflow_calls import query_loan
from domain.allocation import InstallmentBalance, outstanding
from domain.lifecycle import Stage
from domain.masking import mask_bank_card, mask_name
from domain.penalty import PenaltyPolicy
from domain.permissions import Action, may_see_application
from domain.policy import DEFAULT_POLICY, LoanPolicy
from domain.schedule import RepaymentMethod
from domain.signing import SIGNING_LINK_TEMPLATE
from loanops.policy import loan_policy_version_in
from loanops.settings import Settings
from models.shapes import LoanTerms, OpenTask, penalty_terms
from models.tables import (
    Application,
    BorrowerData,
    ContractSignature,
    Installment,
    Loan,
    Notice,
    Refund,
    borrower_data_of,
    contract_of,
    settlement_certificate_of,
)


@dataclass(frozen=True)
class LoanRecord:
    """What every loan view needs, from whichever source is authoritative now."""

    application: Application
    # The borrower data the application was submitted with (its version).
    borrower: BorrowerData
    stage: Stage
    policy: LoanPolicy
    open_tasks: list[PendingTaskOut]
    terms: TermsOut | None
    annual_rate: Decimal | None
    rate_cap: Decimal | None
    start_date: date | None
    installments: tuple[InstallmentBalance, ...]
    credit: Decimal
    contract_document_id: str | None
    source: str
    settlement_certificate: bool = False
    signing: SigningStatusOut | None = None
    # The penalty terms the loan is charged on (its product's multiple, else its policy's).
    penalty_multiple: Decimal | None = None
    prepayment_fee_rate: Decimal = Decimal("0")
    refund: RefundOut | None = None

    @property
    def penalty(self) -> PenaltyPolicy:
        return penalty_terms(self.policy, self.penalty_multiple)


def visible_to(viewer: CurrentUserInfo | None, app: Application) -> bool:
    """The need-to-know rule (``domain.permissions.may_see_application``); ``None`` is the
    system itself (no viewer), which sees everything."""
    return viewer is None or may_see_application(
        viewer.roles,
        viewer.username,
        submitted_by=app.submitted_by,
        assigned_officer=app.assigned_officer,
    )


def own_applications(viewer: CurrentUserInfo) -> Any:
    """The condition on ``Application`` a list query adds for a viewer limited to their own
    applications (None when the viewer sees all)."""
    if not viewer.sees_only_own():
        return None
    return or_(
        col(Application.submitted_by) == viewer.username,
        col(Application.assigned_officer) == viewer.username,
    )


def load_application(
    session: Session, application_no: str, viewer: CurrentUserInfo | None
) -> tuple[Application, BorrowerData]:
    """The application and the borrower data it was submitted with (never a newer version).
    An application ``viewer`` may not see is answered exactly as one that does not exist (404:
    its existence is not revealed)."""
    app = session.exec(
        select(Application).where(Application.application_no == application_no)
    ).first()
    if app is None or not visible_to(viewer, app):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"application {application_no} does not exist"
        )
    borrower = borrower_data_of(session, app)
    if borrower is None:  # the foreign key makes this impossible short of manual edits
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail="borrower missing")
    return app, borrower


def pii_of(borrower: BorrowerData) -> dict[str, str]:
    """The borrower's identifiers, for ``domain.masking.scrub_pii``."""
    return {
        "name": borrower.name,
        "id_number": borrower.id_number,
        "phone": borrower.phone,
        "bank_card": borrower.bank_card,
    }


def policy_of(session: Session, app: Application) -> LoanPolicy:
    """The policy version the loan started with (applications before policy versions existed
    ran on the defaults)."""
    if app.policy_version is None:
        return DEFAULT_POLICY
    return loan_policy_version_in(session, app.policy_version)


def _terms_out(terms: LoanTerms, apr: Decimal, apr_compound: Decimal, **totals: Any) -> TermsOut:
    return TermsOut(
        principal=terms.principal,
        term_months=terms.term_months,
        annual_rate=terms.annual_rate,
        method=terms.method,
        upfront_fee=terms.upfront_fee,
        monthly_fee=terms.monthly_fee,
        apr=apr,
        apr_compound=apr_compound,
        **totals,
    )


def _task_out(t: OpenTask) -> PendingTaskOut:
    return PendingTaskOut(
        id=t.task_id,
        kind=t.kind.value,
        candidate_role=t.candidate_role.value,
        priority=t.priority,
        due_at=t.due_at,
        expires_at=t.expires_at,
        escalation_level=t.level,
        context=t.context,
    )


def signing_status(session: Session, application_no: str) -> SigningStatusOut | None:
    """That the signing link was sent to the borrower and when, the signature and the seal:
    never the link or its token (those go to the borrower's phone only)."""
    link = session.exec(
        select(Notice)
        .where(Notice.application_no == application_no, Notice.template == SIGNING_LINK_TEMPLATE)
        .order_by(col(Notice.created_at).desc())
    ).first()
    contract = contract_of(session, application_no)
    signature = session.get(ContractSignature, contract.id) if contract else None
    if link is None and signature is None:
        return None
    return SigningStatusOut(
        link_sent_at=link.created_at if link else None,
        link_status=link.status if link else None,
        signed_at=signature.signed_at if signature else None,
        signed_document_id=str(signature.signed_document_id)
        if signature and signature.signed_document_id
        else None,
        signed_sha256=signature.signed_sha256 if signature else None,
        sealed_by=signature.sealed_by if signature else None,
        sealed_at=signature.sealed_at if signature else None,
    )


def load_record(
    session: Session,
    temporal: TemporalGateway,
    application_no: str,
    viewer: CurrentUserInfo | None,
) -> LoanRecord:
    """One read path for every loan view: the live workflow while it runs, the database once it
    has closed; both give the loan's own policy version. 404 for what ``viewer`` may not see."""
    app, borrower = load_application(session, application_no, viewer)
    stage = Stage(app.stage)
    if not stage.is_terminal:
        view = query_loan(temporal, application_no)
        offer = view.offer
        return LoanRecord(
            application=app,
            borrower=borrower,
            stage=view.stage,
            policy=view.policy,
            open_tasks=[_task_out(t) for t in view.open_tasks],
            terms=_terms_out(
                offer.terms,
                offer.apr,
                offer.apr_compound,
                total_interest=offer.total_interest,
                total_fees=offer.total_fees,
                total_payment=offer.total_payment,
                product_code=offer.product.code if offer.product else None,
                product_version=offer.product.version if offer.product else None,
            )
            if offer
            else None,
            annual_rate=offer.terms.annual_rate if offer else None,
            rate_cap=offer.rate_cap if offer else None,
            penalty_multiple=offer.product.penalty_multiple if offer and offer.product else None,
            prepayment_fee_rate=offer.prepayment_fee_rate if offer else Decimal("0"),
            start_date=view.start_date,
            installments=view.installments,
            credit=view.credit,
            contract_document_id=view.contract.document_id if view.contract else None,
            source="workflow",
            # Issued before the stage is recorded: the live view may show it already.
            settlement_certificate=view.stage == Stage.SETTLED
            and settlement_certificate_of(session, application_no) is not None,
            signing=signing_status(session, application_no),
            refund=refund_out(session, application_no),
        )
    return record_from_database(session, app, borrower)


def refund_out(session: Session, application_no: str) -> RefundOut | None:
    """The refund of the loan's credit as recorded (settlement-refund-v1), account masked."""
    row = session.get(Refund, application_no)
    if row is None:
        return None
    return RefundOut(
        status=row.status,
        amount=row.amount,
        payee_account=mask_bank_card(row.payee_account) if row.payee_account else None,
        order_key=row.order_key,
        bank_order_id=row.bank_order_id,
        value_date=row.value_date,
        made_by=row.made_by,
        checked_by=row.checked_by,
        reason=row.reason,
    )


def record_from_database(session: Session, app: Application, borrower: BorrowerData) -> LoanRecord:
    """The loan as its rows record it: authoritative once the workflow has closed, and equal to
    the workflow's own view while it runs (the activities keep the rows in step)."""
    application_no = app.application_no
    loan = session.exec(select(Loan).where(Loan.application_no == application_no)).first()
    rows = session.exec(
        select(Installment)
        .where(Installment.application_no == application_no, Installment.status != "cancelled")
        .order_by(col(Installment.number))
    ).all()
    contract = contract_of(session, application_no)
    terms = (
        LoanTerms(
            principal=loan.principal,
            term_months=loan.term_months,
            annual_rate=loan.annual_rate,
            method=RepaymentMethod(loan.method),
            upfront_fee=loan.upfront_fee,
            monthly_fee=loan.monthly_fee,
        )
        if loan
        else None
    )
    return LoanRecord(
        application=app,
        borrower=borrower,
        stage=Stage(app.stage),
        policy=policy_of(session, app),
        open_tasks=[],
        terms=_terms_out(terms, loan.apr, loan.apr_compound) if terms and loan else None,
        annual_rate=loan.annual_rate if loan else None,
        rate_cap=loan.rate_cap if loan else None,
        penalty_multiple=loan.penalty_multiple if loan else None,
        prepayment_fee_rate=loan.prepayment_fee_rate if loan else Decimal("0"),
        start_date=loan.start_date if loan else None,
        installments=tuple(r.balance() for r in rows),
        credit=loan.credit if loan else Decimal("0"),
        contract_document_id=str(contract.id) if contract else None,
        source="database",
        settlement_certificate=settlement_certificate_of(session, application_no) is not None,
        signing=signing_status(session, application_no),
        refund=refund_out(session, application_no),
    )


def _installment_out(b: InstallmentBalance, today: date) -> InstallmentOut:
    paid = b.principal_paid + b.interest_paid + b.fee_paid + b.penalty_paid
    return InstallmentOut(
        number=b.number,
        due_date=b.due_date,
        principal=b.principal_due,
        interest=b.interest_due,
        fee=b.fee_due,
        penalty=b.penalty_accrued,
        paid=paid,
        outstanding=b.total_outstanding,
        status="paid" if b.is_paid else ("overdue" if b.due_date < today else "scheduled"),
    )


def loan_out(
    record: LoanRecord,
    *,
    user: CurrentUserInfo,
    settings: Settings,
    today: date,
) -> LoanOut:
    balances = None
    next_due = None
    if record.installments and record.annual_rate is not None:
        owed = outstanding(
            installments=record.installments,
            as_of=today,
            annual_rate=record.annual_rate,
            penalty_policy=record.penalty,
            max_annual_rate=record.rate_cap,
        )
        balances = BalancesOut(
            principal_outstanding=sum(
                (b.principal_outstanding for b in record.installments), Decimal("0.00")
            ),
            overdue_amount=owed.overdue_principal + owed.overdue_interest + owed.overdue_fee,
            penalty=owed.penalty,
            due_now=owed.due_now,
            total_outstanding=owed.total_outstanding,
            credit=record.credit,
            days_past_due=owed.days_past_due,
        )
        if owed.next_due is not None:
            next_due = _installment_out(owed.next_due, today)
    return LoanOut(
        application_no=record.application.application_no,
        stage=record.stage.value,
        borrower_name=record.borrower.name
        if user.can(Action.READ_BORROWER_PII)
        else mask_name(record.borrower.name),
        borrower_version=record.borrower.version or None,
        requested_amount=record.application.amount,
        requested_term_months=record.application.term_months,
        pending_task=record.open_tasks[0] if record.open_tasks else None,
        open_tasks=record.open_tasks,
        policy_version=record.policy.version,
        terms=record.terms,
        balances=balances,
        next_due_installment=next_due,
        installments=[_installment_out(b, today) for b in record.installments],
        contract_document_id=record.contract_document_id,
        signing=record.signing,
        source=record.source,
        settlement_certificate_url=(
            f"/api/v1/loans/{record.application.application_no}/settlement-certificate.pdf"
            if record.settlement_certificate
            else None
        ),
        refund=record.refund,
    )


def refuse_if_settled(app: Application, what: str) -> None:
    """A SETTLED loan is archived and read-only: 409 naming why ``what`` is refused."""
    if app.stage == Stage.SETTLED.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"loan {app.application_no} is SETTLED and archived (read-only): {what}",
        )
