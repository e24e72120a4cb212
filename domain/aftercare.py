"""Aftercare (贷后, seed §3.6, issue 10 §3-§4): what a follow-up call (回访) records, which answers
raise a risk flag on the loan, what a post-loan review decides, and when a loan is due for one.

Pure rules, no I/O. Decisions the issue left open, as the department works:

- Risk flags: funds used for another purpose (``funds_diverted``), income lost
  (``income_lost``), and a borrower who says repaying is difficult (``repayment_difficulty``),
  whatever their income: customer service does not judge whether the difficulty is real, the
  risk manager's review does. A reduced income alone is recorded but raises no flag (most
  borrowers report a dip at some point; it matters when they also say they cannot keep up).
- A reached call must carry every answer; an unreachable call carries none.
- Review due dates: every loan in servicing is reviewed ``post_loan_review_days`` after the last
  review opened (or after disbursement), sooner (``post_loan_review_days_close``) when its
  principal is at least ``post_loan_review_large_amount`` or its classification is 关注 or worse;
  at once when a risk flag was raised since the last review opened.
- A review's outcome: ``no_action`` clears the open flags the reviewer was shown (judged
  harmless); ``watch`` classifies the loan 关注 (unless it is already 关注 or worse) and keeps
  the flags open; ``accelerate_collection`` keeps them open and asks servicing to collect
  sooner. ``watch`` and ``accelerate_collection`` need the reviewer's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from domain.decision_data import DataField, TypedData, choice_schema, text_schema


class FundsUse(StrEnum):
    AS_DECLARED = "as_declared"
    OTHER_PURPOSE = "other_purpose"


class IncomeChange(StrEnum):
    UNCHANGED = "unchanged"
    REDUCED = "reduced"
    LOST = "lost"


class RepaymentPlan(StrEnum):
    ON_TRACK = "on_track"
    DIFFICULTY = "difficulty"


class FlagKind(StrEnum):
    FUNDS_DIVERTED = "funds_diverted"
    INCOME_LOST = "income_lost"
    REPAYMENT_DIFFICULTY = "repayment_difficulty"


class ReviewOutcome(StrEnum):
    NO_ACTION = "no_action"
    WATCH = "watch"
    ACCELERATE_COLLECTION = "accelerate_collection"


def _choice(data: dict[str, Any], name: str, enum: type[StrEnum]) -> str:
    raw = data.get(name)
    values = [e.value for e in enum]
    if raw not in values:
        raise ValueError(f"data.{name}: is required, one of {', '.join(values)}")
    return str(raw)


def _text(data: dict[str, Any], name: str, *, required: bool, limit: int = 500) -> str:
    raw = data.get(name, "")
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise ValueError(f"data.{name}: must be text")
    text = raw.strip()
    if required and not text:
        raise ValueError(f"data.{name}: is required")
    if len(text) > limit:
        raise ValueError(f"data.{name}: at most {limit} characters")
    return text


@dataclass(frozen=True)
class FollowUpAnswers(TypedData):
    """The ``data`` of a reached follow-up call: the borrower's answers. ``funds_detail`` is
    required when the funds went to another purpose (what they were used for)."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField("funds_use", choice_schema(tuple(FundsUse)), required=True),
        DataField("income_change", choice_schema(tuple(IncomeChange)), required=True),
        DataField("repayment_plan", choice_schema(tuple(RepaymentPlan)), required=True),
        DataField(
            "funds_detail",
            text_schema(500),
            description="what the funds were used for (required with other_purpose)",
        ),
        DataField("notes", text_schema(1000)),
    )

    funds_use: FundsUse
    income_change: IncomeChange
    repayment_plan: RepaymentPlan
    funds_detail: str = ""
    notes: str = ""

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> FollowUpAnswers:
        data = data or {}
        funds = FundsUse(_choice(data, "funds_use", FundsUse))
        income = IncomeChange(_choice(data, "income_change", IncomeChange))
        plan = RepaymentPlan(_choice(data, "repayment_plan", RepaymentPlan))
        detail = _text(data, "funds_detail", required=funds == FundsUse.OTHER_PURPOSE)
        return cls(
            funds_use=funds,
            income_change=income,
            repayment_plan=plan,
            funds_detail=detail,
            notes=_text(data, "notes", required=False, limit=1000),
        )

    def flags(self) -> tuple[tuple[FlagKind, str], ...]:
        """The risk flags these answers raise, each with its detail (module docstring)."""
        out: list[tuple[FlagKind, str]] = []
        if self.funds_use == FundsUse.OTHER_PURPOSE:
            out.append((FlagKind.FUNDS_DIVERTED, f"funds used for: {self.funds_detail}"))
        if self.income_change == IncomeChange.LOST:
            out.append((FlagKind.INCOME_LOST, "the borrower reports the income is lost"))
        if self.repayment_plan == RepaymentPlan.DIFFICULTY:
            income = self.income_change.value
            out.append(
                (
                    FlagKind.REPAYMENT_DIFFICULTY,
                    f"the borrower reports difficulty repaying (income {income})",
                )
            )
        return tuple(out)


@dataclass(frozen=True)
class ReviewDecisionData(TypedData):
    """The ``data`` of a ``watch`` or ``accelerate_collection`` review outcome: the reason
    (kept with the review, and the reason of the 关注 classification)."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField("reason", text_schema(500, min_length=1), required=True),
    )

    reason: str

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> ReviewDecisionData:
        return cls(reason=_text(data or {}, "reason", required=True))


# ---- when a loan is due for review ------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRules:
    """The review intervals of the policy in force (domain.policy.LoanPolicy)."""

    interval_days: int = 180
    close_interval_days: int = 90
    large_amount: Decimal = Decimal("100000.00")


@dataclass(frozen=True)
class ReviewFacts:
    """What the selection query knows of one loan in servicing."""

    application_no: str
    principal: Decimal
    start_date: date
    # The newest classification's category (None: never classified, i.e. 正常).
    category: str | None = None
    # The business date of the last review opened, and the newest open flag raised since it
    # opened (its source: a task id), if any.
    last_review_on: date | None = None
    flag_source: str | None = None


@dataclass(frozen=True)
class DueReview:
    """One review to open: its period key (the loan opens one review per key) and why."""

    application_no: str
    period_key: str
    reason: str


def flag_review_key(source: str) -> str:
    """The review a risk flag brings forward: one per flag source (a follow-up call's task)."""
    return f"flag/{source}"


def review_due(facts: ReviewFacts, rules: ReviewRules, as_of: date) -> DueReview | None:
    """The review ``facts``' loan is due for on ``as_of``, or None (module docstring)."""
    if facts.flag_source is not None:
        return DueReview(
            facts.application_no,
            flag_review_key(facts.flag_source),
            "a risk flag was raised since the last review",
        )
    close = facts.principal >= rules.large_amount or (
        facts.category is not None and facts.category != "normal"
    )
    days = rules.close_interval_days if close else rules.interval_days
    basis = facts.last_review_on or facts.start_date
    due_on = basis + timedelta(days=days)
    if due_on > as_of:
        return None
    why = (
        "large loan"
        if facts.principal >= rules.large_amount
        else f"classified {facts.category}"
        if close
        else "periodic"
    )
    return DueReview(
        facts.application_no, f"periodic/{due_on.isoformat()}", f"{why}: every {days} days"
    )
