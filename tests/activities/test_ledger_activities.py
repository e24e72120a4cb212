"""The reversal and archive activities are safe to retry (both databases), and the archive checks
each document's stored bytes against its recorded sha256."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from activities.archive import ArchiveActivities
from activities.ledger import LedgerActivities
from activities.servicing import ServicingActivities
from domain.allocation import AllocationLine, Component, InstallmentBalance, PaymentMode
from loanops.documents import FileSystemDocumentStore
from models.shapes import ArchiveInput, ReappliedPayment, RecordReversalInput
from models.tables import (
    Application,
    Document,
    Installment,
    LoanArchive,
    LoanClassification,
    Notice,
    Payment,
)
from tests.activities.test_idempotency import (
    T0,
    _payment,
    add_contract,
    add_loan,
    application_no,  # noqa: F401  (the fixture)
    audits,
    count,
    get_loan,
)

DUE = date(2026, 4, 2)


def _unpaid() -> InstallmentBalance:
    return InstallmentBalance(
        number=1,
        due_date=DUE,
        principal_due=Decimal("789.16"),
        interest_due=Decimal("90.00"),
        fee_due=Decimal("0"),
        penalty_accrued=Decimal("3.55"),
        penalty_accrued_through=DUE + timedelta(days=10),
    )


def test_record_reversal_twice_reverses_once(engine: Engine, application_no: str) -> None:  # noqa: F811
    add_loan(engine, application_no, status="active", start_date=date(2026, 3, 2))
    with Session(engine) as s:
        app = s.exec(select(Application).where(Application.application_no == application_no)).one()
        app.stage = "SERVICING"
        s.add(
            Installment(
                application_no=application_no,
                number=1,
                due_date=DUE,
                principal_due=Decimal("789.16"),
                interest_due=Decimal("90.00"),
            )
        )
        s.commit()
    ref, later = f"B-{uuid.uuid4().hex[:10]}", f"L-{uuid.uuid4().hex[:10]}"
    acts = ServicingActivities(engine)
    acts.record_payment(_payment(application_no, ref, "900.00", "20.84"))
    acts.record_payment(_payment(application_no, later, "20.00", "40.84"))
    reversal = RecordReversalInput(
        application_no=application_no,
        external_ref=ref,
        reason="银行退票",
        requested_by="ops",
        approved_by="ops2",
        at=T0 + timedelta(days=41),
        business_date=DUE + timedelta(days=10),
        reapplied=(
            ReappliedPayment(
                later,
                PaymentMode.INSTALLMENTS,
                (AllocationLine(1, Component.PENALTY, Decimal("3.55")),),
                Decimal("0"),
            ),
        ),
        installments=(_unpaid(),),
        credit=Decimal("0"),
    )
    (posted,) = audits(engine, f"{application_no}/payment/{ref}")
    with Session(engine) as s:
        row = s.exec(select(Payment).where(Payment.external_ref == ref)).one()
        assert posted.detail["payment_id"] == str(row.id)  # the timeline names the id
    ledger = LedgerActivities(engine)
    ledger.record_reversal(reversal)
    ledger.record_reversal(reversal)
    with Session(engine) as s:
        row = s.exec(select(Payment).where(Payment.external_ref == ref)).one()
        assert (row.reversed_by, row.reversal_requested_by, row.reversal_reason) == (
            "ops2",
            "ops",
            "银行退票",
        )
        assert row.amount == Decimal("900.00")  # the record of what was received stays
        moved = s.exec(select(Payment).where(Payment.external_ref == later)).one()
        assert moved.allocation == [{"installment": "1", "component": "penalty", "amount": "3.55"}]
        inst = s.exec(select(Installment).where(Installment.application_no == application_no)).one()
        assert inst.status == "overdue" and inst.paid_off_on is None
        assert inst.principal_paid == 0 and inst.penalty_accrued == Decimal("3.55")
    assert get_loan(engine, application_no).credit == 0
    (audit,) = audits(engine, f"{application_no}/payment/{ref}/reversed")
    assert audit.detail["overdue"] == [1] and audit.detail["approved_by"] == "ops2"
    # The classification follows the installment overdue again (10 days past due), once.
    with Session(engine) as s:
        rows = s.exec(
            select(LoanClassification).where(LoanClassification.application_no == application_no)
        ).all()
    assert [r.days_past_due for r in rows][-1:] == [10]


def test_archive_twice_is_one_bundle_and_a_changed_file_is_flagged(
    engine: Engine,
    application_no: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    contract = add_contract(engine, application_no)
    store = FileSystemDocumentStore(tmp_path)
    good, bad = b"%PDF-1.4 income proof", b"%PDF-1.4 bank statement"
    with Session(engine) as s:
        for kind, data, recorded in (
            ("income_proof", good, hashlib.sha256(good).hexdigest()),
            # Recorded with another file's digest: the stored bytes no longer match it.
            ("bank_statement", bad, hashlib.sha256(b"what was uploaded").hexdigest()),
        ):
            s.add(
                Document(
                    id=uuid.uuid4(),
                    application_no=application_no,
                    kind=kind,
                    filename=f"{kind}.pdf",
                    content_type="application/pdf",
                    sha256=recorded,
                    size=len(data),
                    store_key=store.put(data),
                    created_at=T0 + timedelta(minutes=1),
                )
            )
        s.commit()
    inp = ArchiveInput(application_no, T0, date(2027, 3, 2), date(2032, 3, 2))
    acts = ArchiveActivities(engine, store)
    first = acts.archive_loan(inp)
    assert acts.archive_loan(inp) == first
    assert count(engine, LoanArchive, LoanArchive.application_no == application_no) == 1
    with Session(engine) as s:
        archive = s.get(LoanArchive, application_no)
        assert archive is not None
        assert archive.intact is False and archive.retain_until == date(2032, 3, 2)
        by_kind = {m["kind"]: m for m in archive.manifest}
        assert by_kind["contract"]["document_id"] == str(contract)
        assert by_kind["contract"]["verified"] is True
        assert by_kind["income_proof"]["sha256"] == hashlib.sha256(good).hexdigest()
        assert by_kind["bank_statement"]["verified"] is False
        assert by_kind["bank_statement"]["sha256"] == hashlib.sha256(bad).hexdigest()
        assert hashlib.sha256(store.get(archive.bundle_key)).hexdigest() == first
        notices = s.exec(select(Notice).where(Notice.application_no == application_no)).all()
        assert [n.template for n in notices] == ["archive_integrity"]
    assert len(audits(engine, f"{application_no}/archived")) == 1
