"""A loan's collections log (issue 10 §1): every step of the ladder with the rule it applied,
every contact with the borrower and its outcome, and the write-off with its recoveries."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import col, select

from api.deps import CurrentUserInfo, SessionDep, require
from api.loan_views import load_application
from domain.money import format_money
from domain.permissions import Action
from models.tables import CollectionContact, LoanWriteOff, WriteOffRecovery

router = APIRouter(prefix="/loans", tags=["collections"])


class CollectionEntryOut(BaseModel):
    episode: int
    step: str
    # sms / phone / visit / legal / write_off / promise / task / system
    channel: str
    outcome: str
    rule: str
    days_past_due: int
    actor: str
    task_id: str | None
    promise_amount: str | None
    promise_date: date | None
    note: str | None
    occurred_at: datetime


class RecoveryOut(BaseModel):
    external_ref: str
    amount: str
    recovered_total: str
    received_at: datetime


class WriteOffOut(BaseModel):
    written_off_on: date
    principal: str
    interest: str
    penalty: str
    fees: str
    total: str
    recovered: str
    proposed_by: str
    approved_by: str
    recoveries: list[RecoveryOut]


class CollectionsOut(BaseModel):
    application_no: str
    # Calls and visits recorded (attempts), and promises to pay with how they ended.
    contacts: int
    promises_kept: int
    promises_broken: int
    entries: list[CollectionEntryOut]
    write_off: WriteOffOut | None


def _money(x: Decimal | None) -> str | None:
    return None if x is None else format_money(x)


@router.get("/{application_no}/collections", response_model=CollectionsOut)
def get_collections(
    application_no: str,
    session: SessionDep,
    user: CurrentUserInfo = require(Action.READ_COLLECTIONS),
) -> CollectionsOut:
    """business_officer, customer_service, operations_specialist, risk_manager,
    department_manager, auditor: the loan's collections log, oldest first, and its write-off."""
    load_application(session, application_no, user)
    rows = session.exec(
        select(CollectionContact)
        .where(CollectionContact.application_no == application_no)
        .order_by(col(CollectionContact.occurred_at), col(CollectionContact.key))
    ).all()
    entries = [
        CollectionEntryOut(
            episode=r.episode,
            step=r.step,
            channel=r.channel,
            outcome=r.outcome,
            rule=r.rule,
            days_past_due=r.days_past_due,
            actor=r.actor,
            task_id=r.task_id,
            promise_amount=_money(r.promise_amount),
            promise_date=r.promise_date,
            note=r.note,
            occurred_at=r.occurred_at,
        )
        for r in rows
    ]
    write_off = None
    w = session.get(LoanWriteOff, application_no)
    if w is not None:
        recoveries = session.exec(
            select(WriteOffRecovery)
            .where(WriteOffRecovery.application_no == application_no)
            .order_by(col(WriteOffRecovery.received_at))
        ).all()
        write_off = WriteOffOut(
            written_off_on=w.written_off_on,
            principal=format_money(w.principal),
            interest=format_money(w.interest),
            penalty=format_money(w.penalty),
            fees=format_money(w.fees),
            total=format_money(w.principal + w.interest + w.penalty + w.fees),
            recovered=format_money(w.recovered),
            proposed_by=w.proposed_by,
            approved_by=w.approved_by,
            recoveries=[
                RecoveryOut(
                    external_ref=r.external_ref,
                    amount=format_money(r.amount),
                    recovered_total=format_money(r.recovered_total),
                    received_at=r.received_at,
                )
                for r in recoveries
            ],
        )
    return CollectionsOut(
        application_no=application_no,
        contacts=sum(1 for e in entries if e.channel in ("phone", "visit")),
        promises_kept=sum(1 for e in entries if e.outcome == "promise_kept"),
        promises_broken=sum(1 for e in entries if e.outcome == "promise_broken"),
        entries=entries,
        write_off=write_off,
    )
