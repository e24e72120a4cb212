"""loanops.aftercare and its activities on SQLite and PostgreSQL: which loans the review sweep
selects (periodic, sooner for large or 关注 loans, at once for a new flag; paged), flags raised
once per call and kind, and a review's outcome (flags cleared, 关注 set) recorded once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, select

from activities.aftercare import AftercareActivities
from domain.aftercare import ReviewFacts, ReviewRules, review_due
from loanops.aftercare import due_reviews, flags_of, record_review_opened, review_context
from loanops.classification import latest
from models.shapes import FollowUpAnsweredInput, ReviewDecidedInput
from models.tables import (
    Application,
    AuditEvent,
    Borrower,
    Installment,
    Loan,
    LoanClassification,
    PostLoanReview,
)

AS_OF = date(2026, 7, 1)
NOW = datetime(2026, 7, 1, 2, tzinfo=UTC)
RULES = ReviewRules(interval_days=180, close_interval_days=90, large_amount=Decimal("100000.00"))


def _loan(
    engine: Engine,
    no: str,
    *,
    start: date,
    principal: str = "20000.00",
    stage: str = "SERVICING",
) -> None:
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
                application_no=no,
                borrower_id=borrower.id,
                amount=Decimal(principal),
                term_months=12,
                purpose="进货",
                repayment_source="经营收入",
                stage=stage,
                submitted_by="officer",
            )
        )
        s.add(
            Loan(
                application_no=no,
                contract_no=f"HT{no}",
                principal=Decimal(principal),
                annual_rate=Decimal("0.096"),
                term_months=12,
                method="equal_installment",
                apr=Decimal("0.096"),
                apr_compound=Decimal("0.1"),
                start_date=start,
                status="active",
            )
        )
        s.add(
            Installment(
                application_no=no,
                number=1,
                due_date=start + timedelta(days=30),
                principal_due=Decimal("1000.00"),
                interest_due=Decimal("10.00"),
            )
        )
        s.commit()


def _classify(engine: Engine, no: str, category: str) -> None:
    with Session(engine) as s:
        s.add(
            LoanClassification(
                application_no=no,
                seq=1,
                category=category,
                reason="test",
                source="auto",
                days_past_due=40,
                as_of=AS_OF,
                recorded_by="system",
                recorded_at=NOW,
            )
        )
        s.commit()


def _opened(engine: Engine, no: str, key: str, on: date) -> None:
    with Session(engine) as s:
        record_review_opened(
            s,
            application_no=no,
            period_key=key,
            reason="test",
            task_id=f"task-{key}",
            at=datetime(on.year, on.month, on.day, 2, tzinfo=UTC),
            on=on,
            bureau_status="no_record",
            context={},
        )
        s.commit()


def _answered(engine: Engine, no: str, task: str, at: datetime, *flags: str) -> None:
    AftercareActivities(engine).record_follow_up(
        FollowUpAnsweredInput(
            application_no=no,
            task_id=task,
            answered_by="cs",
            at=at,
            answers={"income_change": "lost"},
            flags=tuple((f, f"detail of {f}") for f in flags),
        )
    )


def _due(engine: Engine, *, after: str | None = None, limit: int = 100) -> dict[str, str]:
    with Session(engine) as s:
        page = due_reviews(s, AS_OF, RULES, after=after, limit=limit)
    return {d.application_no: d.period_key for d in page.due}


def test_the_rule_without_a_database() -> None:
    facts = ReviewFacts("A1", Decimal("20000.00"), date(2026, 1, 2))
    assert review_due(facts, RULES, date(2026, 6, 30)) is None
    due = review_due(facts, RULES, date(2026, 7, 1))  # 180 days after disbursement
    assert due is not None and due.period_key == "periodic/2026-07-01"


def test_the_sweep_selects_the_loans_due(engine: Engine) -> None:
    # Periodic: 180 days after disbursement, or after the last review opened.
    _loan(engine, "A-PERIODIC-DUE", start=AS_OF - timedelta(days=180))
    _loan(engine, "A-PERIODIC-NOT", start=AS_OF - timedelta(days=179))
    _loan(engine, "A-REVIEWED", start=AS_OF - timedelta(days=400))
    _opened(engine, "A-REVIEWED", "periodic/old", AS_OF - timedelta(days=100))
    # Sooner for a large loan, or one classified 关注 or worse: 90 days.
    _loan(engine, "A-LARGE", start=AS_OF - timedelta(days=90), principal="100000.00")
    _loan(engine, "A-WATCHED", start=AS_OF - timedelta(days=95))
    _classify(engine, "A-WATCHED", "special_mention")
    _loan(engine, "A-NORMAL-95", start=AS_OF - timedelta(days=95))
    _classify(engine, "A-NORMAL-95", "normal")
    # At once when a flag was raised since the last review opened.
    _loan(engine, "A-FLAGGED", start=AS_OF - timedelta(days=20))
    _answered(engine, "A-FLAGGED", "call-1", NOW - timedelta(days=1), "income_lost")
    _loan(engine, "A-FLAG-REVIEWED", start=AS_OF - timedelta(days=20))
    _answered(engine, "A-FLAG-REVIEWED", "call-2", NOW - timedelta(days=3), "funds_diverted")
    _opened(engine, "A-FLAG-REVIEWED", "flag/call-2", AS_OF - timedelta(days=2))
    # Not in servicing: never.
    _loan(engine, "A-SETTLED", start=AS_OF - timedelta(days=400), stage="SETTLED")

    assert _due(engine) == {
        "A-PERIODIC-DUE": f"periodic/{AS_OF.isoformat()}",
        "A-LARGE": f"periodic/{AS_OF.isoformat()}",
        "A-WATCHED": f"periodic/{(AS_OF - timedelta(days=5)).isoformat()}",
        "A-FLAGGED": "flag/call-1",
    }
    # Paged by application number: the pages add up to the whole.
    with Session(engine) as s:
        first = due_reviews(s, AS_OF, RULES, after=None, limit=5)
        second = due_reviews(s, AS_OF, RULES, after=first.next_after, limit=5)
    assert first.next_after is not None and second.next_after is None
    assert {d.application_no for d in first.due + second.due} == set(_due(engine))


def test_flags_are_raised_once_and_audited(engine: Engine) -> None:
    _loan(engine, "A-FLAGS", start=AS_OF - timedelta(days=20))
    _answered(engine, "A-FLAGS", "call-9", NOW, "funds_diverted", "income_lost")
    _answered(engine, "A-FLAGS", "call-9", NOW, "funds_diverted", "income_lost")  # a retry
    with Session(engine) as s:
        flags = flags_of(s, "A-FLAGS")
        assert sorted(f.kind for f in flags) == ["funds_diverted", "income_lost"]
        assert all(f.source_task_id == "call-9" and f.raised_by == "cs" for f in flags)
        actions = s.exec(
            select(AuditEvent.action).where(AuditEvent.application_no == "A-FLAGS")
        ).all()
        assert sorted(actions) == [
            "follow_up_call.answered",
            "loan.risk_flag_raised",
            "loan.risk_flag_raised",
        ]
        context = review_context(s, "A-FLAGS", AS_OF)
    assert [f["kind"] for f in context["open_flags"]] == ["funds_diverted", "income_lost"]
    assert context["repayment"]["installments"] == 1
    assert context["repayment"]["outstanding_principal"] == "1000.00"
    assert context["classification"] == "normal"


def _decide(engine: Engine, no: str, key: str, outcome: str, reason: str | None) -> str:
    return AftercareActivities(engine).record_review_decided(
        ReviewDecidedInput(
            application_no=no,
            period_key=key,
            outcome=outcome,
            at=NOW,
            business_date=AS_OF,
            business_timezone="Asia/Shanghai",
            decided_by="risk",
            reason=reason,
        )
    )


def test_review_outcomes_clear_flags_or_set_special_mention_once(engine: Engine) -> None:
    _loan(engine, "A-OUT", start=AS_OF - timedelta(days=20))
    _answered(engine, "A-OUT", "call-1", NOW - timedelta(days=2), "income_lost")
    _opened(engine, "A-OUT", "flag/call-1", AS_OF - timedelta(days=1))
    assert _decide(engine, "A-OUT", "flag/call-1", "no_action", None) == "1 risk flag(s) cleared"
    with Session(engine) as s:
        (flag,) = flags_of(s, "A-OUT")
        assert flag.cleared_by == "risk" and flag.cleared_by_review == "flag/call-1"
    # watch: 关注 with the reviewer's reason; a retry changes nothing.
    _opened(engine, "A-OUT", "periodic/x", AS_OF)
    effect = _decide(engine, "A-OUT", "periodic/x", "watch", "income fell")
    assert effect.startswith("classified special_mention")
    assert _decide(engine, "A-OUT", "periodic/x", "watch", "income fell") == effect
    with Session(engine) as s:
        row = latest(s, "A-OUT")
        assert row is not None and row.seq == 1
        assert (row.category, row.source, row.recorded_by) == ("special_mention", "manual", "risk")
        assert "income fell" in row.reason
        review = s.exec(
            select(PostLoanReview).where(PostLoanReview.period_key == "periodic/x")
        ).one()
        assert (review.outcome, review.decided_by, review.outcome_reason) == (
            "watch",
            "risk",
            "income fell",
        )
    # accelerate_collection: recorded and audited.
    _opened(engine, "A-OUT", "periodic/y", AS_OF)
    assert _decide(engine, "A-OUT", "periodic/y", "accelerate_collection", "late elsewhere") == (
        "collection accelerated"
    )
    with Session(engine) as s:
        assert s.exec(
            select(AuditEvent).where(AuditEvent.action == "loan.collection_accelerated")
        ).one().detail == {"review": "periodic/y", "reason": "late elsewhere"}
