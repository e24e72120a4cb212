"""The long activities heartbeat (issue 12 §6), observed in Temporal's ActivityEnvironment: the
daily classification once per loan on the books, the settlement certificate between its stages
(data loaded, PDF rendered). Called directly (the CLI, the other tests), they heartbeat nothing
and still work."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.testing import ActivityEnvironment

from activities.department import DepartmentActivities
from activities.progress import beat
from activities.rendering import Lender
from activities.settlement import SettlementActivities
from loanops.classification import CLASSIFIED_STAGES
from loanops.settings import Settings
from models.shapes import SettlementCertificateInput
from models.tables import Application, Document, Installment, Loan
from tests.portfolio import AS_OF, build_portfolio, no

LENDER = Lender("示范小额贷款有限公司", "91310000MA1EXAMPLE", "上海市示例路 8 号", "400-123-4567")


def observed(env: ActivityEnvironment) -> list[Any]:
    seen: list[Any] = []
    env.on_heartbeat = lambda *details: seen.append(details[0] if details else None)
    return seen


def test_the_daily_classification_heartbeats_once_per_loan_on_the_books(engine: Engine) -> None:
    build_portfolio(engine)
    with Session(engine) as s:
        on_books = s.exec(
            select(Application.application_no)
            .where(col(Application.stage).in_([st.value for st in CLASSIFIED_STAGES]))
            .order_by(col(Application.application_no))
        ).all()
    env = ActivityEnvironment()
    seen = observed(env)
    acts = DepartmentActivities(engine, Settings(environment="test"))
    env.run(acts.reclassify_book, AS_OF)
    assert len(on_books) >= 8
    assert seen == list(on_books)  # each loan named after it was classified, in order


def test_the_portfolio_snapshot_heartbeats_before_and_after(engine: Engine) -> None:
    build_portfolio(engine)
    env = ActivityEnvironment()
    seen = observed(env)
    env.run(
        DepartmentActivities(engine, Settings(environment="test")).take_portfolio_snapshot, AS_OF
    )
    assert seen == ["started", "stored"]


def test_the_settlement_certificate_heartbeats_between_its_stages(engine: Engine) -> None:
    build_portfolio(engine)
    with Session(engine) as s:  # R8 settled: its principal is the principal its rows repaid
        loan = s.exec(select(Loan).where(Loan.application_no == no(8))).one()
        rows = s.exec(select(Installment).where(Installment.application_no == no(8))).all()
        loan.principal = sum((r.principal_paid for r in rows), Decimal("0"))
        s.add(loan)
        s.commit()
    inp = SettlementCertificateInput(
        application_no=no(8),
        contract_no="HT-R8",
        at=datetime(2026, 6, 2, 2, tzinfo=UTC),
        settled_on=date(2026, 6, 2),
    )
    env = ActivityEnvironment()
    seen = observed(env)
    doc_id = env.run(SettlementActivities(engine, lender=LENDER).issue_settlement_certificate, inp)
    assert seen == ["loaded", "rendered"]
    with Session(engine) as s:
        doc = s.get(Document, uuid.UUID(doc_id))
        assert doc is not None and doc.content is not None and doc.content.startswith(b"%PDF")
    # A retry finds it stored: nothing rendered again, nothing to heartbeat.
    seen.clear()
    assert (
        env.run(SettlementActivities(engine, lender=LENDER).issue_settlement_certificate, inp)
        == doc_id
    )
    assert seen == []


def test_outside_an_activity_a_beat_is_nothing() -> None:
    beat("anything")  # no activity context: no error, nothing sent
