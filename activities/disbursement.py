"""Disbursement activities: re-check and record the payout once, then book the schedule.

The bank is not called yet (the sandbox bank gateway is on the roadmap): the disbursement row is the
record of the payout, keyed by an idempotency key so that a retry never pays twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.records import append_audit
from domain.calendar import business_date
from domain.identifiers import BUSINESS_REFUSAL
from loanops.db import session_scope
from models.shapes import BookLoanInput, DisburseInput, DisburseResult
from models.tables import (
    Application,
    ContractSignature,
    Disbursement,
    Installment,
    Loan,
    borrower_data_of,
    contract_of,
)


class DisbursementActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def disburse(self, inp: DisburseInput) -> DisburseResult:
        with session_scope(self.engine) as s:
            done = s.exec(
                select(Disbursement).where(Disbursement.idempotency_key == inp.idempotency_key)
            ).first()
            if done is not None:
                return self._result(done.created_at, inp.business_timezone)
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            app = s.exec(
                select(Application).where(Application.application_no == inp.application_no)
            ).one()
            # The payout goes to the card of the application's own borrower data (the version
            # it was submitted with), never to a card recorded later for another application.
            borrower = borrower_data_of(s, app)
            contract = contract_of(s, inp.application_no)
            # The borrower's signature with its evidence (loans signed with a one-time code);
            # such a contract is in force only once the lender sealed it.
            signature = s.get(ContractSignature, contract.id) if contract else None
            # The seed's pre-payment re-check (§3.5): borrower data and contract terms.
            checklist = {
                "borrower_on_record": borrower is not None,
                "contract_signed": contract is not None and contract.signed_at is not None,
                "signed_hash_matches": contract is not None
                and contract.signed_sha256 == contract.sha256,
                "lender_sealed": signature is None or signature.sealed_at is not None,
                "amount_matches_contract": loan.principal == inp.principal,
                # The borrower receives the whole principal (the upfront fee is due with the
                # first installment), except on loans priced before fee-not-deducted-v1.
                "net_amount_matches": inp.net_amount
                == loan.principal - (loan.upfront_fee if inp.upfront_fee_deducted else 0),
            }
            failed = [name for name, ok in checklist.items() if not ok]
            if failed or borrower is None:
                # A business refusal: the workflow puts the reasons before a person.
                raise ApplicationError(
                    "the disbursement pre-check failed",
                    *failed,
                    type=BUSINESS_REFUSAL,
                    non_retryable=True,
                )
            s.add(
                Disbursement(
                    application_no=inp.application_no,
                    idempotency_key=inp.idempotency_key,
                    amount=inp.principal,
                    net_amount=inp.net_amount,
                    bank_card=borrower.bank_card,
                    approved_by=inp.approved_by,
                    checklist=checklist,
                    created_at=inp.at,
                )
            )
            loan.disbursed_at = inp.at
            loan.disbursed_by = inp.approved_by
            loan.status = "disbursed"
            append_audit(
                s,
                key=f"{inp.application_no}/disbursed",
                application_no=inp.application_no,
                actor=inp.approved_by,
                action="loan.disbursed",
                occurred_at=inp.at,
                detail={
                    "amount": str(inp.principal),
                    "net_amount": str(inp.net_amount),
                    "checklist": checklist,
                },
            )
            return self._result(inp.at, inp.business_timezone)

    @staticmethod
    def _result(at: datetime, tz: str) -> DisburseResult:
        return DisburseResult(disbursed_at=at, business_date=business_date(at, tz))

    @activity.defn
    def book_loan(self, inp: BookLoanInput) -> None:
        """Write the repayment schedule (once) and open the loan for servicing."""
        with session_scope(self.engine) as s:
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).one()
            if loan.start_date is not None:
                return
            loan.start_date = inp.start_date
            loan.status = "active"
            for b in inp.installments:
                s.add(
                    Installment(
                        application_no=inp.application_no,
                        number=b.number,
                        due_date=b.due_date,
                        principal_due=b.principal_due,
                        interest_due=b.interest_due,
                        fee_due=b.fee_due,
                    )
                )
            append_audit(
                s,
                key=f"{inp.application_no}/booked",
                application_no=inp.application_no,
                actor="system",
                action="loan.booked",
                occurred_at=inp.at,
                detail={
                    "start_date": inp.start_date.isoformat(),
                    "installments": len(inp.installments),
                },
            )
