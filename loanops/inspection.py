"""The auditor's inspection report (seed §8; issue 11 §8) over a period of business days, read
from the audit trail (and the assessments, for what the scorecard recommended).

Categories, each a list of rows (one audit entry each) and a count:

- ``four_eyes_violations``: decisions refused because the decider made the step the decision
  checks (MakerChecker) or may not take it (Forbidden: another role's task, refused by the API or
  by the workflow), recorded by the API (``four_eyes.refused``), including the funding pool's
  requester authorizing their own movement.
- ``sla_breaches``: every task escalation level passed undecided (``<kind>.escalated``, or
  ``<kind>.handed_over`` at the last level) and every task expired undecided (``<kind>.expired``).
  A task escalated twice is two breaches: each level is a deadline missed.
- ``pii_reveals``: ``pii.revealed`` entries, also counted per user (``pii_reveals_by_user``).
  Nothing writes that action yet (the PII-at-rest work adds the reveal): zero until it does.
- ``overrides``: a person overruling the automatic outcome: a manual five-category
  classification (``loan.classification_overridden``); a risk review decided against the
  scorecard's recommendation (approve on ``decline``, reject on ``approve``; ``review`` asks for
  judgement and is no override); an intake or risk review approved although the latest automatic
  assessment failed a check; going on without the credit bureau (``bureau_unavailable``
  ``proceed_without``). One row per decision, with every reason.
- ``failed_logins``: wrong username or password (``auth.login_failed``), also per username.
- ``disabled_user_attempts``: a disabled account's login or use of an earlier token.

The period: from the start of business day ``from`` to the end of business day ``to``, in the
business time zone, by the time each event occurred.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from domain.audit_actions import (
    CLASSIFICATION_OVERRIDDEN,
    DISABLED_USER_ATTEMPT,
    FOUR_EYES_REFUSED,
    LOGIN_FAILED,
    PII_REVEALED,
)
from domain.calendar import end_of_business_day, local_instant
from domain.intake import Outcome
from domain.scorecard import Recommendation
from domain.tasks import TaskKind, TaskStatus
from models.tables import Assessment, AuditEvent

CATEGORIES = (
    "four_eyes_violations",
    "sla_breaches",
    "pii_reveals",
    "overrides",
    "failed_logins",
    "disabled_user_attempts",
)

SLA_ACTIONS = frozenset(
    f"{kind.value}.{what}"
    for kind in TaskKind
    for what in ("escalated", "handed_over", TaskStatus.EXPIRED.value)
)
_REVIEW_APPROVALS = {
    f"{TaskKind.INTAKE_REVIEW.value}.approve",
    f"{TaskKind.RISK_REVIEW.value}.approve",
}
_RISK_DECISIONS = {f"{TaskKind.RISK_REVIEW.value}.approve", f"{TaskKind.RISK_REVIEW.value}.reject"}
_BUREAU_SKIPPED = f"{TaskKind.BUREAU_UNAVAILABLE.value}.proceed_without"
_AGAINST = {"approve": Recommendation.DECLINE.value, "reject": Recommendation.APPROVE.value}


class InspectionRow(BaseModel):
    category: str
    occurred_at: datetime
    actor: str
    action: str
    application_no: str | None
    seq: int
    summary: str
    detail: dict[str, Any]


class InspectionReport(BaseModel):
    period_from: date
    period_to: date
    counts: dict[str, int]
    pii_reveals_by_user: dict[str, int]
    failed_logins_by_user: dict[str, int]
    rows: list[InspectionRow]

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(
            ["category", "occurred_at", "actor", "action", "application_no", "seq", "summary"]
        )
        for r in self.rows:
            w.writerow(
                [
                    r.category,
                    r.occurred_at.isoformat(),
                    r.actor,
                    r.action,
                    r.application_no or "",
                    r.seq,
                    r.summary,
                ]
            )
        return out.getvalue()


def _latest_assessment(session: Session, application_no: str | None, at: datetime) -> Any:
    if application_no is None:
        return None
    return session.exec(
        select(Assessment)
        .where(Assessment.application_no == application_no, Assessment.created_at <= at)
        .order_by(col(Assessment.seq).desc())
        .limit(1)
    ).first()


def _override_reasons(session: Session, e: AuditEvent) -> list[str]:
    if e.action == CLASSIFICATION_OVERRIDDEN:
        d = e.detail
        return [f"classification set to {d.get('category')} (was {d.get('previous')})"]
    if e.action == _BUREAU_SKIPPED:
        return ["went on without the credit bureau's report"]
    reasons: list[str] = []
    if e.action in _RISK_DECISIONS | _REVIEW_APPROVALS:
        assessment = _latest_assessment(session, e.application_no, e.occurred_at)
        if assessment is None:
            return []
        decision = e.action.rsplit(".", 1)[1]
        if e.action in _RISK_DECISIONS and assessment.recommendation == _AGAINST.get(decision):
            reasons.append(f"{decision} against the scorecard's {assessment.recommendation}")
        if e.action in _REVIEW_APPROVALS:
            failed = [c["code"] for c in assessment.checks if c.get("outcome") == Outcome.FAIL]
            if failed:
                reasons.append(f"approved with failed checks: {', '.join(failed)}")
    return reasons


def inspection_report(
    session: Session, period_from: date, period_to: date, tz: str
) -> InspectionReport:
    """The report over [start of ``period_from``, end of ``period_to``) in business time."""
    start = local_instant(period_from, time(0, 0), tz)
    end = end_of_business_day(period_to, tz)
    override_actions = {CLASSIFICATION_OVERRIDDEN, _BUREAU_SKIPPED} | _RISK_DECISIONS
    override_actions |= _REVIEW_APPROVALS
    wanted = (
        {FOUR_EYES_REFUSED, PII_REVEALED, LOGIN_FAILED, DISABLED_USER_ATTEMPT}
        | SLA_ACTIONS
        | override_actions
    )
    events = session.exec(
        select(AuditEvent)
        .where(
            col(AuditEvent.action).in_(sorted(wanted)),
            AuditEvent.occurred_at >= start,
            AuditEvent.occurred_at < end,
        )
        .order_by(col(AuditEvent.occurred_at), col(AuditEvent.seq))
    ).all()
    rows: list[InspectionRow] = []

    def add(category: str, e: AuditEvent, summary: str) -> None:
        rows.append(
            InspectionRow(
                category=category,
                occurred_at=e.occurred_at,
                actor=e.actor,
                action=e.action,
                application_no=e.application_no,
                seq=e.seq,
                summary=summary,
                detail=e.detail,
            )
        )

    for e in events:
        d = e.detail
        if e.action == FOUR_EYES_REFUSED:
            add("four_eyes_violations", e, f"{d.get('refusal')}: {d.get('reason')}")
        elif e.action in SLA_ACTIONS:
            what = e.action.rsplit(".", 1)[1]
            level = f" (level {d['level']})" if "level" in d else ""
            add("sla_breaches", e, f"{e.action.rsplit('.', 1)[0]} task {what}{level}")
        elif e.action == PII_REVEALED:
            add("pii_reveals", e, json.dumps(d, ensure_ascii=False, sort_keys=True))
        elif e.action == LOGIN_FAILED:
            add("failed_logins", e, str(d.get("reason", "")))
        elif e.action == DISABLED_USER_ATTEMPT:
            add("disabled_user_attempts", e, f"via {d.get('via', '')}")
        else:
            reasons = _override_reasons(session, e)
            if reasons:
                add("overrides", e, "; ".join(reasons))

    counts = Counter(r.category for r in rows)
    return InspectionReport(
        period_from=period_from,
        period_to=period_to,
        counts={c: counts.get(c, 0) for c in CATEGORIES},
        pii_reveals_by_user=dict(
            sorted(Counter(r.actor for r in rows if r.category == "pii_reveals").items())
        ),
        failed_logins_by_user=dict(
            sorted(Counter(r.actor for r in rows if r.category == "failed_logins").items())
        ),
        rows=rows,
    )
