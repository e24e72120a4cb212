"""Aftercare on the time-skipping server with fake activities: periodic follow-up calls, answers
that raise risk flags and bring a post-loan review forward, the review's outcomes, and the daily
review sweep asking the loans due."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.calendar import business_date
from domain.identifiers import REVIEW_SIGNAL, REVIEW_SWEEP_WORKFLOW
from domain.policy import DEFAULT_POLICY, LoanPolicy
from domain.tasks import TaskKind
from models.shapes import DueReviewItem, ReviewRequest, ReviewSweepInput
from tests.workflows.fakes import Fast, fast_worker

# Calls and reviews that stay open for weeks, so the test decides them when it wants.
POLICY = replace(
    DEFAULT_POLICY,
    follow_up_call_after_days=7,
    follow_up_call_interval_days=30,
    task_abandon_days=120,
    sla_hours={
        **DEFAULT_POLICY.sla_hours,
        "follow_up_call": 24.0 * 60,
        "overdue_call": 24.0 * 60,
        "post_loan_review": 24.0 * 60,
    },
)
ANSWERS_FINE = {
    "funds_use": "as_declared",
    "income_change": "unchanged",
    "repayment_plan": "on_track",
}


def refusal_type(exc: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str | None:
    cause = exc.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def calls_of(fast: Fast, no: str) -> list[Any]:
    return sorted(
        (
            t
            for t in fast.records.tasks.values()
            if t.application_no == no and t.kind == TaskKind.FOLLOW_UP_CALL
        ),
        key=lambda t: t.created_at,
    )


async def eventually(check: Any, *, tries: int = 500) -> Any:
    for _ in range(tries):
        found = check()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("the workflow did not get there")


async def start(fast: Fast, policy: LoanPolicy = POLICY) -> tuple[str, Any]:
    no = await fast.start_servicing(policy)
    now = await fast.env.get_current_time()
    return no, business_date(now, policy.business_timezone)


async def test_follow_up_calls_repeat_at_the_policy_interval(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no, start_day = await start(fast)
        await temporal_env.sleep(timedelta(days=6))
        assert calls_of(fast, no) == []  # not before day 7
        await temporal_env.sleep(timedelta(days=2))
        first = await fast.task_of(no, TaskKind.FOLLOW_UP_CALL)
        await fast.decide(no, first, "unreachable", "cs")
        await temporal_env.sleep(timedelta(days=30))  # day 38: the second call (7 + 30)
        await eventually(lambda: len(calls_of(fast, no)) == 2)
        await temporal_env.sleep(timedelta(days=30))  # day 68: the third
        calls = await eventually(lambda: len(calls_of(fast, no)) == 3 and calls_of(fast, no))
        days = [
            (business_date(c.created_at, POLICY.business_timezone) - start_day).days for c in calls
        ]
        assert days == [7, 37, 67]
        assert [c.context for c in calls] == [{"call": 1}, {"call": 2}, {"call": 3}]
        # An unreachable call records no answers and raises nothing.
        assert fast.records.follow_ups == {}


async def test_a_single_call_when_the_interval_is_zero(temporal_env: WorkflowEnvironment) -> None:
    async with fast_worker(temporal_env) as fast:
        no, _ = await start(fast, replace(POLICY, follow_up_call_interval_days=0))
        await temporal_env.sleep(timedelta(days=60))
        assert len(calls_of(fast, no)) == 1


async def test_a_reached_call_must_carry_the_answers(temporal_env: WorkflowEnvironment) -> None:
    async with fast_worker(temporal_env) as fast:
        no, _ = await start(fast)
        await temporal_env.sleep(timedelta(days=8))
        call = await fast.task_of(no, TaskKind.FOLLOW_UP_CALL)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, call, "reached", "cs")
        assert refusal_type(exc) == "InvalidData"
        assert "data.funds_use" in str(exc.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(
                no, call, "reached", "cs", data={**ANSWERS_FINE, "funds_use": "other_purpose"}
            )
        assert "data.funds_detail" in str(exc.value.cause)
        # Answers with no risk in them: recorded, no flag, no review.
        await fast.decide(no, call, "reached", "cs", data=ANSWERS_FINE)
        answered = await eventually(lambda: fast.records.follow_ups.get(call))
        assert answered.flags == () and answered.answered_by == "cs"
        await asyncio.sleep(0.3)
        assert fast.records.reviews_opened == {}
        assert TaskKind.POST_LOAN_REVIEW not in {t.kind for t in (await fast.view(no)).open_tasks}


async def test_an_answer_raises_flags_and_opens_the_review_at_once(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no, _ = await start(fast)
        await temporal_env.sleep(timedelta(days=8))
        call = await fast.task_of(no, TaskKind.FOLLOW_UP_CALL)
        answers = {
            "funds_use": "other_purpose",
            "funds_detail": "bought a car",
            "income_change": "lost",
            "repayment_plan": "difficulty",
            "notes": "lost the job in March",
        }
        await fast.decide(no, call, "reached", "cs", data=answers)
        # The decision is answered once the flags are recorded and the review is open.
        answered = fast.records.follow_ups[call]
        assert (no, f"flag/{call}") in fast.records.reviews_opened
        review = await fast.task_of(no, TaskKind.POST_LOAN_REVIEW)
        assert answered.answers == answers
        assert [kind for kind, _ in answered.flags] == [
            "funds_diverted",
            "income_lost",
            "repayment_difficulty",
        ]
        opened = fast.records.reviews_opened[(no, f"flag/{call}")]
        assert opened.task_id == review
        assert opened.reason.startswith("risk flag raised: funds_diverted")
        context = fast.records.tasks[review].context
        assert context is not None
        assert context["review"] == f"flag/{call}"
        assert [f["kind"] for f in context["open_flags"]] == [k for k, _ in answered.flags]
        assert context["bureau"] == {"status": "no_record"}
        assert len(fast.records.bureau_calls) == 1


async def test_review_outcomes_are_recorded_with_the_reviewer(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no, _ = await start(fast)
        handle = fast.handle(no)
        outcomes = [
            ("periodic/a", "no_action", None),
            ("periodic/b", "watch", "income fell by half"),
            ("periodic/c", "accelerate_collection", "second loan elsewhere, already late"),
        ]
        for key, outcome, reason in outcomes:
            await handle.signal(REVIEW_SIGNAL, ReviewRequest(key, "periodic: every 180 days"))
            await eventually(lambda key=key: (no, key) in fast.records.reviews_opened)
            review = fast.records.reviews_opened[(no, key)].task_id
            await fast.task_of(no, TaskKind.POST_LOAN_REVIEW)
            if reason is not None:
                # watch and accelerate_collection need the reviewer's reason.
                with pytest.raises(WorkflowUpdateFailedError) as exc:
                    await fast.decide(no, review, outcome, "risk")
                assert refusal_type(exc) == "InvalidData"
                assert "data.reason" in str(exc.value.cause)
                await fast.decide(no, review, outcome, "risk", data={"reason": reason})
            else:
                await fast.decide(no, review, outcome, "risk", comment="all in order")
            decided = await eventually(lambda key=key: fast.records.reviews_decided.get((no, key)))
            assert decided.outcome == outcome
            assert decided.decided_by == "risk"
            assert decided.reason == (reason or "all in order")
        # Customer service may not decide a review.
        await handle.signal(REVIEW_SIGNAL, ReviewRequest("periodic/d", "periodic"))
        await eventually(lambda: (no, "periodic/d") in fast.records.reviews_opened)
        review = fast.records.reviews_opened[(no, "periodic/d")].task_id
        await fast.task_of(no, TaskKind.POST_LOAN_REVIEW)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, review, "no_action", "cs")
        assert refusal_type(exc) == "Forbidden"


async def test_a_review_opens_once_per_period_and_goes_on_without_the_bureau(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no, _ = await start(fast)
        fast.records.bureau_failures = 3  # every attempt the review makes
        handle = fast.handle(no)
        request = ReviewRequest("periodic/2026-06-01", "large loan: every 90 days")
        await handle.signal(REVIEW_SIGNAL, request)
        await handle.signal(REVIEW_SIGNAL, request)
        review = await fast.task_of(no, TaskKind.POST_LOAN_REVIEW)
        await asyncio.sleep(0.3)
        reviews = [
            t for t in (await fast.view(no)).open_tasks if t.kind == TaskKind.POST_LOAN_REVIEW
        ]
        assert [t.task_id for t in reviews] == [review]
        assert len(fast.records.bureau_calls) == 3
        context = fast.records.tasks[review].context
        assert context is not None
        assert context["bureau"]["status"] == "unavailable"
        assert "goes on without" in context["bureau"]["note"]
        assert fast.records.reviews_opened[(no, request.period_key)].bureau_status == "unavailable"


async def test_the_sweep_asks_each_loan_due_and_skips_those_not_running(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        first, _ = await start(fast)
        second, _ = await start(fast)
        gone = f"S{uuid.uuid4().hex[:10].upper()}"  # a loan whose workflow is not running
        fast.records.due_reviews = [
            DueReviewItem(first, "periodic/2026-05-01", "periodic: every 180 days"),
            DueReviewItem(second, f"flag/{uuid.uuid4()}", "a risk flag was raised"),
            DueReviewItem(gone, "periodic/2026-05-01", "periodic: every 180 days"),
        ]
        asked = await fast.client.execute_workflow(
            REVIEW_SWEEP_WORKFLOW,
            ReviewSweepInput(page_size=2),
            id=f"sweep-{uuid.uuid4()}",
            task_queue=fast.task_queue,
            result_type=int,
        )
        assert asked == 2
        # Two pages: the second resumes after the first page's last loan.
        assert [q.after for q in fast.records.due_queries] == [
            None,
            sorted([first, second, gone])[1],
        ]
        today = business_date(await temporal_env.get_current_time(), "Asia/Shanghai")
        assert {q.as_of for q in fast.records.due_queries} == {today}
        for item in fast.records.due_reviews[:2]:
            await fast.task_of(item.application_no, TaskKind.POST_LOAN_REVIEW)
            key = (item.application_no, item.period_key)
            await eventually(lambda key=key: key in fast.records.reviews_opened)


async def test_calls_and_reviews_are_acted_on_after_continue_as_new(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no, _ = await start(fast, replace(POLICY, continue_as_new_after_events=100))
        handle = fast.handle(no)
        first_run = (await handle.describe()).run_id
        await temporal_env.sleep(timedelta(days=8))
        call = await fast.task_of(no, TaskKind.FOLLOW_UP_CALL)
        await handle.signal(REVIEW_SIGNAL, ReviewRequest("periodic/p1", "periodic"))
        review = await fast.task_of(no, TaskKind.POST_LOAN_REVIEW)
        await temporal_env.sleep(timedelta(days=40))  # overdue refreshes: the history grows
        assert (await handle.describe()).run_id != first_run
        # The same period key in the new run opens nothing.
        await handle.signal(REVIEW_SIGNAL, ReviewRequest("periodic/p1", "periodic"))
        answers = {**ANSWERS_FINE, "repayment_plan": "difficulty"}
        await fast.decide(no, call, "reached", "cs", data=answers)
        await fast.decide(no, review, "accelerate_collection", "risk", data={"reason": "late"})
        flagged = await eventually(lambda: fast.records.follow_ups.get(call))
        assert [kind for kind, _ in flagged.flags] == ["repayment_difficulty"]
        decided = await eventually(lambda: fast.records.reviews_decided.get((no, "periodic/p1")))
        assert decided.outcome == "accelerate_collection"
        await eventually(lambda: (no, f"flag/{call}") in fast.records.reviews_opened)
        keys = sorted(k for n, k in fast.records.reviews_opened if n == no)
        assert keys == [f"flag/{call}", "periodic/p1"]


async def test_a_review_nobody_decides_is_recorded_as_expired(
    temporal_env: WorkflowEnvironment,
) -> None:
    policy = replace(
        POLICY,
        task_abandon_days=5,
        sla_hours={**POLICY.sla_hours, "post_loan_review": 24.0},
    )
    async with fast_worker(temporal_env) as fast:
        no, _ = await start(fast, policy)
        await fast.handle(no).signal(REVIEW_SIGNAL, ReviewRequest("periodic/e", "periodic"))
        review = await fast.task_of(no, TaskKind.POST_LOAN_REVIEW)
        await temporal_env.sleep(timedelta(days=6))
        decided = await eventually(lambda: fast.records.reviews_decided.get((no, "periodic/e")))
        assert (decided.outcome, decided.decided_by) == ("expired", None)
        assert fast.records.closed[review].status.value == "expired"
        # It was escalated before it expired (to the manager after the last level).
        assert any(t == review for t, _ in fast.records.escalations)
