"""Every activity is safe to retry: a second call with the same input changes nothing.

The activity methods are plain sync methods; they are called directly (and once through
Temporal's ActivityEnvironment) against both databases.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, SQLModel, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.applications import ApplicationActivities
from activities.disbursement import DisbursementActivities
from activities.rendering import Lender
from activities.servicing import ServicingActivities
from activities.tasks import TaskActivities
from domain.allocation import AllocationLine, Component, InstallmentBalance
from domain.identifiers import BUSINESS_REFUSAL
from domain.lifecycle import Role, Stage
from domain.tasks import TaskKind, TaskStatus
from models.shapes import (
    CloseTaskInput,
    DisburseInput,
    EscalateTaskInput,
    OpenTaskInput,
    PaymentRequest,
    RecordPaymentInput,
    StageInput,
)
from models.tables import (
    Application,
    AuditEvent,
    Borrower,
    Disbursement,
    Document,
    Installment,
    Loan,
    Notice,
    Payment,
    Task,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
BANK_CARD = "6222021234567890123"

LENDER = Lender("示范小额贷款有限公司", "91310000MA1EXAMPLE", "上海市示例路 8 号", "400-123-4567")


# ---- helpers --------------------------------------------------------------------------------


def count(engine: Engine, table: type[SQLModel], *where: Any) -> int:
    with Session(engine) as s:
        stmt = select(func.count()).select_from(table)
        for cond in where:
            stmt = stmt.where(cond)
        return s.exec(stmt).one()


def audits(engine: Engine, key: str) -> list[AuditEvent]:
    with Session(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.event_key == key)).all())


def get_task(engine: Engine, task_id: str) -> Task:
    with Session(engine) as s:
        task = s.get(Task, uuid.UUID(task_id))
        assert task is not None
        return task


def get_loan(engine: Engine, application_no: str) -> Loan:
    with Session(engine) as s:
        return s.exec(select(Loan).where(Loan.application_no == application_no)).one()


def get_application(engine: Engine, application_no: str) -> Application:
    with Session(engine) as s:
        return s.exec(select(Application).where(Application.application_no == application_no)).one()


@pytest.fixture
def application_no(engine: Engine) -> Iterator[str]:
    """A borrower and an application with a unique application number."""
    no = f"LA{uuid.uuid4().hex[:16].upper()}"
    with Session(engine) as s:
        borrower = Borrower(
            name="李四",
            id_number=uuid.uuid4().hex[:18],
            phone="13900000000",
            bank_card=BANK_CARD,
            monthly_income=Decimal("15000.00"),
        )
        s.add(borrower)
        s.flush()
        s.add(
            Application(
                application_no=no,
                borrower_id=borrower.id,
                amount=Decimal("10000.00"),
                term_months=12,
                purpose="经营周转",
                repayment_source="工资",
                stage="SUBMITTED",
                submitted_by="clerk",
                created_at=T0,
                updated_at=T0,
            )
        )
        s.commit()
    yield no


def add_loan(engine: Engine, application_no: str, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "application_no": application_no,
        "contract_no": f"HT-{application_no}",
        "principal": Decimal("10000.00"),
        "annual_rate": Decimal("0.108000"),
        "term_months": 12,
        "method": "equal_installment",
        "upfront_fee": Decimal("100.00"),
        "apr": Decimal("0.125000"),
        "apr_compound": Decimal("0.132000"),
        "created_at": T0,
    }
    fields.update(overrides)
    with Session(engine) as s:
        s.add(Loan(**fields))
        s.commit()


def add_contract(
    engine: Engine, application_no: str, *, signed: bool = True, signed_sha256: str | None = None
) -> uuid.UUID:
    content = f"contract for {application_no}".encode()
    sha = hashlib.sha256(content).hexdigest()
    doc_id = uuid.uuid4()
    with Session(engine) as s:
        s.add(
            Document(
                id=doc_id,
                application_no=application_no,
                kind="contract",
                filename="contract.pdf",
                content_type="application/pdf",
                sha256=sha,
                content=content,
                created_at=T0,
                signed_at=T0 + timedelta(hours=1) if signed else None,
                signer_name="李四" if signed else None,
                signed_sha256=(signed_sha256 or sha) if signed else None,
            )
        )
        s.commit()
    return doc_id


def open_input(application_no: str, **kw: Any) -> OpenTaskInput:
    fields: dict[str, Any] = {
        "task_id": str(uuid.uuid4()),
        "application_no": application_no,
        "kind": TaskKind.RISK_REVIEW,
        "candidate_role": Role.RISK_MANAGER,
        "excluded": (),
        "priority": 50,
        "created_at": T0,
        "due_at": T0 + timedelta(hours=24),
    }
    fields.update(kw)
    return OpenTaskInput(**fields)


# ---- tasks ----------------------------------------------------------------------------------


def test_open_task_twice_makes_one_row_and_one_audit(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    inp = open_input(application_no)
    acts.open_task(inp)
    acts.open_task(inp)
    # A retry that somehow carries different data still finds the row by its stable id.
    acts.open_task(replace(inp, priority=99, candidate_role=Role.AUDITOR))

    assert count(engine, Task, Task.application_no == application_no) == 1
    task = get_task(engine, inp.task_id)
    assert task.status == "open"
    assert task.priority == 50
    assert task.candidate_role == "risk_manager"
    assert task.due_at == inp.due_at
    events = audits(engine, f"task/{inp.task_id}/opened")
    assert len(events) == 1
    assert events[0].action == "risk_review.opened"
    assert events[0].application_no == application_no
    assert count(engine, AuditEvent, AuditEvent.application_no == application_no) == 1


def test_open_task_runs_inside_an_activity_context(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    inp = open_input(application_no)
    env = ActivityEnvironment()
    env.run(acts.open_task, inp)
    env.run(acts.open_task, inp)
    assert count(engine, Task, Task.application_no == application_no) == 1
    assert len(audits(engine, f"task/{inp.task_id}/opened")) == 1


def test_two_distinct_tasks_make_two_rows(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    acts.open_task(open_input(application_no))
    acts.open_task(open_input(application_no, kind=TaskKind.DISBURSEMENT))
    assert count(engine, Task, Task.application_no == application_no) == 2
    assert count(engine, AuditEvent, AuditEvent.application_no == application_no) == 2


def test_close_task_twice_closes_once(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    inp = open_input(application_no)
    acts.open_task(inp)
    first = CloseTaskInput(
        task_id=inp.task_id,
        application_no=application_no,
        kind=inp.kind,
        status=TaskStatus.COMPLETED,
        closed_at=T0 + timedelta(hours=2),
        decision="approve",
        decided_by="risk1",
        comment="ok",
        data={"limit": "10000.00"},
    )
    acts.close_task(first)
    acts.close_task(first)
    acts.close_task(
        replace(
            first,
            decision="reject",
            decided_by="risk2",
            comment="changed my mind",
            closed_at=T0 + timedelta(hours=5),
            data=None,
        )
    )

    task = get_task(engine, inp.task_id)
    assert task.status == "completed"
    assert task.decision == "approve"
    assert task.decided_by == "risk1"
    assert task.comment == "ok"
    assert task.data == {"limit": "10000.00"}
    assert task.closed_at == T0 + timedelta(hours=2)
    events = audits(engine, f"task/{inp.task_id}/closed")
    assert len(events) == 1
    assert events[0].action == "risk_review.approve"
    assert events[0].actor == "risk1"
    assert count(engine, AuditEvent, AuditEvent.action == "risk_review.reject") == 0


def test_cancel_without_decision_is_recorded_once(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    inp = open_input(application_no)
    acts.open_task(inp)
    cancel = CloseTaskInput(
        task_id=inp.task_id,
        application_no=application_no,
        kind=inp.kind,
        status=TaskStatus.CANCELLED,
        closed_at=T0 + timedelta(hours=1),
    )
    acts.close_task(cancel)
    acts.close_task(cancel)
    assert get_task(engine, inp.task_id).status == "cancelled"
    events = audits(engine, f"task/{inp.task_id}/closed")
    assert [(e.action, e.actor) for e in events] == [("risk_review.cancelled", "system")]


def test_close_unknown_task_does_nothing(engine: Engine, application_no: str) -> None:
    TaskActivities(engine).close_task(
        CloseTaskInput(
            task_id=str(uuid.uuid4()),
            application_no=application_no,
            kind=TaskKind.RISK_REVIEW,
            status=TaskStatus.COMPLETED,
            closed_at=T0,
            decision="approve",
        )
    )
    assert count(engine, Task) == 0
    assert count(engine, AuditEvent) == 0


def _escalation(inp: OpenTaskInput, level: int, priority: int, hours: int) -> EscalateTaskInput:
    return EscalateTaskInput(
        task_id=inp.task_id,
        application_no=inp.application_no,
        kind=inp.kind,
        level=level,
        priority=priority,
        escalated_at=T0 + timedelta(hours=hours),
        next_due_at=T0 + timedelta(hours=hours + 8),
    )


def test_escalate_same_level_twice_sends_one_notice(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    inp = open_input(application_no)
    acts.open_task(inp)
    esc = _escalation(inp, level=1, priority=80, hours=24)
    acts.escalate_task(esc)
    acts.escalate_task(esc)
    acts.escalate_task(replace(esc, priority=95, escalated_at=T0 + timedelta(hours=30)))

    key = f"task/{inp.task_id}/escalated/1"
    assert len(audits(engine, key)) == 1
    with Session(engine) as s:
        notices = s.exec(select(Notice).where(Notice.key == key)).all()
        assert len(notices) == 1
        assert notices[0].recipient == "department_manager"
        assert notices[0].template == "task_escalated"
        assert notices[0].payload == {
            "task_id": inp.task_id,
            "kind": "risk_review",
            "level": 1,
            "handed_to": None,
        }
    assert count(engine, Notice, Notice.application_no == application_no) == 1
    task = get_task(engine, inp.task_id)
    assert task.status == "open"
    assert task.priority == 80
    assert task.escalated_at == T0 + timedelta(hours=24)
    assert task.due_at == T0 + timedelta(hours=32)


def test_next_escalation_level_is_a_new_notice(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    inp = open_input(application_no)
    acts.open_task(inp)
    acts.escalate_task(_escalation(inp, level=1, priority=80, hours=24))
    acts.escalate_task(_escalation(inp, level=2, priority=90, hours=32))
    acts.escalate_task(_escalation(inp, level=2, priority=90, hours=32))
    assert count(engine, Notice, Notice.application_no == application_no) == 2
    assert len(audits(engine, f"task/{inp.task_id}/escalated/2")) == 1
    assert get_task(engine, inp.task_id).priority == 90


def test_escalating_a_closed_task_does_nothing(engine: Engine, application_no: str) -> None:
    acts = TaskActivities(engine)
    inp = open_input(application_no)
    acts.open_task(inp)
    acts.close_task(
        CloseTaskInput(
            task_id=inp.task_id,
            application_no=application_no,
            kind=inp.kind,
            status=TaskStatus.COMPLETED,
            closed_at=T0 + timedelta(hours=1),
            decision="approve",
            decided_by="risk1",
        )
    )
    acts.escalate_task(_escalation(inp, level=1, priority=80, hours=24))
    assert count(engine, Notice) == 0
    assert audits(engine, f"task/{inp.task_id}/escalated/1") == []
    assert get_task(engine, inp.task_id).priority == 50


# ---- stages ---------------------------------------------------------------------------------


def test_record_stage_same_seq_twice_is_one_event(engine: Engine, application_no: str) -> None:
    acts = ApplicationActivities(engine)
    stage = StageInput(
        application_no=application_no, stage=Stage.RISK_REVIEW, seq=3, at=T0 + timedelta(hours=1)
    )
    acts.record_stage(stage)
    acts.record_stage(stage)
    acts.record_stage(replace(stage, stage=Stage.REJECTED, at=T0 + timedelta(hours=9)))

    events = audits(engine, f"{application_no}/stage/3")
    assert len(events) == 1
    assert events[0].detail == {"stage": "RISK_REVIEW", "reason": None, "policy_version": 0}
    app = get_application(engine, application_no)
    assert app.stage == "RISK_REVIEW"
    assert app.updated_at == T0 + timedelta(hours=1)

    acts.record_stage(
        replace(stage, stage=Stage.PRODUCT_MATCHING, seq=4, at=T0 + timedelta(hours=2))
    )
    assert get_application(engine, application_no).stage == "PRODUCT_MATCHING"
    assert count(engine, AuditEvent, AuditEvent.action == "stage.entered") == 2


def test_terminal_stage_marks_the_loan_once(engine: Engine, application_no: str) -> None:
    add_loan(engine, application_no, status="active")
    acts = ApplicationActivities(engine)
    settled = StageInput(application_no=application_no, stage=Stage.SETTLED, seq=20, at=T0)
    acts.record_stage(settled)
    acts.record_stage(settled)
    assert get_loan(engine, application_no).status == "settled"
    assert len(audits(engine, f"{application_no}/stage/20")) == 1


# ---- payments -------------------------------------------------------------------------------


def _payment(application_no: str, ref: str, amount: str, credit: str) -> RecordPaymentInput:
    paid_at = T0 + timedelta(days=31)
    return RecordPaymentInput(
        application_no=application_no,
        request=PaymentRequest(
            external_ref=ref,
            amount=Decimal(amount),
            paid_at=paid_at,
            paid_on=date(2026, 4, 2),
            recorded_by="ops1",
        ),
        lines=(
            AllocationLine(1, Component.INTEREST, Decimal("90.00")),
            AllocationLine(1, Component.PRINCIPAL, Decimal("789.16")),
        ),
        installments=(
            InstallmentBalance(
                number=1,
                due_date=date(2026, 4, 2),
                principal_due=Decimal("789.16"),
                interest_due=Decimal("90.00"),
                fee_due=Decimal("0"),
                principal_paid=Decimal("789.16"),
                interest_paid=Decimal("90.00"),
            ),
        ),
        credit=Decimal(credit),
    )


def test_record_payment_twice_is_one_payment(engine: Engine, application_no: str) -> None:
    add_loan(engine, application_no, status="active", start_date=date(2026, 3, 2))
    with Session(engine) as s:
        s.add(
            Installment(
                application_no=application_no,
                number=1,
                due_date=date(2026, 4, 2),
                principal_due=Decimal("789.16"),
                interest_due=Decimal("90.00"),
            )
        )
        s.commit()
    acts = ServicingActivities(engine)
    ref = f"BANK-{uuid.uuid4().hex[:12]}"
    first = _payment(application_no, ref, "900.00", "20.84")
    acts.record_payment(first)
    acts.record_payment(first)
    acts.record_payment(_payment(application_no, ref, "5000.00", "4120.84"))

    with Session(engine) as s:
        payments = s.exec(select(Payment).where(Payment.external_ref == ref)).all()
        assert len(payments) == 1
        assert payments[0].amount == Decimal("900.00")
        assert payments[0].credit_after == Decimal("20.84")
        assert payments[0].allocation == [
            {"installment": "1", "component": "interest", "amount": "90.00"},
            {"installment": "1", "component": "principal", "amount": "789.16"},
        ]
        inst = s.exec(select(Installment).where(Installment.application_no == application_no)).one()
        assert inst.status == "paid"
        assert inst.paid_off_on == date(2026, 4, 2)
        assert inst.principal_paid == Decimal("789.16")
    assert count(engine, Payment, Payment.application_no == application_no) == 1
    assert get_loan(engine, application_no).credit == Decimal("20.84")
    assert len(audits(engine, f"{application_no}/payment/{ref}")) == 1


# ---- disbursement ---------------------------------------------------------------------------


def _disburse_input(application_no: str, key: str, **kw: Any) -> DisburseInput:
    fields: dict[str, Any] = {
        "application_no": application_no,
        "idempotency_key": key,
        "principal": Decimal("10000.00"),
        "net_amount": Decimal("9900.00"),
        "approved_by": "ops_manager",
        "at": T0 + timedelta(days=1),
    }
    fields.update(kw)
    return DisburseInput(**fields)


def test_disburse_twice_pays_once(engine: Engine, application_no: str) -> None:
    add_loan(engine, application_no)
    add_contract(engine, application_no)
    acts = DisbursementActivities(engine)
    key = f"{application_no}/disburse/1"
    inp = _disburse_input(application_no, key)

    first = acts.disburse(inp)
    second = acts.disburse(inp)
    third = acts.disburse(replace(inp, at=T0 + timedelta(days=3), approved_by="someone_else"))

    assert first.disbursed_at == inp.at
    assert first.business_date == date(2026, 3, 3)
    assert second == first
    assert third.disbursed_at == inp.at
    with Session(engine) as s:
        rows = s.exec(select(Disbursement).where(Disbursement.application_no == application_no))
        (row,) = rows.all()
        assert row.idempotency_key == key
        assert row.amount == Decimal("10000.00")
        assert row.net_amount == Decimal("9900.00")
        assert row.bank_card == BANK_CARD
        assert row.approved_by == "ops_manager"
        assert all(row.checklist.values())
    loan = get_loan(engine, application_no)
    assert loan.status == "disbursed"
    assert loan.disbursed_at == inp.at
    assert loan.disbursed_by == "ops_manager"
    assert len(audits(engine, f"{application_no}/disbursed")) == 1


def test_disburse_in_activity_environment(engine: Engine, application_no: str) -> None:
    add_loan(engine, application_no)
    add_contract(engine, application_no)
    acts = DisbursementActivities(engine)
    inp = _disburse_input(application_no, f"{application_no}/disburse/1")
    env = ActivityEnvironment()
    assert env.run(acts.disburse, inp) == env.run(acts.disburse, inp)
    assert count(engine, Disbursement) == 1


@pytest.mark.parametrize(
    ("setup", "inp_overrides", "failed_check"),
    [
        ("unsigned", {}, "contract_signed"),
        ("no_contract", {}, "contract_signed"),
        ("hash_mismatch", {}, "signed_hash_matches"),
        ("signed", {"principal": Decimal("12000.00")}, "amount_matches_contract"),
        ("signed", {"net_amount": Decimal("10000.00")}, "net_amount_matches"),
    ],
)
def test_disburse_precheck_failure_is_final_and_writes_nothing(
    engine: Engine,
    application_no: str,
    setup: str,
    inp_overrides: dict[str, Any],
    failed_check: str,
) -> None:
    add_loan(engine, application_no)
    if setup == "unsigned":
        add_contract(engine, application_no, signed=False)
    elif setup == "hash_mismatch":
        add_contract(engine, application_no, signed_sha256="0" * 64)
    elif setup == "signed":
        add_contract(engine, application_no)
    acts = DisbursementActivities(engine)
    inp = _disburse_input(application_no, f"{application_no}/disburse/1", **inp_overrides)

    with pytest.raises(ApplicationError) as exc:
        acts.disburse(inp)
    err = exc.value
    assert err.non_retryable is True
    assert err.type == BUSINESS_REFUSAL
    assert failed_check in err.details

    assert count(engine, Disbursement) == 0
    assert count(engine, AuditEvent) == 0
    loan = get_loan(engine, application_no)
    assert loan.status == "pending"
    assert loan.disbursed_at is None
    assert loan.disbursed_by is None

    # The refusal is stable on retry, and still writes nothing.
    with pytest.raises(ApplicationError):
        acts.disburse(inp)
    assert count(engine, Disbursement) == 0


# ---- the signature and the lender's seal ---------------------------------------------------


def _blank_pdf() -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _contract_with_evidence(engine: Engine, application_no: str) -> Document:
    from models.tables import ContractSignature

    content = _blank_pdf()
    doc = Document(
        id=uuid.uuid4(),
        application_no=application_no,
        kind="contract",
        filename="contract.pdf",
        content_type="application/pdf",
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        created_at=T0,
    )
    with Session(engine, expire_on_commit=False) as s:
        s.add(doc)
        s.add(
            ContractSignature(
                document_id=doc.id,
                application_no=application_no,
                signer_name="李四",
                client_address="10.0.0.7",
                user_agent="phone",
                confirmed=["cost", "schedule", "penalty", "credit_record", "own_decision"],
                code_id=uuid.uuid4(),
                code_issued_at=T0,
                submitted_at=T0 + timedelta(minutes=1),
                document_sha256=doc.sha256,
            )
        )
        s.commit()
    return doc


def test_record_signature_twice_makes_one_signed_pdf(engine: Engine, application_no: str) -> None:
    from activities.contracts import ContractActivities
    from models.shapes import SignatureInput
    from models.tables import ContractSignature

    add_loan(engine, application_no)
    doc = _contract_with_evidence(engine, application_no)
    acts = ContractActivities(engine, lender=LENDER)
    inp = SignatureInput(application_no, str(doc.id), doc.sha256, T0 + timedelta(minutes=1))
    acts.record_signature(inp)
    acts.record_signature(replace(inp, signed_at=T0 + timedelta(hours=2)))

    assert count(engine, Document, Document.kind == "contract_signed") == 1
    with Session(engine) as s:
        evidence = s.get(ContractSignature, doc.id)
        assert evidence is not None and evidence.signed_at == inp.signed_at
        signed = s.get(Document, evidence.signed_document_id)
        assert signed is not None and signed.content is not None
        assert signed.sha256 == hashlib.sha256(signed.content).hexdigest() != doc.sha256
    assert get_loan(engine, application_no).status == "signed"
    assert len(audits(engine, f"{application_no}/contract/signed")) == 1


def test_record_seal_twice_seals_once(engine: Engine, application_no: str) -> None:
    from activities.contracts import ContractActivities
    from models.shapes import SealInput, SignatureInput
    from models.tables import ContractSignature

    add_loan(engine, application_no)
    doc = _contract_with_evidence(engine, application_no)
    acts = ContractActivities(engine, lender=LENDER)
    acts.record_signature(SignatureInput(application_no, str(doc.id), doc.sha256, T0))
    seal = SealInput(application_no, str(doc.id), "seal", "manager", T0 + timedelta(hours=1))
    acts.record_seal(seal)
    acts.record_seal(replace(seal, user="someone_else", at=T0 + timedelta(hours=5)))
    with Session(engine) as s:
        evidence = s.get(ContractSignature, doc.id)
        assert evidence is not None
        assert (evidence.sealed_by, evidence.sealed_at) == ("manager", seal.at)
    assert get_loan(engine, application_no).status == "sealed"
    assert len(audits(engine, f"{application_no}/contract/{doc.id}/contract.sealed")) == 1


def test_disburse_refuses_a_signed_contract_the_lender_has_not_sealed(
    engine: Engine, application_no: str
) -> None:
    from activities.contracts import ContractActivities
    from models.shapes import SignatureInput

    add_loan(engine, application_no)
    doc = _contract_with_evidence(engine, application_no)
    ContractActivities(engine, lender=LENDER).record_signature(
        SignatureInput(application_no, str(doc.id), doc.sha256, T0)
    )
    with pytest.raises(ApplicationError) as exc:
        DisbursementActivities(engine).disburse(
            _disburse_input(application_no, f"{application_no}/disburse/1")
        )
    assert exc.value.type == BUSINESS_REFUSAL
    assert list(exc.value.details) == ["lender_sealed"]
    assert count(engine, Disbursement, Disbursement.application_no == application_no) == 0
