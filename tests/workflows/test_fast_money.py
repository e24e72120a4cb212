"""Fees, contract refusals and the settlement certificate in the real workflows, on the
time-skipping server with fake activities."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.testing import WorkflowEnvironment

from domain.allocation import PaymentMode
from domain.identifiers import PAYMENT_UPDATE
from domain.lifecycle import Stage
from domain.penalty import PenaltyPolicy, accrue_penalties
from domain.products import ProductVersion
from domain.schedule import UpfrontFeeDue
from models.shapes import LoanView, PaymentRequest, PaymentResult
from tests.workflows.fakes import ROLES_OF, TERMS, Fast, fast_worker

FEE = Decimal("30.00")  # 9.6 % with this fee stays under the 12 % ceiling (4 × LPR 3 %)


async def _in_servicing(fast: Fast, no: str) -> LoanView:
    """The loan's view once servicing has its installments."""
    for _ in range(200):
        view = await fast.view(no)
        if view.stage == Stage.SERVICING and view.installments:
            return view
    raise AssertionError(f"{no} never reached SERVICING with installments")


def _product_states(fast: Fast, **changes: Any) -> None:
    """The fake catalog's version of the tests' product (TERMS) with ``changes``."""
    fast.records.catalog = tuple(
        ProductVersion(v.code, v.version, v.effective_from, replace(v.definition, **changes))
        if v.code == TERMS["product_code"]
        else v
        for v in fast.records.catalog
    )


async def test_an_upfront_fee_is_never_deducted_and_falls_due_with_installment_1(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        # The product states the fee (a fixed service fee); the product manager never types it.
        _product_states(fast, upfront_fee=FEE)
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.SERVICING, terms=TERMS)
        view = await _in_servicing(fast, no)
        payout = next(iter(fast.records.disbursed.values()))
        assert payout.principal == Decimal("12000.00")
        assert payout.net_amount == Decimal("12000.00")  # the whole principal
        assert view.offer is not None
        assert view.offer.terms.upfront_fee_due == UpfrontFeeDue.FIRST_INSTALLMENT
        first, *rest = view.installments
        assert (first.fee_due, first.fixed_fee) == (FEE, FEE)
        assert all(i.fee_due == 0 for i in rest)
        # The contract was prepared from the same terms (its schedule has the fee on row 1).
        contract_terms = fast.records.contracts[no].offer.terms
        assert contract_terms == view.offer.terms

        # Paying installment 1 in full on the day pays the fee like any amount due.
        due = first.principal_due + first.interest_due + first.fee_due
        now = await temporal_env.get_current_time()
        result = await fast.handle(no).execute_update(
            PAYMENT_UPDATE,
            PaymentRequest(
                external_ref=f"p-{no}",
                amount=due,
                paid_at=now,
                paid_on=view.start_date,  # type: ignore[arg-type]
                recorded_by="ops",
                roles=ROLES_OF["ops"],
            ),
            result_type=PaymentResult,
        )
        fee_paid = sum(line.amount for line in result.lines if line.component.value == "fee")
        assert fee_paid == FEE
        assert result.credit == 0


async def test_a_refused_contract_ends_the_application_without_failing_the_workflow(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        reason = "purpose: the stated purpose is a prohibited use of the funds (securities)"
        fast.records.contract_refusals.append((reason,))
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.CONTRACT_SIGNING)
        assert await fast.handle(no).result() == "REJECTED"  # completed, not failed
        assert fast.records.stage_names(no)[-2:] == ["CONTRACT_SIGNING", "REJECTED"]
        ended = next(
            s
            for s in fast.records.stages.values()
            if s.application_no == no and s.stage == Stage.REJECTED
        )
        assert ended.reason == reason
        assert no not in fast.records.contracts  # no contract was issued
        assert fast.records.disbursed == {}


async def test_a_settled_loan_gets_its_settlement_certificate(
    temporal_env: WorkflowEnvironment,
) -> None:
    async with fast_worker(temporal_env) as fast:
        no = await fast.start_servicing()
        view = await fast.view(no)
        total = sum((i.total_outstanding for i in view.installments), Decimal("0"))
        now = await temporal_env.get_current_time()
        result = await fast.handle(no).execute_update(
            PAYMENT_UPDATE,
            PaymentRequest(
                external_ref=f"all-{no}",
                amount=total,
                paid_at=now,
                paid_on=view.start_date,  # type: ignore[arg-type]
                recorded_by="ops",
                roles=ROLES_OF["ops"],
            ),
            result_type=PaymentResult,
        )
        # The last fen is paid: the loan waits for operations to confirm the settlement.
        assert result.stage == Stage.SERVICING
        await fast.confirm_settlement(no)
        certificate = fast.records.certificates[no]
        assert certificate.contract_no == view.contract.contract_no  # type: ignore[union-attr]
        assert certificate.settled_on == view.start_date
        assert await fast.handle(no).result() == "SETTLED"


async def test_the_products_penalty_multiple_is_the_one_printed_and_charged(
    temporal_env: WorkflowEnvironment,
) -> None:
    """A product version with a penalty multiple of 1.2 (the policy says 1.5): the contract is
    prepared with 1.2 and the ledger accrues 9.6 % × 1.2 = 11.52 % a year, under the 12 % cap
    that 1.5 would have hit."""
    multiple = Decimal("1.2")
    async with fast_worker(temporal_env) as fast:
        _product_states(fast, penalty_multiple=multiple)
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.SERVICING, terms=TERMS)
        view = await _in_servicing(fast, no)
        assert view.offer is not None and view.offer.product is not None
        assert view.offer.product.penalty_multiple == multiple
        assert fast.records.contracts[no].penalty_multiple == multiple
        assert view.policy.penalty_multiple == Decimal("1.5")  # the policy's is not the one used

        await temporal_env.sleep(timedelta(days=50))  # installment 1 overdue, refreshed daily
        later = await fast.view(no)
        first = later.installments[0]
        assert first.penalty_accrued > 0 and first.penalty_accrued_through is not None
        expected = accrue_penalties(
            installments=view.installments,
            as_of=first.penalty_accrued_through,
            annual_rate=view.offer.terms.annual_rate,
            policy=PenaltyPolicy(multiple=multiple, grace_days=view.policy.penalty_grace_days),
            max_annual_rate=view.offer.rate_cap,
        )
        assert first.penalty_accrued == expected[0].penalty_accrued
        at_policy = accrue_penalties(
            installments=view.installments,
            as_of=first.penalty_accrued_through,
            annual_rate=view.offer.terms.annual_rate,
            policy=view.policy.penalty,
            max_annual_rate=view.offer.rate_cap,
        )
        assert at_policy[0].penalty_accrued > first.penalty_accrued


async def test_the_products_prepayment_fee_is_charged_on_a_payoff(
    temporal_env: WorkflowEnvironment,
) -> None:
    """A product version charging 1 % of the principal repaid early: a payoff on day 0 pays
    the whole principal, no interest, and 1 % of it as the prepayment fee."""
    rate = Decimal("0.01")
    async with fast_worker(temporal_env) as fast:
        _product_states(fast, prepayment_fee_rate=rate)
        no = await fast.start_origination()
        await fast.drive_to(no, Stage.SERVICING, terms=TERMS)
        view = await _in_servicing(fast, no)
        assert view.offer is not None and view.offer.prepayment_fee_rate == rate
        assert fast.records.contracts[no].offer.prepayment_fee_rate == rate
        principal = Decimal(str(TERMS["amount"]))
        fee = (principal * rate).quantize(Decimal("0.01"))  # 120.00 on 12,000.00
        now = await temporal_env.get_current_time()
        result = await fast.handle(no).execute_update(
            PAYMENT_UPDATE,
            PaymentRequest(
                external_ref=f"payoff-{no}",
                amount=principal + fee,
                paid_at=now,
                paid_on=view.start_date,  # type: ignore[arg-type]
                recorded_by="ops",
                mode=PaymentMode.PAYOFF,
                roles=ROLES_OF["ops"],
            ),
            result_type=PaymentResult,
        )
        by = {
            c: sum(x.amount for x in result.lines if x.component.value == c)
            for c in ("principal", "interest", "fee")
        }
        assert by == {"principal": principal, "interest": Decimal("0"), "fee": fee}
        assert result.stage == Stage.SERVICING  # waiting for the settlement confirmation
        await fast.confirm_settlement(no)
