"""Origination on the time-skipping server with fake activities: business refusals become tasks,
a task nobody decides ends with bounded history, validators refuse before anything is written."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.calendar import add_business_days, business_date
from domain.identifiers import SIGN_UPDATE, WITHDRAW_UPDATE
from domain.lifecycle import Stage
from domain.lpr import LprRate
from domain.policy import DEFAULT_POLICY
from domain.tasks import TaskKind
from models.shapes import DecisionResult, SignRequest, WithdrawRequest
from tests.workflows.fakes import ROLES_OF, TERMS, fast_worker


def refusal_type(exc: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str | None:
    cause = exc.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def test_a_pre_check_refusal_becomes_a_task_with_its_reasons(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.refusals.append(("payee_is_contract_account",))
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.DISBURSEMENT)
        result = await fast.authorize_payout(no)
        assert result.stage == Stage.DISBURSEMENT  # not paid, not failed: waiting for a person

        refused = await fast.task_of(no, TaskKind.DISBURSEMENT_REFUSED)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == refused)
        assert task.context is not None
        assert task.context["refused"] == "the disbursement pre-check failed"
        (reason,) = task.context["reasons"]
        assert "payee_is_contract_account" in reason and "未通过" in reason
        assert fast.records.disbursed == {}
        assert fast.records.bank_sends == []  # the bank was never asked
        # The intake reviewer may not retry it (the payout's four-eyes rule holds).
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, refused, "retry", "ops")
        assert refusal_type(exc) == "MakerChecker"
        result = await fast.decide(no, refused, "retry", "ops2")
        assert result.stage == Stage.DISBURSEMENT  # recorded: the payout goes on after it
        await fast.reaches(no, Stage.SERVICING)
        assert len(fast.records.disbursed) == 1
        assert (await fast.handle(no).describe()).status is not None


async def test_a_refused_payout_can_be_rejected_as_a_recorded_ending(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.refusals.append(("contract_signed",))
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.DISBURSEMENT)
        await fast.authorize_payout(no)
        refused = await fast.task_of(no, TaskKind.DISBURSEMENT_REFUSED)
        result = await fast.decide(no, refused, "reject", "ops2", comment="account closed")
        assert result.stage == Stage.REJECTED
        assert await fast.handle(no).result() == "REJECTED"  # completed, not failed
        assert fast.records.stage_names(no)[-1] == "REJECTED"


async def test_a_task_left_for_a_year_ends_and_history_stays_bounded(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        task_id = await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        await temporal_env.sleep(timedelta(days=DEFAULT_POLICY.task_abandon_days + 1))
        assert await fast.handle(no).result() == "EXPIRED"
        await temporal_env.sleep(timedelta(days=334))  # the rest of the year: nothing more
        history = await fast.handle(no).fetch_history()
        assert len(history.events) < 150
        levels = sorted(lvl for (tid, lvl) in fast.records.escalations if tid == task_id)
        # Three escalations, then the department manager once; then the abandon deadline.
        assert levels == [1, 2, 3, 4]
        handed = fast.records.escalations[(task_id, 4)]
        assert handed.handed_to is not None and handed.handed_to.value == "department_manager"
        assert fast.records.closed[task_id].status.value == "expired"


async def test_the_manager_decides_a_handed_over_task_and_the_officer_no_longer_can(
    temporal_env: WorkflowEnvironment,
) -> None:
    policy = replace(DEFAULT_POLICY, max_escalations=1)
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination(policy)
        task_id = await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        await temporal_env.sleep(timedelta(hours=17))  # two SLAs: escalated, then handed over
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, task_id, "approve", "ops")
        assert refusal_type(exc) == "Forbidden"
        assert (await fast.decide(no, task_id, "approve", "manager")).stage == Stage.RISK_REVIEW


async def test_withdraw_checks_the_role_before_anything_is_written(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        handle = fast.handle(no)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await handle.execute_update(
                WITHDRAW_UPDATE,
                WithdrawRequest(user="risk", roles=ROLES_OF["risk"]),
                result_type=DecisionResult,
            )
        assert refusal_type(exc) == "Forbidden"
        assert await fast.stage(no) == Stage.INTAKE_REVIEW
        result = await handle.execute_update(
            WITHDRAW_UPDATE,
            WithdrawRequest(user="bo", roles=ROLES_OF["bo"], reason="found cheaper"),
            result_type=DecisionResult,
        )
        assert result.stage == Stage.WITHDRAWN
        assert await handle.result() == "WITHDRAWN"
        assert fast.records.stage_names(no)[-1] == "WITHDRAWN"


async def test_the_offer_is_priced_with_the_lpr_sent_with_the_decision(
    temporal_env: WorkflowEnvironment,
) -> None:
    """The API reads the LPR in force on the decision day and sends it with the decision; the
    workflow prices the offer with it (not with one read when the task opened)."""
    announced = LprRate(date(2026, 11, 20), Decimal("0.0250"), None, "test announcement")
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.PRODUCT_MATCHING)
        task_id = await fast.task_of(no, TaskKind.PRODUCT_MATCHING)
        await fast.decide(no, task_id, "approve", "pm", data=TERMS, lpr=announced)
        await fast.task_of(no, TaskKind.OFFER_CONFIRMATION)  # the offer is recorded, then made
        offer = (await fast.view(no)).offer
        assert offer is not None
        assert offer.lpr == Decimal("0.0250")
        assert offer.rate_cap == Decimal("0.1000")  # 4 × 2.50 %, below the 24 % line

        # Terms above that ceiling are refused before anything is written.
        other = await fast.start_origination()
        await fast.drive_to(other, Stage.PRODUCT_MATCHING)
        task_id = await fast.task_of(other, TaskKind.PRODUCT_MATCHING)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(
                other, task_id, "approve", "pm", data=TERMS | {"annual_rate": "0.11"}, lpr=announced
            )
        assert refusal_type(exc) == "InvalidData"
        assert await fast.stage(other) == Stage.PRODUCT_MATCHING


async def test_only_the_borrower_signs(temporal_env: WorkflowEnvironment) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.CONTRACT_SIGNING)
        contract = (await fast.view(no)).contract
        assert contract is not None
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.handle(no).execute_update(
                SIGN_UPDATE,
                SignRequest(contract.document_id, contract.sha256, ROLES_OF["bo"]),
                result_type=DecisionResult,
            )
        assert refusal_type(exc) == "Forbidden"
        assert await fast.stage(no) == Stage.CONTRACT_SIGNING


async def test_each_intake_round_is_assessed_and_the_task_shows_it(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        intake = await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == intake)
        assert task.context == {
            "assessment": 1,
            "grade": "B",
            "score": 660,
            "recommendation": "approve",
            "knock_outs": [],
            "attention": ["documents"],
            "bureau": "no_record",
        }
        # Returned for supplement: the next round is assessed again before the review.
        await fast.decide(no, intake, "return", "ops")
        supplement = await fast.task_of(no, TaskKind.SUPPLEMENT_DOCUMENTS)
        await fast.decide(no, supplement, "submit", "bo")
        await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        assert sorted(seq for (n, seq) in fast.records.assessments if n == no) == [1, 2]
        # The risk manager's task carries the latest assessment too.
        await fast.drive_to(no, Stage.RISK_REVIEW)  # approves the second intake round
        risk = await fast.task_of(no, TaskKind.RISK_REVIEW)
        shown = next(t for t in (await fast.view(no)).open_tasks if t.task_id == risk)
        assert shown.context is not None and shown.context["assessment"] == 2


async def test_a_bureau_that_stays_down_asks_the_specialist(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.bureau_failures = 4  # every attempt of the first call
        no = await fast.start_origination()
        down = await fast.task_of(no, TaskKind.BUREAU_UNAVAILABLE)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == down)
        assert task.context == {"reason": "the credit bureau did not answer after 4 attempts"}
        assert len(fast.records.bureau_calls) == 4
        # Retry: the bureau answers now; the intake review opens with its assessment.
        await fast.decide(no, down, "retry", "ops")
        await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        assert len(fast.records.bureau_calls) == 5
        assert fast.records.assessments[(no, 1)].bureau_status == "no_record"


async def test_the_specialist_can_go_on_without_the_bureau(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.bureau_failures = 4
        no = await fast.start_origination()
        down = await fast.task_of(no, TaskKind.BUREAU_UNAVAILABLE)
        await fast.decide(no, down, "proceed_without", "ops")
        await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        inp = fast.records.assessments[(no, 1)]
        assert inp.bureau_status == "unavailable" and inp.bureau is None
        assert await fast.stage(no) == Stage.INTAKE_REVIEW  # nothing failed


async def test_above_the_risk_managers_authority_the_manager_approves_too(
    temporal_env: WorkflowEnvironment,
) -> None:
    policy = replace(DEFAULT_POLICY, risk_approval_limit=Decimal("10000.00"))
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination(policy)  # requests 20,000
        await fast.drive_to(no, Stage.RISK_REVIEW)
        risk = await fast.task_of(no, TaskKind.RISK_REVIEW)
        result = await fast.decide(no, risk, "approve", "risk")
        assert result.stage == Stage.RISK_REVIEW  # not yet: the manager must approve too
        second = await fast.task_of(no, TaskKind.RISK_APPROVAL)
        shown = next(t for t in (await fast.view(no)).open_tasks if t.task_id == second)
        assert shown.context is not None
        assert shown.context["beyond_authority"] == ["amount 20000.00 above 10000.00"]
        # The risk report of that round was prepared with the same judgement.
        assert fast.records.reports[(no, 1)].beyond_authority == ("amount 20000.00 above 10000.00",)
        assert shown.context["risk_report"] == f"/api/v1/applications/{no}/risk-report.pdf"
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, second, "approve", "risk")
        assert refusal_type(exc) == "Forbidden"
        result = await fast.decide(no, second, "approve", "manager")
        assert result.stage == Stage.PRODUCT_MATCHING


async def test_within_authority_the_risk_manager_decides_alone(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()  # 20,000, grade B: within the defaults
        await fast.drive_to(no, Stage.RISK_REVIEW)
        result = await fast.decide(
            no, await fast.task_of(no, TaskKind.RISK_REVIEW), "approve", "risk"
        )
        assert result.stage == Stage.PRODUCT_MATCHING
        assert not [t for t in fast.records.tasks.values() if t.kind == TaskKind.RISK_APPROVAL]


async def test_more_information_goes_back_to_intake_with_the_questions(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.RISK_REVIEW)
        risk = await fast.task_of(no, TaskKind.RISK_REVIEW)
        result = await fast.decide(
            no, risk, "more_information", "risk", comment="employer and contract length?"
        )
        assert result.stage == Stage.INTAKE_REVIEW
        intake = await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        shown = next(t for t in (await fast.view(no)).open_tasks if t.task_id == intake)
        assert shown.context is not None
        assert shown.context["questions"] == "employer and contract length?"
        assert shown.context["assessment"] == 2  # assessed again
        await fast.decide(no, intake, "approve", "ops")
        assert await fast.task_of(no, TaskKind.RISK_REVIEW)


async def test_a_supplement_is_due_in_working_days_and_names_the_items(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        intake = await fast.task_of(no, TaskKind.INTAKE_REVIEW)
        await fast.decide(
            no, intake, "return", "ops", comment="unreadable", data={"items": ["income_proof"]}
        )
        supplement = await fast.task_of(no, TaskKind.SUPPLEMENT_DOCUMENTS)
        task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == supplement)
        assert task.context is not None
        assert task.context["items"] == ["income_proof"] and task.context["note"] == "unreadable"
        now = await temporal_env.get_current_time()
        today = business_date(now, DEFAULT_POLICY.business_timezone)
        due_on = add_business_days(today, DEFAULT_POLICY.supplement_business_days)
        assert task.expires_at is not None
        assert business_date(task.expires_at, DEFAULT_POLICY.business_timezone) == due_on
        assert task.context["due"] == task.expires_at.isoformat()
        # Past the deadline the application ends EXPIRED.
        await temporal_env.sleep(task.expires_at - now + timedelta(minutes=1))
        assert await fast.handle(no).result() == "EXPIRED"


async def test_a_risk_rejection_needs_reason_codes(temporal_env: WorkflowEnvironment) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.RISK_REVIEW)
        risk = await fast.task_of(no, TaskKind.RISK_REVIEW)
        refused: list[dict[str, Any] | None] = [
            None,
            {"reason_codes": []},
            {"reason_codes": ["too risky"]},
        ]
        for data in refused:
            with pytest.raises(WorkflowUpdateFailedError) as exc:
                await fast.decide(no, risk, "reject", "risk", data=data)
            assert refusal_type(exc) == "InvalidData"
        result = await fast.decide(
            no, risk, "reject", "risk", data={"reason_codes": ["DTI_HIGH", "ENQUIRIES_MANY"]}
        )
        assert result.stage == Stage.REJECTED
        closed = fast.records.closed[risk]
        assert closed.data == {"reason_codes": ["DTI_HIGH", "ENQUIRIES_MANY"]}
