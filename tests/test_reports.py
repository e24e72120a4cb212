"""The portfolio report, the overdue worklist and the daily snapshot against figures computed
by hand on a small portfolio of rows (tests/portfolio.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.classification import days_past_due
from loanops.classification import _balances
from loanops.reports import overdue_worklist, portfolio_report, snapshot_portfolio
from models.reports import dpd_bucket
from models.tables import PortfolioSnapshot
from tests.portfolio import (
    AS_OF,
    BY_CLASS,
    BY_GRADE,
    BY_PRODUCT,
    BY_STAGE_NONZERO,
    COLLECTIONS,
    DPD,
    DPD_BUCKETS,
    LAST_CONTACT,
    OUTSTANDING,
    OVERDUE,
    OVERDUE_PRINCIPAL,
    PAR,
    RECOVERIES,
    TOTAL,
    WRITE_OFFS,
    build_portfolio,
    no,
)


@pytest.fixture
def portfolio(engine: Engine) -> Engine:
    build_portfolio(engine)
    return engine


def _groups(groups: list[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    return {g["key"]: (g["loan_count"], g["outstanding_principal"]) for g in groups}


def test_portfolio_figures(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        report = portfolio_report(s, AS_OF).model_dump(mode="json")
    assert report["as_of"] == "2026-06-15"
    assert report["totals"] == {
        "loan_count": 7,
        "outstanding_principal": TOTAL,
        "overdue_loan_count": 6,
        "overdue_principal": OVERDUE_PRINCIPAL,
    }
    assert _groups(report["dpd_buckets"]) == DPD_BUCKETS
    assert list(_groups(report["dpd_buckets"])) == [
        "current",
        "1-30",
        "31-60",
        "61-90",
        "91-180",
        "180+",
    ]
    assert {
        p["key"]: (p["loan_count"], p["principal_at_risk"], p["share"]) for p in report["par"]
    } == PAR
    assert report["product_dimension"] == "repayment_method"
    assert _groups(report["by_product"]) == BY_PRODUCT
    assert _groups(report["by_grade"]) == BY_GRADE
    assert _groups(report["by_classification"]) == BY_CLASS
    labels = {g["key"]: g["label"] for g in report["by_classification"]}
    assert labels["doubtful"] == "可疑" and labels["unclassified"] is None
    stages = _groups(report["by_stage"])
    assert {k: v for k, v in stages.items() if v != (0, "0.00")} == BY_STAGE_NONZERO
    assert len(stages) == 12  # every stage listed
    assert report["write_offs"] == WRITE_OFFS
    assert report["recoveries"] == RECOVERIES
    assert any("recoveries" in n for n in report["notes"])


def test_collections_outcomes_and_the_promise_kept_rate(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        c = portfolio_report(s, AS_OF).model_dump(mode="json")["collections"]
    assert [o["key"] for o in c["contacts"]] == [
        "reached",
        "unreachable",
        "promise_to_pay",
        "dispute",
        "wrong_number",
    ]
    assert {o["key"]: o["count"] for o in c["contacts"]} == COLLECTIONS["contacts"]
    assert {o["key"]: o["count"] for o in c["episodes"]} == COLLECTIONS["episodes"]
    for key in ("promises_made", "promises_kept", "promises_broken", "promise_kept_rate"):
        assert c[key] == COLLECTIONS[key], key


def test_the_portfolio_csv_has_one_header_and_the_same_figures(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        report = portfolio_report(s, AS_OF)
    text = report.csv()
    assert text.splitlines()[0] == "as_of,section,key,label,loan_count,amount,share"
    assert text.count("as_of,") == 1
    rows = {(r["section"], r["key"]): r for r in csv.DictReader(io.StringIO(text))}
    assert rows[("total", "outstanding")]["amount"] == TOTAL
    assert rows[("write_offs", "written_off")]["amount"] == "1500.00"
    assert rows[("write_offs", "penalty")]["amount"] == "300.00"
    assert rows[("recoveries", "recovered")]["amount"] == "200.00"
    assert rows[("collections_contact", "promise_to_pay")]["loan_count"] == "3"
    assert rows[("collections_promise", "kept_rate")]["share"] == "0.500000"
    assert rows[("collections_episode", "written_off")]["loan_count"] == "1"
    assert rows[("par", "par30")]["share"] == "0.754098"


def test_the_groups_add_up_to_the_total(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        report = portfolio_report(s, AS_OF)
    for groups in (
        report.by_product,
        report.by_grade,
        report.by_classification,
        report.dpd_buckets,
    ):
        assert sum(g.loan_count for g in groups) == 7
        assert sum((g.outstanding_principal for g in groups), Decimal(0)) == Decimal(TOTAL)


def test_the_sql_dpd_agrees_with_the_domain_rule(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        page = overdue_worklist(s, AS_OF, limit=500)
        for n, dpd in DPD.items():
            assert days_past_due(_balances(s, no(n)), AS_OF) == dpd
    assert {i.application_no: i.days_past_due for i in page.items} == {
        no(n): d for n, d in DPD.items() if d
    }


def test_as_of_moves_the_day_dpd_is_counted_to(portfolio: Engine) -> None:
    """A day earlier every DPD is one less: R4 (90) leaves 91-180 for 61-90 but stays in PAR90
    (DPD ≥ 90), R7 (89) leaves PAR90."""
    with Session(portfolio) as s:
        report = portfolio_report(s, AS_OF - timedelta(days=1))
    buckets = _groups(report.model_dump(mode="json")["dpd_buckets"])
    assert buckets["61-90"] == (2, "4700.00")  # R7 (89), R4 (90)
    assert buckets["91-180"] == (0, "0.00")
    par90 = next(p for p in report.par if p.key == "par90")
    assert (par90.loan_count, par90.principal_at_risk) == (2, Decimal("7000.00"))  # R4, R5
    assert par90.share == Decimal("0.573770")  # 7000 / 12200 = 0.5737704…


def test_dpd_buckets_at_their_edges() -> None:
    edges = {0: "current", 1: "1-30", 30: "1-30", 31: "31-60", 60: "31-60", 61: "61-90",
             90: "61-90", 91: "91-180", 180: "91-180", 181: "180+"}  # fmt: skip
    assert {d: dpd_bucket(d) for d in edges} == edges


def test_an_empty_portfolio_is_all_zeros(engine: Engine) -> None:
    with Session(engine) as s:
        report = portfolio_report(s, AS_OF)
    assert report.totals.loan_count == 0
    assert all(p.share == 0 for p in report.par)


# ---- the overdue worklist ---------------------------------------------------------------


def _order(page: Any) -> list[str]:
    return [i.application_no for i in page.items]


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("dpd", "desc", [5, 4, 7, 6, 3, 2]),
        ("dpd", "asc", [2, 3, 6, 7, 4, 5]),
        ("amount", "desc", [5, 4, 7, 3, 2, 6]),  # 3190, 3187, 707, 545, 521.25, 210
        ("amount", "asc", [6, 2, 3, 7, 4, 5]),
    ],
)
def test_worklist_sorting(portfolio: Engine, sort: Any, order: Any, expected: list[int]) -> None:
    with Session(portfolio) as s:
        page = overdue_worklist(s, AS_OF, sort=sort, order=order)
    assert _order(page) == [no(n) for n in expected]
    assert page.total == 6


def test_worklist_pagination(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        pages = [overdue_worklist(s, AS_OF, limit=4, offset=o) for o in (0, 4, 8)]
    assert [_order(p) for p in pages] == [
        [no(5), no(4), no(7), no(6)],
        [no(3), no(2)],
        [],
    ]
    assert {p.total for p in pages} == {6}


def test_worklist_rows(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        page = overdue_worklist(s, AS_OF)
    rows = {i.application_no: i.model_dump(mode="json") for i in page.items}
    for n, (p, i, fee, pen, amount) in OVERDUE.items():
        row = rows[no(n)]
        assert (
            row["overdue_principal"],
            row["overdue_interest"],
            row["overdue_fee"],
            row["penalty"],
            row["overdue_amount"],
        ) == (p, i, fee, pen, amount)
        assert row["outstanding_principal"] == OUTSTANDING[n]
        assert row["days_past_due"] == DPD[n]
    assert rows[no(4)]["oldest_overdue_due_date"] == "2026-03-16"
    # Names masked; R2 shows the name of the borrower version it was submitted with.
    assert rows[no(3)]["borrower_name"] == "张**"
    assert rows[no(2)]["borrower_name"] == "李*"
    assert rows[no(4)]["classification"] == "substandard"
    assert rows[no(2)]["classification"] is None
    # The last contact: the ladder's calls and visits or a decided overdue call, the later.
    for n, contact in LAST_CONTACT.items():
        at, result = contact or (None, None)
        assert rows[no(n)]["last_contact_result"] == result, n
        assert (rows[no(n)]["last_contact_at"] or "")[:19] == (at or ""), n


def test_worklist_csv_has_the_same_figures(portfolio: Engine) -> None:
    with Session(portfolio) as s:
        page = overdue_worklist(s, AS_OF, sort="amount")
    rows = list(csv.DictReader(io.StringIO(page.csv())))
    assert [r["application_no"] for r in rows] == _order(page)
    for r in rows:
        n = int(r["application_no"][-4:])
        assert (r["overdue_principal"], r["overdue_interest"], r["overdue_fee"], r["penalty"],
                r["overdue_amount"]) == OVERDUE[n]  # fmt: skip
        assert int(r["days_past_due"]) == DPD[n]
    assert rows[0]["application_no"] == no(5)
    assert rows[0]["last_contact_at"] == ""  # None is an empty cell


# ---- the daily snapshot -----------------------------------------------------------------


def test_snapshot_is_stored_once_per_day(portfolio: Engine) -> None:
    first = snapshot_portfolio(portfolio, AS_OF, now=datetime(2026, 6, 15, 16, tzinfo=UTC))
    assert (first.loan_count, first.outstanding_principal) == (7, Decimal(TOTAL))
    assert first.overdue_principal == Decimal(OVERDUE_PRINCIPAL)
    assert first.par30 == Decimal("0.754098")
    assert first.report["totals"]["outstanding_principal"] == TOTAL
    again = snapshot_portfolio(portfolio, AS_OF, now=datetime(2026, 6, 15, 17, tzinfo=UTC))
    assert again.taken_at == first.taken_at
    snapshot_portfolio(portfolio, date(2026, 6, 16))
    with Session(portfolio) as s:
        days = s.exec(
            select(col(PortfolioSnapshot.as_of)).order_by(col(PortfolioSnapshot.as_of))
        ).all()
    assert days == [AS_OF, date(2026, 6, 16)]
