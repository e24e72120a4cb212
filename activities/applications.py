"""Application activities: stage changes on the record and on the timeline; an application that
ends early is told to its officer (inbox) and its borrower (SMS)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity

from activities.records import append_audit, enqueue_notice
from domain.calendar import next_contact_time
from domain.lifecycle import Stage
from domain.notices import BORROWER_RECIPIENT, Channel, rejection_reason_text
from domain.policy import DEFAULT_POLICY, LoanPolicy
from loanops.db import session_scope
from loanops.policy import loan_policy_version
from models.shapes import StageInput
from models.tables import Application, Loan, Task


class ApplicationActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def record_stage(self, inp: StageInput) -> None:
        """Mirror the workflow's stage on the application row and append it to the timeline."""
        with session_scope(self.engine) as s:
            app = s.exec(
                select(Application).where(Application.application_no == inp.application_no)
            ).one()
            if append_audit(
                s,
                key=f"{inp.application_no}/stage/{inp.seq}",
                application_no=inp.application_no,
                actor=inp.actor,
                action="stage.entered",
                occurred_at=inp.at,
                detail={
                    "stage": inp.stage.value,
                    "reason": inp.reason,
                    "policy_version": inp.policy_version,
                },
            ):
                app.stage = inp.stage.value
                app.updated_at = inp.at
                loan = s.exec(select(Loan).where(Loan.application_no == inp.application_no)).first()
                if loan is not None and inp.stage in {
                    "SETTLED",
                    "WRITTEN_OFF",
                    "WITHDRAWN",
                    "EXPIRED",
                    "REJECTED",
                }:
                    loan.status = inp.stage.value.lower()
                if inp.stage in (Stage.EXPIRED, Stage.REJECTED):
                    # The officer who submitted it hears why it ended (their inbox).
                    enqueue_notice(
                        s,
                        key=f"{inp.application_no}/ended/{inp.stage.value}",
                        application_no=inp.application_no,
                        channel="inbox",
                        recipient=app.submitted_by,
                        template=f"application_{inp.stage.value.lower()}",
                        payload={"stage": inp.stage.value, "reason": inp.reason},
                        created_at=inp.at,
                    )
                    # The borrower hears it by SMS inside the contact window: for a
                    # rejection, the reasons in their words (never the internal comment).
                    policy = self._policy(inp.policy_version)
                    enqueue_notice(
                        s,
                        key=f"{inp.application_no}/ended/{inp.stage.value}/borrower",
                        application_no=inp.application_no,
                        channel=Channel.SMS.value,
                        recipient=BORROWER_RECIPIENT,
                        template=f"application_{inp.stage.value.lower()}",
                        payload=(
                            {"reason": rejection_reason_text(_rejection_codes(s, app))}
                            if inp.stage == Stage.REJECTED
                            else {}
                        ),
                        created_at=inp.at,
                        not_before=next_contact_time(
                            inp.at,
                            policy.business_timezone,
                            opens=policy.contact_hours_start,
                            closes=policy.contact_hours_end,
                        ),
                    )

    def _policy(self, version: int) -> LoanPolicy:
        """The loan's policy version (the defaults for loans recorded before versions)."""
        try:
            return loan_policy_version(self.engine, version)
        except LookupError:
            return DEFAULT_POLICY


def _rejection_codes(session: Session, app: Application) -> list[str]:
    """The reason codes of the decision that rejected the application (a risk rejection names
    them; other rejections have none)."""
    task = session.exec(
        select(Task)
        .where(Task.application_no == app.application_no, Task.decision == "reject")
        .order_by(col(Task.closed_at).desc())
    ).first()
    codes = (task.data or {}).get("reason_codes") if task is not None else None
    return [c for c in codes if isinstance(c, str)] if isinstance(codes, list) else []
