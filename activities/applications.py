"""Application activities: stage changes on the record and on the timeline."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select
from temporalio import activity

from activities.records import append_audit, enqueue_notice
from domain.lifecycle import Stage
from loanops.db import session_scope
from models.shapes import StageInput
from models.tables import Application, Loan


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
