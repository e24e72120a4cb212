"""Product matching (seed §3.3): the catalog's proposals for the application, the product
manager's choice checked against the chosen product version, and the offer priced by the money
engine (``price_offer``). Composed into the origination workflow.

Deterministic code only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ContractActivities
    from activities.products import ProductActivities
    from domain.disclosure import check_interest_ceiling, disclose_schedule_cost
    from domain.lifecycle import Stage
    from domain.lpr import LprRate, LprTable
    from domain.policy import LoanPolicy
    from domain.products import OfferedProduct, Proposals, check_choice, proposals_context
    from domain.schedule import UpfrontFeeDue
    from domain.tasks import ProductChoiceData, ProductMatchData, ProductTermsData, TaskKind
    from models.shapes import (
        DecisionRequest,
        LoanInput,
        LoanTerms,
        Offer,
        OfferInput,
        ProposeInput,
    )
    from workflows.common import DB_WRITE, Ended, LoanProgress
    from workflows.human_tasks import Abort, HumanTasks
    from workflows.reviews import Reviews

# workflow.patched id: loans that reach product matching from here on are matched against the
# product catalog; loans matched before keep the free form.
CATALOG_PATCH = "product-catalog-v1"


class Matching:
    def __init__(
        self,
        progress: LoanProgress,
        tasks: HumanTasks,
        abort: Abort,
        inp: LoanInput,
        reviews: Reviews,
    ) -> None:
        self._p = progress
        self._tasks = tasks
        self._abort = abort
        self._inp = inp
        self._reviews = reviews
        # When the upfront fee falls due; loans priced before fee-not-deducted-v1 keep theirs.
        self._fee_due = UpfrontFeeDue.FIRST_INSTALLMENT
        # The catalog's answer for the current product matching round (None: free form).
        self._proposals: Proposals | None = None
        self._match_round = 0

    async def match(self, again: DecisionRequest | None) -> Offer:
        """The product manager picks a product version from the catalog's proposals and fixes
        the terms within it (loans matched before the catalog: terms in free form). ``again``:
        the officer's request for other terms that opens this round, if any. Returns the offer,
        recorded."""
        if again is None:
            await self._p.enter(Stage.PRODUCT_MATCHING)
        else:
            await self._p.enter(Stage.PRODUCT_MATCHING, actor=again.user, reason=again.comment)
        if not workflow.patched("fee-not-deducted-v1"):
            self._fee_due = UpfrontFeeDue.DEDUCTED_FROM_PAYOUT
        self._match_round += 1
        context: dict[str, Any] | None = None
        if workflow.patched(CATALOG_PATCH):
            assessment = self._reviews.assessment
            self._proposals = await workflow.execute_activity_method(
                ProductActivities.propose,
                ProposeInput(
                    application_no=self._inp.application_no,
                    round=self._match_round,
                    at=workflow.now(),
                    offered_on=self._p.today(),
                    requested_amount=self._inp.requested_amount,
                    requested_term_months=self._inp.requested_term_months,
                    grade=assessment.grade if assessment is not None else None,
                    manager_approved=self._reviews.manager_approved,
                    lpr_multiple=self._p.policy.lpr_multiple,
                    absolute_rate_cap=self._p.policy.absolute_rate_cap,
                ),
                **DB_WRITE,
            )
            context = proposals_context(
                self._proposals,
                round_=self._match_round,
                note=again.comment if again is not None else None,
            )
        elif again is not None:
            context = {"round": self._match_round, "other_terms": again.comment}
        match = await self._tasks.decide(
            TaskKind.PRODUCT_MATCHING, abort=self._abort, context=context
        )
        if match.decision == "reject":
            raise Ended(Stage.REJECTED, match.comment or "no product matches", match.user)
        self._p.moving_to = Stage.OFFER_CONFIRMATION  # once the offer is recorded
        offer = self.make_offer(match)
        await workflow.execute_activity_method(
            ContractActivities.record_offer,
            OfferInput(
                self._inp.application_no,
                offer,
                match.user,
                workflow.now(),
                round=self._match_round,
            ),
            **DB_WRITE,
        )
        return offer

    def make_offer(self, match: DecisionRequest) -> Offer:
        """Price the decided terms (ValueError names what is wrong): the money engine's
        schedule, the APR of its dated cash flows, the ceiling of the offer date; on a catalog
        round, within the chosen product version's definition, with its fees."""
        data = ProductMatchData.parse(match.data)
        proposals = self._proposals
        if proposals is None:  # matched before the catalog: the free form
            if isinstance(data, ProductChoiceData):
                raise ValueError(
                    "data.product_code: this loan is matched in free form (it started before "
                    "the product catalog); give amount, term_months, annual_rate and method"
                )
            return self._price(data, match.lpr_in_force)
        if not proposals.proposals:
            raise ValueError(
                "data.product_code: no product is eligible for this application (see the "
                "exclusions); reject it with a reason"
            )
        if not isinstance(data, ProductChoiceData):
            raise ValueError(
                "data.product_code: is required: choose one of the proposals ("
                + ", ".join(f"{p.code} v{p.version}" for p in proposals.proposals)
                + ")"
            )
        proposal = proposals.find(data.product_code, data.product_version)
        if proposal is None:
            offered = ", ".join(f"{p.code} v{p.version}" for p in proposals.proposals)
            raise ValueError(
                f"data.product_code: {data.product_code} v{data.product_version} is not among "
                f"this round's proposals ({offered or 'none'})"
            )
        definition = proposal.definition
        offer = self._price(
            ProductTermsData(
                amount=data.amount,
                term_months=data.term_months,
                annual_rate=data.annual_rate,
                method=data.method,
                upfront_fee=definition.upfront_fee_for(data.amount),
                monthly_fee=definition.monthly_fee_for(data.amount),
            ),
            match.lpr_in_force,
        )
        check_choice(
            proposal,
            amount=data.amount,
            term_months=data.term_months,
            annual_rate=data.annual_rate,
            method=data.method,
        )
        return replace(offer, product=OfferedProduct.of(proposal))

    def _price(self, terms: ProductTermsData, lpr: LprRate | None) -> Offer:
        return price_offer(
            terms,
            requested_amount=self._inp.requested_amount,
            lpr=lpr,
            policy=self._p.policy,
            offered_on=self._p.today(),
            now=workflow.now(),
            upfront_fee_due=self._fee_due,
        )


def price_offer(
    terms_data: ProductTermsData,
    *,
    requested_amount: Decimal,
    lpr: LprRate | None,
    policy: LoanPolicy,
    offered_on: date,
    now: datetime,
    upfront_fee_due: UpfrontFeeDue = UpfrontFeeDue.FIRST_INSTALLMENT,
) -> Offer:
    """The offer for these terms on ``offered_on``; ValueError names the field and the reason.

    The borrower receives the whole principal; the upfront fee is due with the first
    installment (in the schedule, so in its totals and in the APR's cash flows)."""
    requested = requested_amount
    terms = LoanTerms(
        principal=terms_data.amount,
        term_months=terms_data.term_months,
        annual_rate=terms_data.annual_rate,
        method=terms_data.method,
        upfront_fee=terms_data.upfront_fee,
        monthly_fee=terms_data.monthly_fee,
        upfront_fee_due=upfront_fee_due,
    )
    if terms.principal > requested:
        raise ValueError(f"data.amount: {terms.principal} exceeds the requested amount {requested}")
    if lpr is None:
        raise ValueError("data: the LPR in force on the offer date is not on record")
    schedule = terms.schedule(offered_on)
    cost = disclose_schedule_cost(
        principal=terms.principal,
        upfront_fee=terms.fee_deducted,
        schedule=schedule,
        start_date=offered_on,
    )
    ceiling = check_interest_ceiling(
        all_in_rate=cost.apr,
        contract_date=offered_on,
        lpr_table=LprTable((lpr,)),
        policy=policy.ceiling,
    )
    if not ceiling.ok:
        raise ValueError(f"data.annual_rate: {ceiling.reason}")
    return Offer(
        terms=terms,
        apr=cost.apr,
        apr_compound=cost.apr_compound,
        total_interest=schedule.total_interest,
        total_fees=schedule.total_fees + terms.fee_deducted,
        total_payment=schedule.total_payment,
        first_payment=schedule.installments[0].payment,
        lpr=lpr.one_year,
        rate_cap=ceiling.binding_cap,
        offered_on=offered_on,
        expires_at=now + timedelta(days=policy.offer_valid_days),
    )
