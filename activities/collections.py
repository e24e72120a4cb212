"""Collections activities: the collections log (``collection_contacts``) with the ladder's SMS
notice and the legal-action event, the write-off and the recoveries after it. Each is
idempotent by its business key: a retry never adds a row, a notice or an event twice."""

from __future__ import annotations

import contextlib
from datetime import time, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity

from activities.records import append_audit, enqueue_notice
from domain.calendar import business_date, local_instant, next_contact_time
from domain.classification import LoanEvent
from domain.money import format_money
from domain.notices import BORROWER_RECIPIENT
from loanops.classification import NotClassifiable, reclassify
from loanops.db import session_scope
from models.shapes import CollectionStepInput, RecoveryInput, WriteOffInput
from models.tables import CollectionContact, Loan, LoanWriteOff, Notice, WriteOffRecovery


def _overdue_sms_today(s: Session, inp: CollectionStepInput) -> str | None:
    """The key of an overdue SMS already queued to the borrower this business day, if any."""
    tz = inp.business_timezone
    start = local_instant(business_date(inp.at, tz), time(0, 0), tz)
    return s.exec(
        select(Notice.key).where(
            Notice.application_no == inp.application_no,
            Notice.channel == "sms",
            Notice.template == "installment_overdue",
            Notice.created_at >= start,
            Notice.created_at < start + timedelta(days=1),
        )
    ).first()


class CollectionsActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def record_collection_step(self, inp: CollectionStepInput) -> None:
        """Log one step or contact once per key; the SMS step queues the borrower's notice
        (unless the overdue notice already went out that business day: one SMS a day), and a
        decision to sue records the loan's legal-action event (classification reads it)."""
        with session_scope(self.engine) as s:
            if s.exec(select(CollectionContact.id).where(CollectionContact.key == inp.key)).first():
                return
            note = inp.note
            if inp.sms_template is not None:
                covered = _overdue_sms_today(s, inp)
                if covered is not None:
                    note = f"covered by the overdue notice {covered} sent today"
                else:
                    enqueue_notice(
                        s,
                        key=inp.key,
                        application_no=inp.application_no,
                        channel="sms",
                        recipient=BORROWER_RECIPIENT,
                        template="collections_notice",
                        payload={
                            "days_past_due": inp.days_past_due,
                            "overdue_amount": format_money(inp.overdue_amount or Decimal("0")),
                        },
                        created_at=inp.at,
                        not_before=next_contact_time(
                            inp.at,
                            inp.business_timezone,
                            opens=inp.contact_hours[0],
                            closes=inp.contact_hours[1],
                        ),
                    )
            s.add(
                CollectionContact(
                    key=inp.key,
                    application_no=inp.application_no,
                    episode=inp.episode,
                    workflow_id=inp.workflow_id,
                    step=inp.step,
                    channel=inp.channel,
                    outcome=inp.outcome,
                    rule=inp.rule,
                    days_past_due=inp.days_past_due,
                    actor=inp.actor,
                    task_id=inp.task_id,
                    promise_amount=inp.promise_amount,
                    promise_date=inp.promise_date,
                    note=note,
                    policy_version=inp.policy_version,
                    occurred_at=inp.at,
                )
            )
            detail = {
                "episode": inp.episode,
                "step": inp.step,
                "channel": inp.channel,
                "outcome": inp.outcome,
                "rule": inp.rule,
                "days_past_due": inp.days_past_due,
            }
            append_audit(
                s,
                key=f"{inp.key}/audit",
                application_no=inp.application_no,
                actor=inp.actor,
                action=f"collections.{inp.channel}",
                occurred_at=inp.at,
                detail=detail,
            )
            if inp.outcome == "sue":
                append_audit(
                    s,
                    key=f"{inp.application_no}/legal_action/{inp.episode}",
                    application_no=inp.application_no,
                    actor=inp.actor,
                    action=LoanEvent.LEGAL_ACTION.audit_action,
                    occurred_at=inp.at,
                    detail=detail,
                )

    @activity.defn
    def record_write_off(self, inp: WriteOffInput) -> None:
        """Record the write-off (principal, interest, penalty and fees separately), its audit
        event (classification: 损失) and reclassify the loan. The stage is recorded by the
        workflow (WRITTEN_OFF) before this runs."""
        w = inp.state
        with session_scope(self.engine) as s:
            if s.get(LoanWriteOff, inp.application_no) is None:
                s.add(
                    LoanWriteOff(
                        application_no=inp.application_no,
                        written_off_on=w.written_off_on,
                        principal=w.principal,
                        interest=w.interest,
                        penalty=w.penalty,
                        fees=w.fees,
                        recovered=w.recovered,
                        proposed_by=inp.approval.proposed_by,
                        approved_by=inp.approval.approved_by,
                        episode=inp.approval.episode,
                        policy_version=inp.policy_version,
                        written_off_at=inp.at,
                    )
                )
            append_audit(
                s,
                key=f"{inp.application_no}/written_off",
                application_no=inp.application_no,
                actor=inp.approval.approved_by,
                action=LoanEvent.WRITTEN_OFF.audit_action,
                occurred_at=inp.at,
                detail={
                    "principal": format_money(w.principal),
                    "interest": format_money(w.interest),
                    "penalty": format_money(w.penalty),
                    "fees": format_money(w.fees),
                    "proposed_by": inp.approval.proposed_by,
                    "approved_by": inp.approval.approved_by,
                    "episode": inp.approval.episode,
                },
            )
        # (Nothing to classify when the loan is not on the books here.)
        with contextlib.suppress(LookupError, NotClassifiable):
            reclassify(
                self.engine,
                inp.application_no,
                w.written_off_on,
                tz=inp.business_timezone,
                now=inp.at,
            )

    @activity.defn
    def record_recovery(self, inp: RecoveryInput) -> None:
        """A payment received after the write-off: once per external_ref, with the running
        total recovered on the write-off row."""
        with session_scope(self.engine) as s:
            if s.get(WriteOffRecovery, inp.external_ref) is not None:
                return
            s.add(
                WriteOffRecovery(
                    external_ref=inp.external_ref,
                    application_no=inp.application_no,
                    amount=inp.amount,
                    recovered_total=inp.recovered_total,
                    received_at=inp.at,
                )
            )
            row = s.get(LoanWriteOff, inp.application_no)
            if row is not None:
                row.recovered = inp.recovered_total
            loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).first()
            append_audit(
                s,
                key=f"{inp.application_no}/recovery/{inp.external_ref}",
                application_no=inp.application_no,
                actor="system",
                action="loan.recovery",
                occurred_at=inp.at,
                detail={
                    "external_ref": inp.external_ref,
                    "amount": format_money(inp.amount),
                    "recovered_total": format_money(inp.recovered_total),
                    "loan_status": loan.status if loan is not None else None,
                },
            )
