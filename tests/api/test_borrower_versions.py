"""Borrower data is a dated record (issue 7, item 2): an application keeps the borrower data it was
submitted with; a later application with other data records a new version (audited) and never
changes what an earlier application, its contract or its payout is based on."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.masking import mask_bank_card, mask_phone
from loanops.demo import DEMO_BORROWER
from models.borrowers import BorrowerFields, record_borrower_data
from models.tables import (
    Application,
    AuditEvent,
    Borrower,
    BorrowerVersion,
    Disbursement,
    borrower_data_of,
)
from tests.api.helpers import contract_row, drive, loan_view, mint_demo_tokens, rows, submit
from tests.conftest import System

NEW_CARD = "6217001234567893"
NEW_PHONE = "13900139000"


def _pdf_text(pdf: bytes) -> str:
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    return "".join(text.split())


async def test_a_second_application_with_another_bank_card_does_not_change_the_first(
    system: System,
) -> None:
    mint_demo_tokens(system)
    first = await submit(system)
    changed = {**DEMO_BORROWER, "bank_card": NEW_CARD, "phone": NEW_PHONE}
    # Submitted before the first loan's contract is drawn up and before its payout: both must
    # still use the data the first application was submitted with.
    second = await submit(system, borrower=changed)
    # The same data again: the latest version is reused, no third one.
    third = await submit(system, borrower=changed)

    (borrower,) = rows(system, Borrower)
    versions = rows(system, BorrowerVersion)
    assert sorted((v.version, v.bank_card, v.phone) for v in versions) == [
        (1, DEMO_BORROWER["bank_card"], DEMO_BORROWER["phone"]),
        (2, NEW_CARD, NEW_PHONE),
    ]
    assert {v.recorded_by for v in versions} == {"officer"}
    by_no = {a.application_no: a.borrower_version for a in rows(system, Application)}
    assert by_no == {first: 1, second: 2, third: 2}
    # The borrower row is an identity, not the newest data.
    assert borrower.bank_card == DEMO_BORROWER["bank_card"]
    recorded = rows(
        system,
        AuditEvent,
        AuditEvent.action == "borrower.version_recorded",
    )
    assert sorted((e.detail["version"], e.application_no) for e in recorded) == [
        (1, first),
        (2, second),
    ]
    (v2,) = [e for e in recorded if e.detail["version"] == 2]
    assert v2.actor == "officer"
    assert sorted(v2.detail["changed"]) == ["bank_card", "phone"]
    assert NEW_CARD not in str(v2.detail)  # the trail names fields, not their values

    loan = await drive(system, first, "SERVICING")
    assert loan["borrower_version"] == 1
    assert (await loan_view(system, second))["borrower_version"] == 2

    text = _pdf_text(contract_row(system, first).content or b"")
    assert mask_bank_card(DEMO_BORROWER["bank_card"]) in text
    assert mask_phone(DEMO_BORROWER["phone"]) in text
    assert mask_bank_card(NEW_CARD) not in text
    assert mask_phone(NEW_PHONE) not in text

    (payout,) = rows(system, Disbursement, col(Disbursement.application_no) == first)
    assert payout.bank_card == DEMO_BORROWER["bank_card"]
    assert payout.checklist["payee_is_contract_account"] is True


def test_a_borrower_without_versions_keeps_its_row_as_version_1(engine: Engine) -> None:
    """A borrower written without versions (by hand, or before them): new data first records the
    row as version 1, then the new data as version 2; the old application still reads the row."""
    at = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    with Session(engine) as s:
        borrower = Borrower(
            name="王五",
            id_number="110105198001010027",
            phone="13600136000",
            bank_card="6222000011112222",
            monthly_income=Decimal("9000.00"),
        )
        s.add(borrower)
        s.flush()
        old = Application(
            application_no="A20261128-LEGACY",
            borrower_id=borrower.id,
            amount=Decimal("1000.00"),
            term_months=3,
            purpose="p",
            repayment_source="r",
            stage="INTAKE_REVIEW",
            submitted_by="officer",
        )
        s.add(old)
        s.commit()
        same = BorrowerFields("王五", "13600136000", "6222000011112222", Decimal("9000.00"))
        new = BorrowerFields("王五", "13600136000", NEW_CARD, Decimal("9000.00"))
        v2 = record_borrower_data(s, borrower, new, by="officer", reason="test", at=at)
        s.commit()
        assert v2.version == 2
        assert record_borrower_data(s, borrower, new, by="officer", reason="test", at=at) is v2
        versions = s.exec(select(BorrowerVersion).order_by(col(BorrowerVersion.version))).all()
        assert [(v.version, v.bank_card, v.recorded_by) for v in versions] == [
            (1, same.bank_card, "system"),
            (2, NEW_CARD, "officer"),
        ]
        data = borrower_data_of(s, old)
        assert data is not None
        assert (data.version, data.bank_card) == (0, same.bank_card)
