"""The portfolio simulator (loanops/simulate.py) on a small portfolio: 12 loans over 5 months on
its own time-skipping server, real worker, fresh SQLite database and sandbox processes. Its
report adds up, every fen disbursed is accounted for, and the ladder is seen at work up to a
write-off."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from domain.lifecycle import Stage
from loanops.db import make_engine
from loanops.simulate import SimulationResult, make_plans, run_simulation
from models.tables import CollectionContact, Task

# The module's fixture runs five months of a portfolio inside the first test's setup: a few
# minutes on a quiet 2-core machine, several times that beside the rest of the suite.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
async def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, Path]:
    workdir = tmp_path_factory.mktemp("simulate")
    return await run_simulation(12, 5, 3, workdir=workdir), workdir


@pytest.fixture
def result(simulated: tuple[SimulationResult, Path]) -> SimulationResult:
    return simulated[0]


def test_every_fen_disbursed_is_repaid_outstanding_or_written_off(
    result: SimulationResult,
) -> None:
    k = result.check
    assert k.disbursed == sum(
        (p.principal for p in make_plans(12, 3, result.first_day)), Decimal(0)
    )
    assert k.repaid > 0 and k.outstanding > 0 and k.written_off > 0
    assert k.repaid + k.outstanding + k.written_off == k.disbursed
    assert k.difference == Decimal("0.00")


def test_the_report_adds_up(result: SimulationResult) -> None:
    r = result.report
    stages = {g.key: g for g in r.by_stage}
    assert sum(g.loan_count for g in r.by_stage) == 12
    # The books (SERVICING) and the settled loans (nothing left) hold what is outstanding.
    on_books = stages[Stage.SERVICING.value].outstanding_principal
    assert r.totals.outstanding_principal == on_books == result.check.outstanding
    assert stages[Stage.SETTLED.value].outstanding_principal == 0
    assert stages[Stage.SETTLED.value].loan_count >= 1
    for groups in (r.by_grade, r.by_product, r.by_classification, r.dpd_buckets):
        assert sum(g.loan_count for g in groups) == r.totals.loan_count
        assert sum((g.outstanding_principal for g in groups), Decimal(0)) == on_books
    # The write-off left the books: its principal is the report's written-off amount.
    assert r.write_offs.loan_count == stages[Stage.WRITTEN_OFF.value].loan_count >= 1
    assert r.write_offs.amount == result.check.written_off
    assert result.payments > 0 and result.decisions > 0
    # The last day's classification sweep classified every loan on the books.
    classes = {g.key: g.loan_count for g in r.by_classification}
    assert classes["unclassified"] == 0
    assert sum(classes.values()) == r.totals.loan_count


def test_loans_reach_several_rungs_and_a_write_off(result: SimulationResult) -> None:
    rungs = result.rungs
    for step in (
        "sms_notice",
        "reminder_call",
        "collection_call",
        "field_visit",
        "legal_review",
        "write_off_proposal",
    ):
        assert rungs[step] >= 1, (step, rungs)
    assert rungs["written_off"] >= 1
    c = result.report.collections
    assert c is not None
    assert c.promises_made >= 1 and c.promises_kept >= 1 and c.promises_broken >= 1
    counts = {o.key: o.count for o in c.contacts}
    assert counts["dispute"] >= 1 and counts["unreachable"] >= 1
    assert {o.key: o.count for o in c.episodes}["written_off"] >= 1
    assert result.outcomes["defaulting"].get(Stage.WRITTEN_OFF.value, 0) >= 1


def test_the_staff_decided_the_ladder_tasks(simulated: tuple[SimulationResult, Path]) -> None:
    """The maker-checker write-off was proposed by the risk manager and approved by the
    manager, and the ladder's log recorded the approval."""
    engine = make_engine(f"sqlite:///{simulated[1] / 'simulate.db'}")
    with Session(engine) as s:
        decided = {
            (kind, decision, by)
            for kind, decision, by in s.exec(
                select(Task.kind, Task.decision, Task.decided_by).where(
                    col(Task.kind).in_(("write_off_proposal", "write_off_approval"))
                )
            ).all()
        }
        approvals = s.exec(
            select(CollectionContact.outcome).where(CollectionContact.step == "write_off_approval")
        ).all()
    engine.dispose()
    assert ("write_off_proposal", "propose", "risk") in decided
    assert ("write_off_approval", "approve", "manager") in decided
    assert "approve" in approvals
