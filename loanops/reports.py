"""The managers' reports, answered from the database (never by querying workflows): the
portfolio, the overdue worklist, and the daily portfolio snapshot.

Every figure comes from the ``installments`` rows as the servicing workflow keeps them (amounts
in fen, summed by the database as integers, so exact). A loan's days past due on ``as_of`` are
counted from the due date of its oldest installment still owing anything (penalty included) and
due before ``as_of`` — the same rule as ``domain.classification.days_past_due`` and the loan
view. ``as_of`` moves the day DPD is measured on; amounts are those recorded now (a past day's
figures as they stood are in ``portfolio_snapshots``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import BigInteger, Engine, and_, case, func, literal, or_, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col, select

from domain.classification import Category
from domain.collections import CONTACT_OUTCOMES, Outcome
from domain.lifecycle import Stage
from domain.masking import mask_name
from domain.money import ZERO, int_to_fen
from domain.tasks import TaskKind, TaskStatus
from loanops.db import session_scope
from models.reports import (
    DPD_BUCKETS,
    PAR_DAYS,
    AmountCount,
    CollectionsOutcomes,
    Group,
    OutcomeCount,
    OverdueItem,
    OverduePage,
    ParOut,
    PortfolioReport,
    PortfolioTotals,
    WriteOffTotals,
    dpd_bucket,
)
from models.tables import (
    Application,
    Assessment,
    Borrower,
    BorrowerVersion,
    CollectionContact,
    Installment,
    Loan,
    LoanClassification,
    LoanWriteOff,
    PortfolioSnapshot,
    Task,
    WriteOffRecovery,
)

SHARE = Decimal("0.000001")
GRADES = ("A", "B", "C", "D", "E")
UNGRADED = "ungraded"
UNCLASSIFIED = "unclassified"
NOTES = [
    "product: no product catalog exists yet; loans are grouped by repayment method",
    "write_offs: the write-offs recorded (loan_write_offs): loans, principal written off "
    "(amount), and the interest, penalty and fees written off separately",
    "recoveries: payments received on written-off loans (write_off_recoveries)",
    "collections: every call and visit outcome, promise and episode ending in the collections "
    "log (collection_contacts); promise_kept_rate = kept / (kept + broken)",
    "amounts are those recorded now; as_of sets the day days past due are counted to",
]
# Collections log channels of a contact with the borrower, and of a promise's check.
CONTACT_CHANNELS = ("phone", "visit")
PROMISE_KEPT, PROMISE_BROKEN = "promise_kept", "promise_broken"
EPISODE_ENDINGS = ("cured", "written_off")

_I = Installment.__table__.c  # type: ignore[attr-defined]


def _fen(column: Any) -> ColumnElement[int]:
    """A money column as the integer count of fen it stores (sums stay exact integers)."""
    return type_coerce(column, BigInteger)


# Installment statuses that may still owe something (``activities.servicing`` marks a row
# ``paid`` once nothing is left on it, and a paid row never owes again).
UNPAID = ("scheduled", "overdue")


def _positions(as_of: date, *, overdue_only: bool = False) -> Any:
    """One row per application with installments: outstanding principal, the oldest due date
    still owing before ``as_of``, and what is overdue on it, in fen. ``overdue_only`` keeps the
    applications with an unpaid installment due before ``as_of``, found through the index on
    (status, due_date), so the worklist reads the overdue loans' rows, not the whole book."""
    owed = (
        _fen(_I.principal_due)
        - _fen(_I.principal_paid)
        + _fen(_I.interest_due)
        - _fen(_I.interest_paid)
        + _fen(_I.fee_due)
        - _fen(_I.fee_paid)
        + _fen(_I.penalty_accrued)
        - _fen(_I.penalty_paid)
    )
    past_due = and_(_I.due_date < as_of, owed > 0)

    def overdue(outstanding: ColumnElement[int]) -> Any:
        return func.coalesce(func.sum(case((past_due, outstanding), else_=literal(0))), 0)

    principal = _fen(_I.principal_due) - _fen(_I.principal_paid)
    candidates = sa_select(_I.application_no).where(_I.status.in_(UNPAID), _I.due_date < as_of)
    return (
        sa_select(
            _I.application_no.label("application_no"),
            func.sum(principal).label("principal"),
            func.min(case((past_due, _I.due_date))).label("oldest_due"),
            overdue(principal).label("overdue_principal"),
            overdue(_fen(_I.interest_due) - _fen(_I.interest_paid)).label("overdue_interest"),
            overdue(_fen(_I.fee_due) - _fen(_I.fee_paid)).label("overdue_fee"),
            func.sum(_fen(_I.penalty_accrued) - _fen(_I.penalty_paid)).label("penalty"),
        )
        .where(
            _I.status != "cancelled", *([_I.application_no.in_(candidates)] if overdue_only else [])
        )
        .group_by(_I.application_no)
        .subquery("positions")
    )


def _latest(model: Any, name: str) -> Any:
    """application_no → the greatest ``seq`` (the latest assessment or classification)."""
    return (
        select(model.application_no, func.max(model.seq).label("seq"))
        .group_by(model.application_no)
        .subquery(name)
    )


def _with_grade_and_class(stmt: Any, pos: Any) -> Any:
    la = _latest(Assessment, "latest_assessment")
    lc = _latest(LoanClassification, "latest_classification")
    return (
        stmt.outerjoin(la, la.c.application_no == pos.c.application_no)
        .outerjoin(
            Assessment,
            and_(
                col(Assessment.application_no) == la.c.application_no,
                col(Assessment.seq) == la.c.seq,
            ),
        )
        .outerjoin(lc, lc.c.application_no == pos.c.application_no)
        .outerjoin(
            LoanClassification,
            and_(
                col(LoanClassification.application_no) == lc.c.application_no,
                col(LoanClassification.seq) == lc.c.seq,
            ),
        )
    )


def _dpd(oldest_due: date | str | None, as_of: date) -> int:
    if oldest_due is None:
        return 0
    due = date.fromisoformat(oldest_due) if isinstance(oldest_due, str) else oldest_due
    return (as_of - due).days


def _share(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole).quantize(SHARE, rounding=ROUND_HALF_UP) if whole else Decimal("0")


@dataclass
class _Acc:
    count: int = 0
    principal: Decimal = ZERO

    def add(self, principal: Decimal) -> None:
        self.count += 1
        self.principal += principal


def _groups(
    acc: dict[str, _Acc], keys: Iterable[str], labels: dict[str, str] | None = None
) -> list[Group]:
    """Groups in the order of ``keys`` (every one listed, zeros included), then any others."""
    ordered = list(keys) + sorted(k for k in acc if k not in set(keys))
    return [
        Group(
            key=k,
            label=(labels or {}).get(k),
            loan_count=acc[k].count if k in acc else 0,
            outstanding_principal=acc[k].principal if k in acc else ZERO,
        )
        for k in ordered
    ]


def portfolio_report(session: Session, as_of: date) -> PortfolioReport:
    pos = _positions(as_of)
    stmt = _with_grade_and_class(
        sa_select(
            pos.c.application_no,
            pos.c.principal,
            pos.c.oldest_due,
            pos.c.overdue_principal,
            col(Application.stage),
            col(Loan.method),
            col(Assessment.grade),
            col(LoanClassification.category),
        )
        .join(Application, col(Application.application_no) == pos.c.application_no)
        .outerjoin(Loan, col(Loan.application_no) == pos.c.application_no),
        pos,
    )
    by_stage: dict[str, _Acc] = defaultdict(_Acc)
    # Every application counts in its stage; those with installments add their principal.
    for stage, n in session.exec(
        select(Application.stage, func.count()).group_by(col(Application.stage))
    ).all():
        by_stage[stage].count = int(n)
    by_product: dict[str, _Acc] = defaultdict(_Acc)
    by_grade: dict[str, _Acc] = defaultdict(_Acc)
    by_class: dict[str, _Acc] = defaultdict(_Acc)
    buckets: dict[str, _Acc] = defaultdict(_Acc)
    par = {days: _Acc() for days in PAR_DAYS}
    totals, overdue = _Acc(), _Acc()
    for row in session.exec(stmt).all():
        _, principal_fen, oldest_due, overdue_fen, stage, method, grade, category = row
        principal = int_to_fen(int(principal_fen or 0))
        by_stage[stage].principal += principal
        if stage != Stage.SERVICING.value:
            continue
        dpd = _dpd(oldest_due, as_of)
        totals.add(principal)
        by_product[method or "unknown"].add(principal)
        by_grade[grade or UNGRADED].add(principal)
        by_class[category or UNCLASSIFIED].add(principal)
        buckets[dpd_bucket(dpd)].add(principal)
        if dpd > 0:
            overdue.count += 1
            overdue.principal += int_to_fen(int(overdue_fen))
        for days in PAR_DAYS:
            if dpd >= days:
                par[days].add(principal)
    return PortfolioReport(
        as_of=as_of,
        totals=PortfolioTotals(
            loan_count=totals.count,
            outstanding_principal=totals.principal,
            overdue_loan_count=overdue.count,
            overdue_principal=overdue.principal,
        ),
        by_stage=_groups(by_stage, [s.value for s in Stage]),
        by_product=_groups(by_product, []),
        by_grade=_groups(by_grade, [*GRADES, UNGRADED]),
        by_classification=_groups(
            by_class,
            [*(c.value for c in Category), UNCLASSIFIED],
            {c.value: c.label_zh for c in Category},
        ),
        dpd_buckets=_groups(buckets, [key for key, _, _ in DPD_BUCKETS]),
        par=[
            ParOut(
                key=f"par{days}",
                min_days_past_due=days,
                loan_count=par[days].count,
                principal_at_risk=par[days].principal,
                share=_share(par[days].principal, totals.principal),
            )
            for days in PAR_DAYS
        ],
        write_offs=_write_offs(session),
        recoveries=_recoveries(session),
        notes=NOTES,
        collections=collections_outcomes(session),
    )


def _sum(column: Any) -> Any:
    return func.coalesce(func.sum(_fen(column)), 0)


def _write_offs(session: Session) -> WriteOffTotals:
    """The write-offs recorded: principal written off as the amount, the rest separately."""
    stmt: Any = sa_select(
        func.count(),
        _sum(LoanWriteOff.principal),
        _sum(LoanWriteOff.interest),
        _sum(LoanWriteOff.penalty),
        _sum(LoanWriteOff.fees),
    )
    n, principal, interest, penalty, fees = session.exec(stmt).one()
    return WriteOffTotals(
        loan_count=int(n),
        amount=int_to_fen(int(principal)),
        interest=int_to_fen(int(interest)),
        penalty=int_to_fen(int(penalty)),
        fees=int_to_fen(int(fees)),
    )


def _recoveries(session: Session) -> AmountCount:
    """Payments received on written-off loans: how many loans paid something, and how much."""
    stmt: Any = sa_select(
        func.count(func.distinct(col(WriteOffRecovery.application_no))),
        _sum(WriteOffRecovery.amount),
    )
    n, amount = session.exec(stmt).one()
    return AmountCount(loan_count=int(n), amount=int_to_fen(int(amount)))


def collections_outcomes(session: Session) -> CollectionsOutcomes:
    """The collections log counted by outcome (one grouped query on collection_contacts):
    calls and visits by their outcome (every outcome listed, zeros included), promises made,
    kept and broken, and episodes by how they ended. Decided: the promise-kept rate counts the
    promises already checked (kept / (kept + broken)); a promise still waiting for its date is
    in ``promises_made`` only."""
    counts: dict[tuple[str, str], int] = {}
    stmt: Any = sa_select(
        col(CollectionContact.channel), col(CollectionContact.outcome), func.count()
    ).group_by(col(CollectionContact.channel), col(CollectionContact.outcome))
    for channel, outcome, n in session.exec(stmt).all():
        counts[(channel, outcome)] = int(n)

    def contact(outcome: str) -> int:
        return sum(counts.get((channel, outcome), 0) for channel in CONTACT_CHANNELS)

    kept = counts.get(("promise", PROMISE_KEPT), 0)
    broken = counts.get(("promise", PROMISE_BROKEN), 0)
    return CollectionsOutcomes(
        contacts=[OutcomeCount(key=o, count=contact(o)) for o in CONTACT_OUTCOMES],
        promises_made=contact(Outcome.PROMISE_TO_PAY.value),
        promises_kept=kept,
        promises_broken=broken,
        promise_kept_rate=_share(Decimal(kept), Decimal(kept + broken)),
        episodes=[OutcomeCount(key=e, count=counts.get(("system", e), 0)) for e in EPISODE_ENDINGS],
    )


_FIGURES = ("principal", "overdue_principal", "overdue_interest", "overdue_fee", "penalty")
SortKey = Literal["dpd", "amount"]
SortOrder = Literal["asc", "desc"]


def overdue_worklist(
    session: Session,
    as_of: date,
    *,
    sort: SortKey = "dpd",
    order: SortOrder = "desc",
    limit: int = 50,
    offset: int = 0,
    officer: str | None = None,
) -> OverduePage:
    """Loans in SERVICING with something overdue on ``as_of``, sorted by days past due or by
    the overdue amount (ties by application number), one page of them; with ``officer``, only
    the loans that officer submitted or is assigned (need to know)."""
    pos = _positions(as_of, overdue_only=True)
    amount = pos.c.overdue_principal + pos.c.overdue_interest + pos.c.overdue_fee + pos.c.penalty
    where = and_(
        pos.c.oldest_due.is_not(None),
        col(Application.stage) == Stage.SERVICING.value,
    )
    if officer is not None:
        where = and_(
            where,
            or_(
                col(Application.submitted_by) == officer,
                col(Application.assigned_officer) == officer,
            ),
        )
    base = select(pos.c.application_no).join(
        Application, col(Application.application_no) == pos.c.application_no
    )
    total = session.exec(select(func.count()).select_from(base.where(where).subquery())).one()
    # More days past due = an older due date.
    if sort == "dpd":
        key = pos.c.oldest_due.desc() if order == "asc" else pos.c.oldest_due.asc()
    else:
        key = amount.asc() if order == "asc" else amount.desc()
    stmt = _with_grade_and_class(
        select(
            pos,
            LoanClassification.category,
            Borrower.name,
            BorrowerVersion.name,
        )
        .join(Application, col(Application.application_no) == pos.c.application_no)
        .join(Borrower, col(Borrower.id) == col(Application.borrower_id))
        .outerjoin(
            BorrowerVersion,
            and_(
                col(BorrowerVersion.borrower_id) == col(Application.borrower_id),
                col(BorrowerVersion.version) == col(Application.borrower_version),
            ),
        ),
        pos,
    )
    rows = session.exec(
        stmt.where(where).order_by(key, pos.c.application_no).offset(offset).limit(limit)
    ).all()
    contacts = _last_contacts(session, [r.application_no for r in rows])
    items = []
    for r in rows:
        m = r._mapping
        fen = {k: int_to_fen(int(m[k] or 0)) for k in _FIGURES}
        oldest = m["oldest_due"]
        oldest_day = date.fromisoformat(oldest) if isinstance(oldest, str) else oldest
        contact = contacts.get(r.application_no)
        items.append(
            OverdueItem(
                application_no=r.application_no,
                borrower_name=mask_name(r[-1] or r[-2]),
                days_past_due=_dpd(oldest_day, as_of),
                oldest_overdue_due_date=oldest_day,
                overdue_principal=fen["overdue_principal"],
                overdue_interest=fen["overdue_interest"],
                overdue_fee=fen["overdue_fee"],
                penalty=fen["penalty"],
                overdue_amount=fen["overdue_principal"]
                + fen["overdue_interest"]
                + fen["overdue_fee"]
                + fen["penalty"],
                outstanding_principal=fen["principal"],
                classification=m["category"],
                last_contact_at=contact[0] if contact else None,
                last_contact_result=contact[1] if contact else None,
            )
        )
    return OverduePage(
        as_of=as_of,
        sort=sort,
        order=order,
        items=items,
        total=int(total),
        limit=limit,
        offset=offset,
    )


def _last_contacts(
    session: Session, numbers: Sequence[str]
) -> dict[str, tuple[datetime, str | None]]:
    """The latest contact with each borrower: when, and its result (reached, unreachable,
    promise_to_pay, dispute, wrong_number) — from the collections ladder's log (calls and
    visits in ``collection_contacts``) and from the overdue calls decided before the ladder
    (OVERDUE_CALL tasks), whichever is later."""
    if not numbers:
        return {}
    found: dict[str, tuple[datetime, str | None]] = {}
    for no, at, outcome in session.exec(
        select(
            CollectionContact.application_no,
            CollectionContact.occurred_at,
            CollectionContact.outcome,
        ).where(
            col(CollectionContact.application_no).in_(numbers),
            col(CollectionContact.channel).in_(CONTACT_CHANNELS),
            col(CollectionContact.outcome).in_(CONTACT_OUTCOMES),
        )
    ).all():
        if no not in found or at > found[no][0]:
            found[no] = (at, outcome)
    for no, closed_at, decision in session.exec(
        select(Task.application_no, Task.closed_at, Task.decision).where(
            col(Task.application_no).in_(numbers),
            Task.kind == TaskKind.OVERDUE_CALL.value,
            Task.status == TaskStatus.COMPLETED.value,
            col(Task.closed_at).is_not(None),
        )
    ).all():
        if closed_at is not None and (no not in found or closed_at > found[no][0]):
            found[no] = (closed_at, decision)
    return found


def snapshot_portfolio(
    engine: Engine, as_of: date, *, now: datetime | None = None
) -> PortfolioSnapshot:
    """Store the portfolio report of ``as_of`` (the lead runs it daily from a Temporal
    Schedule). Idempotent per day: the first snapshot of a day is kept and returned again."""
    with Session(engine, expire_on_commit=False) as s:
        existing = s.get(PortfolioSnapshot, as_of)
        if existing is not None:
            return existing
        report = portfolio_report(s, as_of)
    par30 = next(p.share for p in report.par if p.min_days_past_due == 30)
    row = PortfolioSnapshot(
        as_of=as_of,
        loan_count=report.totals.loan_count,
        outstanding_principal=report.totals.outstanding_principal,
        overdue_principal=report.totals.overdue_principal,
        par30=par30,
        report=report.model_dump(mode="json"),
        taken_at=now or datetime.now(UTC),
    )
    try:
        with session_scope(engine) as s:
            s.add(row)
    except IntegrityError:  # another run stored the day first: keep that one
        with Session(engine, expire_on_commit=False) as s:
            kept = s.get(PortfolioSnapshot, as_of)
            assert kept is not None
            return kept
    return row
