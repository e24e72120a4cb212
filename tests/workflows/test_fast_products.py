"""Product matching against the catalog, on the time-skipping server with fake activities: the
task shows the proposals and the exclusions, a choice outside its product version is refused
before anything is written, the offer records the product version, other terms at the offer
start a new matching round, and with no eligible product the task still opens."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import Stage
from domain.products import SEED_CATALOG, SEED_EFFECTIVE_FROM, ProductVersion, RateRange
from domain.tasks import TaskKind
from tests.workflows.fakes import TERMS, Fast, fast_worker


def _refusal(exc: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> tuple[str | None, str]:
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.type, cause.message


async def _matching_context(fast: Fast, no: str) -> tuple[str, dict[str, Any]]:
    task_id = await fast.task_of(no, TaskKind.PRODUCT_MATCHING)
    task = next(t for t in (await fast.view(no)).open_tasks if t.task_id == task_id)
    assert task.context is not None
    return task_id, task.context


async def test_the_matching_task_shows_the_proposals_and_the_exclusions(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()  # 20,000 over 3 months; grade B
        await fast.drive_to(no, Stage.PRODUCT_MATCHING)
        _, context = await _matching_context(fast, no)
        asked = fast.records.proposals[(no, 1)]
        assert (asked.grade, asked.requested_amount, asked.requested_term_months) == (
            "B",
            Decimal("20000.00"),
            3,
        )
        assert context["round"] == 1 and context["grade"] == "B"
        (smb,) = context["proposals"]
        assert (smb["product_code"], smb["product_version"]) == ("SMB_OPERATING", 1)
        # The request, the grade's lowest rate, the product's first method.
        assert (smb["amount"], smb["term_months"], smb["annual_rate"], smb["method"]) == (
            "20000.00",
            3,
            "0.078",
            "equal_installment",
        )
        assert Decimal(smb["apr"]) <= Decimal(context["rate_cap"])
        excluded = {e["product_code"]: e["reasons"] for e in context["excluded"]}
        assert excluded == {
            "SALARY_CONSUMER": ["missing documents: employment_proof"],
            "SHORT_BULLET": ["missing documents: bank_statement"],
        }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"method": "bullet"}, "data.method"),
        ({"term_months": 9}, "data.term_months"),
        ({"annual_rate": "0.12"}, "data.annual_rate"),  # within the ceiling, above grade B's
        ({"annual_rate": "0.07"}, "data.annual_rate"),  # below grade B's range
        ({"amount": "9000.00"}, "data.amount"),  # below the product's minimum
        ({"upfront_fee": "10.00"}, "data.upfront_fee"),  # fees are the product's
        ({"product_code": "SHORT_BULLET"}, "data.product_code"),  # excluded, not proposed
        ({"product_version": 2}, "data.product_code"),  # no such version proposed
    ],
)
async def test_a_choice_outside_its_product_version_is_refused(
    temporal_env: WorkflowEnvironment, change: dict[str, Any], field: str
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.PRODUCT_MATCHING)
        task_id = await fast.task_of(no, TaskKind.PRODUCT_MATCHING)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, task_id, "approve", "pm", data={**TERMS, **change})
        kind, message = _refusal(exc)
        assert kind == "InvalidData"
        assert message.startswith(f"{field}: "), message
        view = await fast.view(no)
        assert view.stage == Stage.PRODUCT_MATCHING and view.offer is None
        assert task_id not in fast.records.closed


async def test_free_form_terms_are_refused_on_a_catalog_round(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.PRODUCT_MATCHING)
        task_id = await fast.task_of(no, TaskKind.PRODUCT_MATCHING)
        free = {k: v for k, v in TERMS.items() if not k.startswith("product_")}
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, task_id, "approve", "pm", data=free)
        assert _refusal(exc) == (
            "InvalidData",
            "data.product_code: is required: choose one of the proposals (SMB_OPERATING v1)",
        )


async def test_the_offer_records_its_product_version_and_survives_a_catalog_change(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.OFFER_CONFIRMATION)
        offer = (await fast.view(no)).offer
        assert offer is not None and offer.product is not None
        assert (offer.product.code, offer.product.version, offer.product.grade) == (
            "SMB_OPERATING",
            1,
            "B",
        )
        assert (offer.product.rate_low, offer.product.rate_high) == (
            Decimal("0.078"),
            Decimal("0.114"),
        )
        assert offer.terms.principal == Decimal("12000.00")
        assert offer.terms.upfront_fee == offer.terms.monthly_fee == Decimal("0")
        assert fast.records.offers[(no, 1)].offer == offer
        # The catalog changes: the offer made stays as it was, through the contract.
        smb = next(d for d in SEED_CATALOG if d.code == "SMB_OPERATING")
        fast.records.catalog = (
            ProductVersion(
                "SMB_OPERATING",
                2,
                SEED_EFFECTIVE_FROM,
                replace(smb, rates={"B": RateRange(Decimal("0.10"), Decimal("0.11"))}),
            ),
        )
        confirm = await fast.task_of(no, TaskKind.OFFER_CONFIRMATION)
        await fast.decide(no, confirm, "accept", "bo")
        view = await fast.view(no)
        assert view.stage == Stage.CONTRACT_SIGNING and view.offer == offer


async def test_other_terms_at_the_offer_start_a_new_matching_round(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.OFFER_CONFIRMATION)
        confirm = await fast.task_of(no, TaskKind.OFFER_CONFIRMATION)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, confirm, "other_terms", "bo")
        assert _refusal(exc)[0] == "InvalidData"
        assert _refusal(exc)[1].startswith("comment: ")
        assert await fast.stage(no) == Stage.OFFER_CONFIRMATION

        result = await fast.decide(
            no, confirm, "other_terms", "bo", comment="borrower wants 6 months"
        )
        assert result.stage == Stage.PRODUCT_MATCHING
        view = await fast.view(no)
        assert view.offer is None
        task_id, context = await _matching_context(fast, no)
        assert context["round"] == 2 and context["other_terms"] == "borrower wants 6 months"
        assert (no, 2) in fast.records.proposals
        assert fast.records.stage_names(no)[-3:] == [
            "PRODUCT_MATCHING",
            "OFFER_CONFIRMATION",
            "PRODUCT_MATCHING",
        ]
        await fast.decide(no, task_id, "approve", "pm", data={**TERMS, "term_months": 6})
        confirm = await fast.task_of(no, TaskKind.OFFER_CONFIRMATION)  # the offer recorded
        offer = (await fast.view(no)).offer
        assert offer is not None and offer.terms.term_months == 6
        assert fast.records.offers[(no, 2)].offer == offer
        result = await fast.decide(no, confirm, "accept", "bo")
        assert result.stage == Stage.CONTRACT_SIGNING


async def test_with_no_eligible_product_the_task_opens_with_the_exclusions(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        fast.records.catalog = tuple(
            ProductVersion(d.code, 1, SEED_EFFECTIVE_FROM, d)
            for d in SEED_CATALOG
            if d.code != "SMB_OPERATING"
        )
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.PRODUCT_MATCHING)
        task_id, context = await _matching_context(fast, no)
        assert context["proposals"] == []
        assert {e["product_code"] for e in context["excluded"]} == {
            "SALARY_CONSUMER",
            "SHORT_BULLET",
        }
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await fast.decide(no, task_id, "approve", "pm", data=TERMS)
        assert "no product is eligible" in _refusal(exc)[1]
        result = await fast.decide(no, task_id, "reject", "pm", comment="no product fits")
        assert result.stage == Stage.REJECTED
