"""The collections activities on both databases: the log, the SMS step and the legal-action
event once per key; the write-off recorded (separate figures, audited, classified 损失) and the
recoveries once per payment."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, select

from activities.collections import CollectionsActivities
from activities.records import enqueue_notice
from domain.classification import Category
from loanops.classification import latest
from models.shapes import (
    CollectionStepInput,
    RecoveryInput,
    WriteOffApproved,
    WriteOffInput,
    WriteOffState,
)
from models.tables import (
    Application,
    CollectionContact,
    LoanWriteOff,
    Notice,
    WriteOffRecovery,
)
from tests.activities.test_idempotency import T0, add_loan, application_no, audits, count  # noqa: F401


def _step(no: str, n: int, **kw: object) -> CollectionStepInput:
    fields: dict[str, object] = {
        "key": f"collections-{no}-1/{n}",
        "application_no": no,
        "episode": 1,
        "workflow_id": f"collections-{no}-1",
        "step": "sms_notice",
        "channel": "sms",
        "outcome": "queued",
        "rule": "collection_ladder.sms_notice: at 1 days past due (loan policy v1)",
        "at": T0,
        "days_past_due": 1,
        **kw,
    }
    return CollectionStepInput(**fields)  # type: ignore[arg-type]


def test_each_step_is_logged_once_with_its_sms_and_legal_event(
    engine: Engine,
    application_no: str,  # noqa: F811
) -> None:
    no = application_no
    acts = CollectionsActivities(engine)
    sms = _step(no, 1, sms_template="collections_notice", overdue_amount=Decimal("4043.16"))
    acts.record_collection_step(sms)
    acts.record_collection_step(sms)  # a retry
    assert count(engine, CollectionContact, CollectionContact.application_no == no) == 1
    with Session(engine) as s:
        notice = s.exec(select(Notice).where(Notice.key == sms.key)).one()
    assert notice.template == "collections_notice"
    assert notice.payload == {"days_past_due": 1, "overdue_amount": "4043.16"}
    assert notice.not_before is not None and notice.not_before >= T0

    sue = _step(no, 2, step="legal_review", channel="legal", outcome="sue", actor="manager")
    acts.record_collection_step(sue)
    acts.record_collection_step(sue)
    legal = audits(engine, f"{no}/legal_action/1")
    assert len(legal) == 1 and legal[0].action == "loan.legal_action"


def test_the_sms_step_sends_nothing_when_the_overdue_notice_went_out_that_day(
    engine: Engine,
    application_no: str,  # noqa: F811
) -> None:
    no = application_no
    with Session(engine) as s:
        enqueue_notice(
            s,
            key=f"{no}/installment/1/overdue",
            application_no=no,
            channel="sms",
            recipient="borrower",
            template="installment_overdue",
            payload={},
            created_at=T0 - timedelta(minutes=5),
        )
        s.commit()
    step = _step(no, 1, sms_template="collections_notice", overdue_amount=Decimal("1.00"))
    CollectionsActivities(engine).record_collection_step(step)
    assert count(engine, Notice, Notice.application_no == no) == 1
    with Session(engine) as s:
        row = s.exec(select(CollectionContact).where(CollectionContact.key == step.key)).one()
    assert row.note == f"covered by the overdue notice {no}/installment/1/overdue sent today"


def test_a_write_off_is_recorded_once_classified_loss_and_recoveries_add_up(
    engine: Engine,
    application_no: str,  # noqa: F811
) -> None:
    no = application_no
    add_loan(engine, no)
    with Session(engine) as s:
        app = s.exec(select(Application).where(Application.application_no == no)).one()
        app.stage = "WRITTEN_OFF"  # recorded by the workflow before the write-off activity
        s.commit()
    state = WriteOffState(
        written_off_on=date(2026, 6, 1),
        principal=Decimal("10000.00"),
        interest=Decimal("300.00"),
        penalty=Decimal("45.10"),
        fees=Decimal("0.00"),
    )
    inp = WriteOffInput(
        application_no=no,
        at=T0 + timedelta(days=91),
        state=state,
        approval=WriteOffApproved(1, "risk", "manager", T0 + timedelta(days=91)),
        policy_version=1,
    )
    acts = CollectionsActivities(engine)
    acts.record_write_off(inp)
    acts.record_write_off(inp)
    with Session(engine) as s:
        row = s.get(LoanWriteOff, no)
        assert row is not None
        assert (row.principal, row.interest, row.penalty, row.fees) == (
            Decimal("10000.00"),
            Decimal("300.00"),
            Decimal("45.10"),
            Decimal("0.00"),
        )
        assert (row.proposed_by, row.approved_by) == ("risk", "manager")
        category = latest(s, no)
    assert len(audits(engine, f"{no}/written_off")) == 1
    assert category is not None and category.category == Category.LOSS.value

    for ref, amount, total in (("r1", "100.00", "100.00"), ("r2", "50.00", "150.00")):
        rec = RecoveryInput(no, f"{no}-{ref}", Decimal(amount), T0, Decimal(total))
        acts.record_recovery(rec)
        acts.record_recovery(rec)
    assert count(engine, WriteOffRecovery, WriteOffRecovery.application_no == no) == 2
    with Session(engine) as s:
        assert s.get(LoanWriteOff, no).recovered == Decimal("150.00")  # type: ignore[union-attr]
