"""Aftercare activities (loanops.aftercare): a follow-up call's answers and flags, the post-loan
review's context, its record and outcome, and the daily sweep's selection. Each is idempotent by
its business key (the call's task, the review's period key)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity

from activities.records import append_audit
from domain.aftercare import ReviewOutcome
from domain.classification import Category
from domain.policy import DEFAULT_POLICY
from loanops import classification
from loanops.aftercare import (
    clear_flags,
    due_reviews,
    record_follow_up,
    record_review_opened,
    review_context,
    rules_of,
)
from loanops.db import session_scope
from loanops.policy import loan_policy_in_force
from models.shapes import (
    DueReviewsInput,
    DueReviewsPage,
    FollowUpAnsweredInput,
    ReviewContextInput,
    ReviewDecidedInput,
    ReviewOpenedInput,
)
from models.tables import PostLoanReview


class AftercareActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def record_follow_up(self, inp: FollowUpAnsweredInput) -> int:
        """Audit a reached call's answers and raise its flags; returns how many were new."""
        with session_scope(self.engine) as s:
            return len(record_follow_up(s, inp))

    @activity.defn
    def review_context(self, inp: ReviewContextInput) -> dict[str, Any]:
        with Session(self.engine) as s:
            return review_context(s, inp.application_no, inp.business_date)

    @activity.defn
    def record_review_opened(self, inp: ReviewOpenedInput) -> None:
        with session_scope(self.engine) as s:
            record_review_opened(
                s,
                application_no=inp.application_no,
                period_key=inp.period_key,
                reason=inp.reason,
                task_id=inp.task_id,
                at=inp.at,
                on=inp.business_date,
                bureau_status=inp.bureau_status,
                context=inp.context,
            )

    @activity.defn
    def record_review_decided(self, inp: ReviewDecidedInput) -> str:
        """Record the outcome and do what it says (domain.aftercare); returns what it did. A
        retry finds the outcome recorded and does nothing again."""
        with Session(self.engine) as s:
            row = self._review(s, inp)
            if row is not None and row.outcome is not None:
                return row.effect or ""
        effect = ""
        if inp.outcome == ReviewOutcome.WATCH.value:
            effect = self._watch(inp)
        with session_scope(self.engine) as s:
            row = self._review(s, inp)
            if inp.outcome == ReviewOutcome.NO_ACTION.value:
                cleared = clear_flags(
                    s,
                    inp.application_no,
                    by=inp.decided_by or "system",
                    at=inp.at,
                    review=inp.period_key,
                )
                effect = f"{len(cleared)} risk flag(s) cleared"
            elif inp.outcome == ReviewOutcome.ACCELERATE_COLLECTION.value:
                effect = "collection accelerated"
                append_audit(
                    s,
                    key=f"{inp.application_no}/review/{inp.period_key}/accelerate",
                    application_no=inp.application_no,
                    actor=inp.decided_by or "system",
                    action="loan.collection_accelerated",
                    occurred_at=inp.at,
                    detail={"review": inp.period_key, "reason": inp.reason},
                )
            elif inp.outcome == "expired":
                effect = "nobody decided the review"
            if row is not None:
                row.outcome = inp.outcome
                row.decided_by = inp.decided_by
                row.decided_at = inp.at
                row.outcome_reason = (inp.reason or "")[:500] or None
                row.effect = effect[:500]
                s.add(row)
            append_audit(
                s,
                key=f"{inp.application_no}/review/{inp.period_key}/decided",
                application_no=inp.application_no,
                actor=inp.decided_by or "system",
                action="post_loan_review.decided",
                occurred_at=inp.at,
                detail={
                    "period_key": inp.period_key,
                    "outcome": inp.outcome,
                    "reason": inp.reason,
                    "effect": effect,
                },
            )
        return effect

    def _watch(self, inp: ReviewDecidedInput) -> str:
        """Classify the loan 关注 with the reviewer's reason, unless it already is 关注 or worse."""
        with Session(self.engine) as s:
            last = classification.latest(s, inp.application_no)
        if last is not None and Category(last.category).rank >= Category.SPECIAL_MENTION.rank:
            return f"classification already {last.category}: unchanged"
        try:
            classification.override(
                self.engine,
                inp.application_no,
                category=Category.SPECIAL_MENTION,
                reason=f"post-loan review {inp.period_key}: {inp.reason or 'watch'}",
                by=inp.decided_by or "system",
                as_of=inp.business_date,
                tz=inp.business_timezone,
                now=inp.at,
            )
        except (classification.NotClassifiable, ValueError, LookupError) as exc:
            return f"classification not changed: {exc}"
        return f"classified {Category.SPECIAL_MENTION.value} ({Category.SPECIAL_MENTION.label_zh})"

    @staticmethod
    def _review(s: Session, inp: ReviewDecidedInput) -> PostLoanReview | None:
        return s.exec(
            select(PostLoanReview).where(
                PostLoanReview.application_no == inp.application_no,
                PostLoanReview.period_key == inp.period_key,
            )
        ).first()

    @activity.defn
    def select_due_reviews(self, inp: DueReviewsInput) -> DueReviewsPage:
        """One page of the loans due for review on ``inp.as_of``, under the review intervals
        of the loan policy in force that day (the defaults before any is on record)."""
        try:
            policy = loan_policy_in_force(self.engine, inp.as_of)
        except LookupError:
            policy = DEFAULT_POLICY
        with Session(self.engine) as s:
            return due_reviews(s, inp.as_of, rules_of(policy), after=inp.after, limit=inp.limit)
