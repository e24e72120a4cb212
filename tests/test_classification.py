"""loanops.classification on SQLite and PostgreSQL: the daily run records a row only on a
change, events come from the audit trail and the stage, an override holds and lapses, and
every row is audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.classification import Category
from loanops.classification import (
    NotClassifiable,
    history,
    override,
    reclassify,
    reclassify_all,
)
from loanops.policy import add_loan_policy
from models.audit import append_audit
from models.tables import Application, AuditEvent, Borrower, Installment, LoanClassification
from tests.portfolio import AS_OF, build_portfolio, no

DUE = date(2026, 1, 10)
LOAN = "A20260101-CLS001"
NOW = datetime(2026, 6, 1, 2, tzinfo=UTC)


def _loan(engine: Engine, application_no: str = LOAN, stage: str = "SERVICING") -> None:
    """One loan with one unpaid installment due on DUE (and one after it)."""
    with Session(engine) as s:
        borrower = s.exec(select(Borrower)).first()
        if borrower is None:
            borrower = Borrower(
                name="王五",
                id_number="11010519491231002X",
                phone="13800138000",
                bank_card="6222020200112233446",
                monthly_income=Decimal("9000.00"),
            )
            s.add(borrower)
            s.flush()
        s.add(
            Application(
                application_no=application_no,
                borrower_id=borrower.id,
                amount=Decimal("2000.00"),
                term_months=2,
                purpose="进货",
                repayment_source="经营收入",
                stage=stage,
                submitted_by="officer",
            )
        )
        for n, due in ((1, DUE), (2, DUE + timedelta(days=31))):
            s.add(
                Installment(
                    application_no=application_no,
                    number=n,
                    due_date=due,
                    principal_due=Decimal("1000.00"),
                    interest_due=Decimal("10.00"),
                )
            )
        s.commit()


def _day(dpd: int) -> date:
    return DUE + timedelta(days=dpd)


def _categories(engine: Engine, application_no: str = LOAN) -> list[tuple[str, str]]:
    with Session(engine) as s:
        return [(r.category, r.source) for r in history(s, application_no)]


def test_a_row_only_when_the_category_changes(engine: Engine) -> None:
    _loan(engine)
    assert reclassify(engine, LOAN, _day(0), now=NOW).category == "normal"
    assert reclassify(engine, LOAN, _day(0), now=NOW).seq == 1  # same day again: nothing new
    row = reclassify(engine, LOAN, _day(1), now=NOW)
    assert (row.seq, row.category, row.days_past_due) == (2, "special_mention", 1)
    assert row.reason == "1 days past due (> 0): 关注 special_mention"
    for dpd in (2, 30, 90):  # still 关注: no row
        assert reclassify(engine, LOAN, _day(dpd), now=NOW).seq == 2
    assert reclassify(engine, LOAN, _day(91), now=NOW).category == "substandard"
    assert reclassify(engine, LOAN, _day(271), now=NOW).category == "doubtful"
    assert reclassify(engine, LOAN, _day(361), now=NOW).category == "loss"
    assert _categories(engine) == [
        ("normal", "auto"),
        ("special_mention", "auto"),
        ("substandard", "auto"),
        ("doubtful", "auto"),
        ("loss", "auto"),
    ]
    with Session(engine) as s:
        audited = s.exec(select(AuditEvent.action).where(AuditEvent.application_no == LOAN)).all()
    assert audited == ["loan.classified"] * 5


def test_payment_brings_the_category_back(engine: Engine) -> None:
    _loan(engine)
    reclassify(engine, LOAN, _day(20), now=NOW)
    with Session(engine) as s:
        row = s.exec(
            select(Installment).where(Installment.application_no == LOAN, Installment.number == 1)
        ).one()
        row.principal_paid, row.interest_paid = row.principal_due, row.interest_due
        s.commit()
    # The first installment paid; the second falls due on day 31 (not overdue on it).
    assert reclassify(engine, LOAN, _day(31), now=NOW).category == "normal"
    assert _categories(engine) == [("special_mention", "auto"), ("normal", "auto")]


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("loan.restructured", "substandard"),
        ("loan.legal_action", "substandard"),
        ("loan.written_off", "loss"),
    ],
)
def test_events_from_the_audit_trail(engine: Engine, action: str, expected: str) -> None:
    _loan(engine)
    with Session(engine) as s:
        append_audit(
            s,
            key=f"{LOAN}/{action}",
            application_no=LOAN,
            actor="risk",
            action=action,
            occurred_at=datetime(2026, 1, 5, 4, tzinfo=UTC),
        )
        s.commit()
    # Not yet on the day before the event (business day 2026-01-05 in Shanghai).
    assert reclassify(engine, LOAN, date(2026, 1, 4), now=NOW).category == "normal"
    row = reclassify(engine, LOAN, date(2026, 1, 5), now=NOW)
    assert row.category == expected
    assert action.removeprefix("loan.").replace("_", " ") in row.reason


def test_a_written_off_loan_is_loss(engine: Engine) -> None:
    _loan(engine, stage="WRITTEN_OFF")
    row = reclassify(engine, LOAN, _day(0), now=NOW)
    assert (row.category, row.reason) == ("loss", "written off: at least 损失 loss")


def test_only_loans_on_the_books_are_classified(engine: Engine) -> None:
    _loan(engine, stage="RISK_REVIEW")
    with pytest.raises(NotClassifiable, match="not RISK_REVIEW"):
        reclassify(engine, LOAN, _day(0))
    with pytest.raises(LookupError):
        reclassify(engine, "A20260101-NOSUCH", _day(0))


# ---- overrides --------------------------------------------------------------------------


def test_a_downgrade_holds_until_the_rule_is_worse(engine: Engine) -> None:
    _loan(engine)
    reclassify(engine, LOAN, _day(10), now=NOW)  # 关注
    row = override(
        engine,
        LOAN,
        category=Category.SUBSTANDARD,
        reason="借款人经营困难，已停业",
        by="risk",
        as_of=_day(10),
        now=NOW,
    )
    assert (row.seq, row.category, row.source, row.recorded_by) == (
        2,
        "substandard",
        "manual",
        "risk",
    )
    assert row.reason == "借款人经营困难，已停业"
    for dpd in (10, 91, 270):  # the rule gives 关注, then 次级: not worse, the override holds
        assert reclassify(engine, LOAN, _day(dpd), now=NOW).seq == 2
    lapsed = reclassify(engine, LOAN, _day(271), now=NOW)
    assert (lapsed.seq, lapsed.category, lapsed.source) == (3, "doubtful", "auto")
    assert "worse than the manual substandard, which lapses" in lapsed.reason
    with Session(engine) as s:
        actions = s.exec(
            select(AuditEvent.action)
            .where(AuditEvent.application_no == LOAN)
            .order_by(col(AuditEvent.event_key))
        ).all()
        detail = s.exec(
            select(AuditEvent.detail).where(AuditEvent.event_key == f"{LOAN}/classification/2")
        ).one()
    assert actions == ["loan.classified", "loan.classification_overridden", "loan.classified"]
    assert detail["reason"] == "借款人经营困难，已停业" and detail["previous"] == "special_mention"


def test_a_technical_overdue_kept_normal_lapses_on_day_8(engine: Engine) -> None:
    _loan(engine)
    reclassify(engine, LOAN, _day(3), now=NOW)
    override(
        engine, LOAN, category=Category.NORMAL, reason="银行代扣系统故障", by="risk",
        as_of=_day(3), now=NOW,
    )  # fmt: skip
    assert reclassify(engine, LOAN, _day(7), now=NOW).category == "normal"
    assert reclassify(engine, LOAN, _day(8), now=NOW).category == "special_mention"
    assert _categories(engine) == [
        ("special_mention", "auto"),
        ("normal", "manual"),
        ("special_mention", "auto"),
    ]


def test_an_override_better_than_the_rules_is_refused(engine: Engine) -> None:
    _loan(engine)
    with pytest.raises(ValueError, match=r"^category: normal"):
        override(engine, LOAN, category=Category.NORMAL, reason="x", by="risk", as_of=_day(30))
    with pytest.raises(ValueError, match=r"^reason:"):
        override(engine, LOAN, category=Category.LOSS, reason="  ", by="risk", as_of=_day(30))
    assert _categories(engine) == []


def test_reclassify_all_runs_over_the_book_once_a_day(engine: Engine) -> None:
    build_portfolio(engine)
    now = datetime(2026, 6, 15, 17, tzinfo=UTC)
    changed = reclassify_all(engine, AS_OF, now=now)
    # R1 stays normal, R4 stays substandard, R5's manual doubtful holds (the rule gives 次级);
    # R2 (5), R3 (30), R6 (60), R7 (90) become 关注; R10 (written off) 损失.
    assert {(r.application_no, r.category) for r in changed} == {
        (no(2), "special_mention"),
        (no(3), "special_mention"),
        (no(6), "special_mention"),
        (no(7), "special_mention"),
        (no(10), "loss"),
    }
    assert reclassify_all(engine, AS_OF, now=now) == []
    with Session(engine) as s:
        assert len(s.exec(select(LoanClassification)).all()) == 4 + 5


def test_each_loan_is_classified_by_the_policy_version_it_started_with(engine: Engine) -> None:
    """A later policy version moves the 关注 and 次级 lines; the daily run classifies the loan
    that started under it by its lines and the older loan by version 1's."""
    later = add_loan_policy(
        engine,
        rules={
            "classification_special_mention_after_days": 5,
            "classification_substandard_after_days": 30,
        },
        effective_from=date(2026, 1, 1),
        source="test: a stricter 次级 line, a lenient 关注 line",
        recorded_by="tester",
    )
    old, new = "A20260101-CLS001", "A20260101-CLS002"
    _loan(engine, old)
    _loan(engine, new)
    with Session(engine) as s:
        app = s.exec(select(Application).where(Application.application_no == new)).one()
        app.policy_version = later.version
        s.add(app)
        s.commit()

    def today(dpd: int) -> dict[str, str]:
        reclassify_all(engine, _day(dpd), now=NOW)
        return {no: _categories(engine, no)[-1][0] for no in (old, new)}

    assert today(3) == {old: "special_mention", new: "normal"}  # new: 3 ≤ 5, still 正常
    assert today(6) == {old: "special_mention", new: "special_mention"}
    assert today(31) == {old: "special_mention", new: "substandard"}
    assert today(91) == {old: "substandard", new: "substandard"}
