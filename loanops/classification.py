"""Classifying loans on the books (domain.classification) and keeping the history in
``loan_classifications``: the daily ``reclassify_all`` (the lead runs it from a Temporal
Schedule), ``reclassify`` for one loan, and the risk manager's ``override``.

The days past due come from the ``installments`` rows (as the servicing workflow keeps them);
the events from the audit trail (``LoanEvent.audit_action``) and the stage WRITTEN_OFF. A row is
added only when the category changes (or an override is made or lapses), so running either
function twice for a day records nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.balances import InstallmentBalance
from domain.calendar import end_of_business_day
from domain.classification import (
    Category,
    Classification,
    ClassificationPolicy,
    LoanEvent,
    Source,
    check_override,
    classify,
    days_past_due,
    override_holds,
)
from domain.lifecycle import Stage
from domain.policy import DEFAULT_POLICY
from loanops.db import session_scope
from loanops.policy import loan_policy_version_in
from models.audit import append_audit
from models.tables import Application, AuditEvent, Installment, LoanClassification

# Loans on the books: the ones the daily run classifies and an override may touch.
CLASSIFIED_STAGES = (Stage.SERVICING, Stage.WRITTEN_OFF)
SYSTEM = "system"
T = TypeVar("T")


class NotClassifiable(Exception):
    """The application is not a loan on the books (not disbursed yet, or closed)."""


def history(session: Session, application_no: str) -> list[LoanClassification]:
    """Every classification of the loan, oldest first."""
    return list(
        session.exec(
            select(LoanClassification)
            .where(LoanClassification.application_no == application_no)
            .order_by(col(LoanClassification.seq))
        )
    )


def latest(session: Session, application_no: str) -> LoanClassification | None:
    return session.exec(
        select(LoanClassification)
        .where(LoanClassification.application_no == application_no)
        .order_by(col(LoanClassification.seq).desc())
        .limit(1)
    ).first()


def _balances(session: Session, application_no: str) -> list[InstallmentBalance]:
    rows = session.exec(
        select(Installment).where(
            Installment.application_no == application_no, Installment.status != "cancelled"
        )
    ).all()
    return [r.balance() for r in rows]


def loan_events(session: Session, app: Application, as_of: date, tz: str) -> list[LoanEvent]:
    """The events recorded for the loan up to the end of ``as_of`` (business day)."""
    by_action = {e.audit_action: e for e in LoanEvent}
    actions = session.exec(
        select(AuditEvent.action).where(
            AuditEvent.application_no == app.application_no,
            col(AuditEvent.action).in_(list(by_action)),
            AuditEvent.occurred_at < end_of_business_day(as_of, tz),
        )
    ).all()
    events = {by_action[a] for a in actions}
    if app.stage == Stage.WRITTEN_OFF.value:
        events.add(LoanEvent.WRITTEN_OFF)
    return sorted(events, key=list(LoanEvent).index)


def rules_classification(
    session: Session,
    application_no: str,
    as_of: date,
    *,
    policy: ClassificationPolicy | None = None,
    tz: str = DEFAULT_POLICY.business_timezone,
) -> tuple[Application, Classification]:
    """What the rules give the loan on ``as_of``, by the classification lines of the loan's own
    policy version unless ``policy`` names others. LookupError for an unknown application,
    NotClassifiable for one that is not a loan on the books."""
    app = session.exec(
        select(Application).where(Application.application_no == application_no)
    ).first()
    if app is None:
        raise LookupError(f"application {application_no} does not exist")
    if app.stage not in {s.value for s in CLASSIFIED_STAGES}:
        raise NotClassifiable(
            f"only a loan in {' or '.join(CLASSIFIED_STAGES)} is classified, not {app.stage}"
        )
    dpd = days_past_due(_balances(session, application_no), as_of)
    rules = policy if policy is not None else loan_classification_policy(session, app)
    return app, classify(dpd, loan_events(session, app, as_of, tz), rules)


def loan_classification_policy(session: Session, app: Application) -> ClassificationPolicy:
    """The classification lines of the policy version the loan started with (the defaults for
    a row written before applications recorded their version)."""
    if app.policy_version is None:
        return DEFAULT_POLICY.classification
    return loan_policy_version_in(session, app.policy_version).classification


def _record(
    session: Session,
    *,
    application_no: str,
    previous: LoanClassification | None,
    category: Category,
    reason: str,
    source: Source,
    dpd: int,
    as_of: date,
    by: str,
    now: datetime,
) -> LoanClassification:
    row = LoanClassification(
        application_no=application_no,
        seq=(previous.seq if previous else 0) + 1,
        category=category.value,
        reason=reason[:500],
        source=source.value,
        days_past_due=dpd,
        as_of=as_of,
        recorded_by=by,
        recorded_at=now,
    )
    session.add(row)
    append_audit(
        session,
        key=f"{application_no}/classification/{row.seq}",
        application_no=application_no,
        actor=by,
        action="loan.classification_overridden" if source == Source.MANUAL else "loan.classified",
        occurred_at=now,
        detail={
            "category": category.value,
            "label": category.label_zh,
            "previous": previous.category if previous else None,
            "reason": row.reason,
            "days_past_due": dpd,
            "as_of": as_of.isoformat(),
        },
    )
    return row


def _decide(
    session: Session,
    application_no: str,
    as_of: date,
    policy: ClassificationPolicy | None,
    tz: str,
    now: datetime,
) -> tuple[LoanClassification, bool]:
    """The loan's classification after applying the rules, and whether a row was added."""
    _, rules = rules_classification(session, application_no, as_of, policy=policy, tz=tz)
    last = latest(session, application_no)
    reason = rules.reason
    if last is not None:
        if last.source == Source.MANUAL and override_holds(Category(last.category), rules):
            return last, False
        if last.source == Source.AUTO and last.category == rules.category:
            return last, False
        if last.source == Source.MANUAL:
            reason = f"{reason} (worse than the manual {last.category}, which lapses)"
    row = _record(
        session,
        application_no=application_no,
        previous=last,
        category=rules.category,
        reason=reason,
        source=Source.AUTO,
        dpd=rules.days_past_due,
        as_of=as_of,
        by=SYSTEM,
        now=now,
    )
    return row, True


def _with_retry(engine: Engine, fn: Callable[[Session], T]) -> T:
    """Run ``fn(session)`` in a transaction; a concurrent writer taking the same ``seq`` makes
    it run again on the new history."""
    for attempt in range(3):
        try:
            with session_scope(engine) as s:
                result = fn(s)
            return result
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def reclassify(
    engine: Engine,
    application_no: str,
    as_of: date,
    *,
    policy: ClassificationPolicy | None = None,
    tz: str = DEFAULT_POLICY.business_timezone,
    now: datetime | None = None,
) -> LoanClassification:
    """Apply the rules to one loan on ``as_of``; records a row only when the category changes
    (or a manual override lapses). Returns the loan's classification after the run."""
    at = now or datetime.now(UTC)
    return _with_retry(engine, lambda s: _decide(s, application_no, as_of, policy, tz, at))[0]


def reclassify_all(
    engine: Engine,
    as_of: date,
    *,
    policy: ClassificationPolicy | None = None,
    tz: str = DEFAULT_POLICY.business_timezone,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[LoanClassification]:
    """``reclassify`` every loan on the books; returns the rows recorded by this run.
    ``progress`` is called after each loan (the daily job heartbeats with it)."""
    at = now or datetime.now(UTC)
    with Session(engine) as s:
        numbers: Sequence[str] = s.exec(
            select(Application.application_no)
            .where(col(Application.stage).in_([st.value for st in CLASSIFIED_STAGES]))
            .order_by(col(Application.application_no))
        ).all()
    changed = []
    for no in numbers:
        row, added = _with_retry(
            engine, partial(_decide, application_no=no, as_of=as_of, policy=policy, tz=tz, now=at)
        )
        if added:
            changed.append(row)
        if progress is not None:
            progress(no)
    return changed


def override(
    engine: Engine,
    application_no: str,
    *,
    category: Category,
    reason: str,
    by: str,
    as_of: date,
    policy: ClassificationPolicy | None = None,
    tz: str = DEFAULT_POLICY.business_timezone,
    now: datetime | None = None,
) -> LoanClassification:
    """The risk manager's classification of one loan, with the reason (audited). ValueError
    naming ``category`` when it is better than the rules allow (``check_override``) or
    ``reason`` when it is empty; LookupError / NotClassifiable as ``rules_classification``."""
    text = reason.strip()
    if not text:
        raise ValueError("reason: must not be empty")
    at = now or datetime.now(UTC)

    def write(s: Session) -> LoanClassification:
        _, rules = rules_classification(s, application_no, as_of, policy=policy, tz=tz)
        check_override(category, rules)
        return _record(
            s,
            application_no=application_no,
            previous=latest(s, application_no),
            category=category,
            reason=text,
            source=Source.MANUAL,
            dpd=rules.days_past_due,
            as_of=as_of,
            by=by,
            now=at,
        )

    return _with_retry(engine, write)
