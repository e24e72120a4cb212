"""The collections ladder (issue 10 §1), pure: its steps, the default thresholds by days past due
(DPD), the typed outcome of a call or a visit, and the conduct rules a contact attempt must meet.

Decisions where the issue is silent (a lending operations team's reading):

- Each step fires once per overdue episode, in ladder order, on the first day its DPD is
  reached (a step whose DPD passed while the ladder was paused fires when it resumes).
- A new call or visit supersedes the earlier one still open (it is closed as cancelled): one
  person at a time talks to the borrower about the episode.
- ``unreachable`` opens another attempt of the same step at once (the daily limit bounds them);
  ``wrong_number`` opens no retry: the ladder goes on to its next step (a visit finds the
  borrower); ``reached`` ends the step; ``promise_to_pay`` pauses the ladder until the promised
  date, then the promise is checked: kept when the payments received since the promise reach
  the promised amount by the end of that day, else broken; either way the ladder resumes if the
  loan is still overdue; ``dispute`` opens a customer-service task and pauses the ladder until
  that task is resolved (nobody is chased for a debt they dispute until it is answered).
- Conduct: an attempt is the moment its outcome is recorded; it must fall inside the loan
  policy's local contact window, the loan may have at most ``collection_max_contacts_per_day``
  attempts a business day (calls and visits together), and a collector talks only with the
  borrower (an outcome naming anyone else is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar

from domain.decision_data import (
    DATE_SCHEMA,
    MONEY_SCHEMA,
    DataField,
    DataShape,
    TypedData,
    choice_schema,
    text_schema,
)


class LadderStep(StrEnum):
    SMS_NOTICE = "sms_notice"
    REMINDER_CALL = "reminder_call"  # customer service
    COLLECTION_CALL = "collection_call"  # the business officer
    FIELD_VISIT = "field_visit"  # the business officer, with a visit report
    LEGAL_REVIEW = "legal_review"  # the department manager
    WRITE_OFF_PROPOSAL = "write_off_proposal"  # risk manager proposes, manager approves


# Default DPD at which each step fires (LoanPolicy.collection_ladder).
DEFAULT_LADDER: dict[str, int] = {
    LadderStep.SMS_NOTICE.value: 1,
    LadderStep.REMINDER_CALL.value: 3,
    LadderStep.COLLECTION_CALL.value: 8,
    LadderStep.FIELD_VISIT.value: 31,
    LadderStep.LEGAL_REVIEW.value: 61,
    LadderStep.WRITE_OFF_PROPOSAL.value: 91,
}
# Steps that contact the borrower (conduct rules apply).
CONTACT_STEPS = (LadderStep.REMINDER_CALL, LadderStep.COLLECTION_CALL, LadderStep.FIELD_VISIT)


class Outcome(StrEnum):
    REACHED = "reached"
    UNREACHABLE = "unreachable"
    PROMISE_TO_PAY = "promise_to_pay"
    DISPUTE = "dispute"
    WRONG_NUMBER = "wrong_number"


CONTACT_OUTCOMES = tuple(o.value for o in Outcome)
# Outcomes where the collector spoke with someone: that someone must be the borrower.
_SPOKEN = (Outcome.REACHED, Outcome.PROMISE_TO_PAY, Outcome.DISPUTE)
BORROWER = "borrower"

# The conduct rules, as refusals name them.
RULE_CONTACT_WINDOW = "contact_window"
RULE_DAILY_LIMIT = "daily_contact_limit"
RULE_NO_THIRD_PARTY = "no_third_party"


def validate_ladder(ladder: dict[str, int]) -> None:
    """ValueError naming the first thing wrong: every step present once, DPDs increasing in
    ladder order, the first at least 1."""
    known = [s.value for s in LadderStep]
    for name in ladder:
        if name not in known:
            raise ValueError(f"collection_ladder.{name}: is not a ladder step")
    previous = 0
    for name in known:
        if name not in ladder:
            raise ValueError(f"collection_ladder.{name}: is required")
        dpd = ladder[name]
        if isinstance(dpd, bool) or not isinstance(dpd, int) or dpd < 1:
            raise ValueError(f"collection_ladder.{name}: must be a whole number of days ≥ 1")
        if dpd <= previous:
            raise ValueError(
                f"collection_ladder.{name}: must be more days past due than the step before"
            )
        previous = dpd


@dataclass(frozen=True)
class ContactOutcomeData(TypedData):
    """The typed ``data`` of a call's outcome (the decision is the outcome).

    ``spoke_with`` (reached / promise_to_pay / dispute): who the collector talked to, must be
    ``borrower``; ``promise_amount`` and ``promise_date`` (promise_to_pay): what and by when;
    ``note``: free text."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField("note", text_schema(500)),
        DataField("report", text_schema(4000), description="the visit report"),
    )
    SPOKE_WITH: ClassVar[DataField] = DataField(
        "spoke_with",
        choice_schema((BORROWER,)),
        description="who was spoken with: only ever the borrower (no third party)",
    )
    PROMISE: ClassVar[tuple[DataField, ...]] = (
        DataField("promise_amount", MONEY_SCHEMA, required=True),
        DataField("promise_date", DATE_SCHEMA, required=True),
    )

    @classmethod
    def shapes(cls, decision: str) -> tuple[DataShape, ...]:
        """The outcome's fields: who was spoken with when someone was, the promise on a
        promise_to_pay."""
        fields = cls.FIELDS
        if decision in _SPOKEN:
            fields = (cls.SPOKE_WITH, *fields)
        if decision == Outcome.PROMISE_TO_PAY:
            fields = (*fields, *cls.PROMISE)
        return (DataShape(cls.__name__, fields),)

    outcome: Outcome
    spoke_with: str | None = None
    promise_amount: Decimal | None = None
    promise_date: date | None = None
    note: str | None = None
    report: str | None = None

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> ContactOutcomeData:
        """Without the decision (TaskRule.parse_data passes it through ``parse_decision``)."""
        return cls.parse_decision(Outcome.REACHED.value, data)

    @classmethod
    def parse_decision(cls, decision: str, data: dict[str, Any] | None) -> ContactOutcomeData:
        data = data or {}
        outcome = Outcome(decision)
        spoke_with = data.get("spoke_with")
        if outcome in _SPOKEN:
            spoke_with = BORROWER if spoke_with is None else spoke_with
            if not isinstance(spoke_with, str) or spoke_with.strip().lower() != BORROWER:
                raise ValueError(
                    f"data.spoke_with: conduct rule {RULE_NO_THIRD_PARTY}: collection speaks "
                    f"only with the borrower, never a third party ({spoke_with!r})"
                )
            spoke_with = BORROWER
        elif spoke_with is not None:
            raise ValueError(f"data.spoke_with: nobody was spoken with on {outcome.value}")
        note = data.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 500):
            raise ValueError("data.note: must be text of at most 500 characters")
        amount: Decimal | None = None
        on: date | None = None
        if outcome == Outcome.PROMISE_TO_PAY:
            raw = data.get("promise_amount")
            if raw is None:
                raise ValueError("data.promise_amount: is required for promise_to_pay")
            try:
                amount = Decimal(str(raw))
            except (ArithmeticError, InvalidOperation):
                raise ValueError("data.promise_amount: must be a decimal amount") from None
            if not amount.is_finite() or amount <= 0:
                raise ValueError("data.promise_amount: must be greater than zero")
            if amount != amount.quantize(Decimal("0.01")):
                raise ValueError("data.promise_amount: must not have more than two decimal places")
            raw_date = data.get("promise_date")
            if raw_date is None:
                raise ValueError("data.promise_date: is required for promise_to_pay")
            try:
                on = date.fromisoformat(str(raw_date))
            except ValueError:
                raise ValueError("data.promise_date: must be a date YYYY-MM-DD") from None
        else:
            for name in ("promise_amount", "promise_date"):
                if name in data:
                    raise ValueError(f"data.{name}: only a promise_to_pay carries a promise")
        return cls(
            outcome=outcome,
            spoke_with=spoke_with,
            promise_amount=amount,
            promise_date=on,
            note=note,
            report=cls._report(data),
        )

    @staticmethod
    def _report(data: dict[str, Any]) -> str | None:
        report = data.get("report")
        if report is not None and (not isinstance(report, str) or len(report) > 4000):
            raise ValueError("data.report: must be text of at most 4000 characters")
        return report


@dataclass(frozen=True)
class VisitOutcomeData(ContactOutcomeData):
    """A field visit's outcome: the same as a call's, with the visit report required."""

    FIELDS: ClassVar[tuple[DataField, ...]] = (
        DataField("note", text_schema(500)),
        DataField("report", text_schema(4000, min_length=1), required=True),
    )

    @classmethod
    def parse_decision(cls, decision: str, data: dict[str, Any] | None) -> ContactOutcomeData:
        report = (data or {}).get("report")
        if not isinstance(report, str) or not report.strip():
            raise ValueError("data.report: a field visit needs its visit report")
        return super().parse_decision(decision, data)
