"""The lender's seal on the time-skipping server with fake activities: after the borrower signs,
the department manager (the matrix's SEAL_CONTRACT role) seals or refuses with a reason, and
the disbursement waits for the seal however long it takes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.identifiers import SIGN_UPDATE
from domain.lifecycle import Role, Stage
from domain.permissions import BORROWER, Action, is_allowed, sole_role
from domain.policy import DEFAULT_POLICY
from domain.tasks import TASK_RULES, TaskKind
from models.shapes import DecisionResult, SignRequest
from tests.workflows.fakes import ROLES_OF, Fast, fast_worker


def refusal_type(exc: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str | None:
    cause = exc.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def _sign(fast: Fast, no: str) -> DecisionResult:
    contract = (await fast.view(no)).contract
    assert contract is not None
    result: DecisionResult = await fast.handle(no).execute_update(
        SIGN_UPDATE,
        SignRequest(contract.document_id, contract.sha256, (BORROWER,)),
        result_type=DecisionResult,
    )
    return result


def test_the_seal_task_goes_to_the_role_the_matrix_names() -> None:
    assert sole_role(Action.SEAL_CONTRACT) == Role.DEPARTMENT_MANAGER
    assert TASK_RULES[TaskKind.LENDER_SEAL].candidate_role == Role.DEPARTMENT_MANAGER
    assert TASK_RULES[TaskKind.LENDER_SEAL].decisions == ("seal", "refuse")


async def test_disbursement_waits_for_the_lenders_seal(temporal_env: WorkflowEnvironment) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.CONTRACT_SIGNING)
        signed = await _sign(fast, no)
        # Signed by the borrower, not yet in force: the loan waits for the lender's seal.
        assert signed.stage == Stage.CONTRACT_SIGNING
        seal = await fast.task_of(no, TaskKind.LENDER_SEAL)
        assert no in fast.records.signatures
        # Days pass (escalations of the seal task): no disbursement task, nothing paid.
        await temporal_env.sleep(timedelta(days=3))
        view = await fast.view(no)
        assert view.stage == Stage.CONTRACT_SIGNING
        assert [t.kind for t in view.open_tasks] == [TaskKind.LENDER_SEAL]
        assert fast.records.disbursed == {}
        assert "DISBURSEMENT" not in fast.records.stage_names(no)
        # A second signature is refused while the seal is awaited.
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await _sign(fast, no)
        assert refusal_type(exc) == "WrongStage"

        result = await fast.decide(no, seal, "seal", "manager")
        assert result.stage == Stage.DISBURSEMENT
        await fast.reaches(no, Stage.DISBURSEMENT)  # the seal on the contract, then the stage
        recorded = fast.records.seals[no]
        assert (recorded.decision, recorded.user, recorded.reason) == ("seal", "manager", None)
        assert (await fast.authorize_payout(no)).stage == Stage.SERVICING
        assert len(fast.records.disbursed) == 1


async def test_only_the_seal_role_seals_and_a_refusal_needs_a_reason(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.CONTRACT_SIGNING)
        await _sign(fast, no)
        seal = await fast.task_of(no, TaskKind.LENDER_SEAL)
        # Every role but the one the matrix gives SEAL_CONTRACT is refused.
        for user, roles in ROLES_OF.items():
            if is_allowed(roles, Action.SEAL_CONTRACT):
                continue
            with pytest.raises(WorkflowUpdateFailedError) as exc:
                await fast.decide(no, seal, "seal", user)
            assert refusal_type(exc) == "Forbidden", user
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, seal, "refuse", "manager")
        assert refusal_type(exc) == "InvalidData"
        assert "data.reason" in str(exc.value.cause)
        # The validator parses as the API does: a key the refusal's data does not declare, or
        # any data on the seal (it takes none), is refused before anything is written.
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(
                no, seal, "refuse", "manager", data={"reason": "核验未通过", "severity": "high"}
            )
        assert refusal_type(exc) == "InvalidData"
        assert "data.severity: is not a field of lender_seal refuse" in str(exc.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, seal, "seal", "manager", data={"reason": "ok"})
        assert refusal_type(exc) == "InvalidData"
        assert "data: lender_seal seal takes no data" in str(exc.value.cause)
        assert no not in fast.records.seals

        result = await fast.decide(
            no, seal, "refuse", "manager", data={"reason": "签约主体核验未通过"}
        )
        assert result.stage == Stage.REJECTED
        assert await fast.handle(no).result() == "REJECTED"
        recorded = fast.records.seals[no]
        assert (recorded.decision, recorded.reason) == ("refuse", "签约主体核验未通过")
        assert fast.records.disbursed == {}


async def test_a_seal_nobody_gives_ends_the_application_expired(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.CONTRACT_SIGNING)
        await _sign(fast, no)
        await fast.task_of(no, TaskKind.LENDER_SEAL)
        await temporal_env.sleep(timedelta(days=DEFAULT_POLICY.task_abandon_days + 1))
        assert await fast.handle(no).result() == "EXPIRED"
        assert fast.records.disbursed == {}


async def test_two_signatures_at_once_sign_once(temporal_env: WorkflowEnvironment) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.CONTRACT_SIGNING)
        results = await asyncio.gather(_sign(fast, no), _sign(fast, no), return_exceptions=True)
        refused = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
        signed = [r for r in results if isinstance(r, DecisionResult)]
        assert len(signed) == 1 and len(refused) == 1, results
        cause = refused[0].cause
        assert isinstance(cause, ApplicationError) and cause.type == "WrongStage"
        await fast.task_of(no, TaskKind.LENDER_SEAL)
        assert list(fast.records.signatures) == [no]
