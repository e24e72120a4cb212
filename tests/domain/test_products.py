"""The product catalog's rules: definitions validated naming the field, the version in force by
date, matching (proposals within the request, caps, product bounds, grade ranges and the
ceiling; exclusions with their reasons) and a choice checked against its product version."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from domain.disclosure import CeilingPolicy, disclose_schedule_cost
from domain.lpr import LprRate
from domain.products import (
    SEED_CATALOG,
    SEED_EFFECTIVE_FROM,
    FeeBasis,
    MatchFacts,
    ProductDefinition,
    ProductVersion,
    Proposal,
    RateRange,
    check_choice,
    choice_data,
    match,
    proposals_context,
    propose,
    version_in_force,
)
from domain.schedule import RepaymentMethod, UpfrontFeeDue, build_schedule

ON = date(2026, 11, 30)
LPR = LprRate(date(2025, 5, 20), Decimal("0.0300"), None)
CEILING = CeilingPolicy()  # 4 × LPR 3.00 % = 12 %, under the 24 % line
CAP = Decimal("0.12")

BASE = ProductDefinition(
    code="TEST_LOAN",
    name="test loan",
    methods=(RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL),
    min_amount=Decimal("10000.00"),
    max_amount=Decimal("100000.00"),
    terms=(6, 12, 24),
    rates={
        "A": RateRange(Decimal("0.08"), Decimal("0.10")),
        "B": RateRange(Decimal("0.09"), Decimal("0.11")),
    },
    upfront_fee_basis=FeeBasis.RATE,
    upfront_fee=Decimal("0.005"),
    monthly_fee_rate=Decimal("0.0005"),
    required_documents=("employment_proof",),
    min_age=22,
    max_age=55,
    approval_limit=Decimal("80000.00"),
)


def facts(**changes: Any) -> MatchFacts:
    base = MatchFacts(
        requested_amount=Decimal("50000.00"),
        requested_term=12,
        grade="A",
        caps_room=Decimal("200000.00"),
        age=35,
        document_kinds=("employment_proof", "id_card_front"),
    )
    return replace(base, **changes)


def version(
    defn: ProductDefinition = BASE, n: int = 1, on: date = SEED_EFFECTIVE_FROM
) -> ProductVersion:
    return ProductVersion(defn.code, n, on, defn)


# ---- definitions -------------------------------------------------------------------------------

INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"code": "lower"}, "code", "upper-case"),
    ({"name": " "}, "name", "between 1 and 100"),
    ({"methods": ()}, "methods", "at least one"),
    ({"min_amount": Decimal("0")}, "min_amount", "greater than zero"),
    ({"min_amount": Decimal("100.001")}, "min_amount", "two decimal places"),
    ({"min_amount": Decimal("200000.00")}, "min_amount", "above max_amount"),
    ({"terms": ()}, "terms", "at least one"),
    ({"terms": (6, 0)}, "terms[1]", "between 1 and 360"),
    ({"terms": (6, 6)}, "terms", "twice"),
    ({"rates": {}}, "rates", "at least one"),
    ({"rates": {"F": RateRange(Decimal("0.1"), Decimal("0.1"))}}, "rates.F", "not a risk grade"),
    (
        {"rates": {"A": RateRange(Decimal("0.11"), Decimal("0.09"))}},
        "rates.A.low",
        "above the high end",
    ),
    (
        {"rates": {"B": RateRange(Decimal("0.09"), Decimal("0.15"))}},
        "rates.B.high",
        "above the interest ceiling 0.12",
    ),
    (
        {"rates": {"A": RateRange(Decimal("-0.01"), Decimal("0.1"))}},
        "rates.A.low",
        "between 0 and 1",
    ),
    ({"upfront_fee": Decimal("0.3")}, "upfront_fee", "below 0.2"),
    (
        {"upfront_fee_basis": FeeBasis.FIXED, "upfront_fee": Decimal("10000.00")},
        "upfront_fee",
        "less than min_amount",
    ),
    ({"monthly_fee_rate": Decimal("0.05")}, "monthly_fee_rate", "below 0.02"),
    ({"penalty_multiple": Decimal("4")}, "penalty_multiple", "between 1 and 3"),
    ({"prepayment_fee_rate": Decimal("0.2")}, "prepayment_fee_rate", "below 0.1"),
    ({"required_documents": ("Bad Kind",)}, "required_documents[0]", "document kind"),
    ({"min_age": 16}, "min_age", "between 18 and 100"),
    ({"max_age": 20}, "max_age", "between min_age"),
    ({"approval_limit": Decimal("200000.00")}, "approval_limit", "between min_amount"),
    (
        {"upfront_fee_due": UpfrontFeeDue.DEDUCTED_FROM_PAYOUT},
        "upfront_fee_due",
        "never taken out of the principal",
    ),
]


@pytest.mark.parametrize(("change", "field", "reason"), INVALID, ids=[c[1] for c in INVALID])
def test_an_invalid_definition_is_refused_naming_the_field(
    change: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValueError) as exc:
        replace(BASE, **change).validate(rate_ceiling=CAP)
    named, _, message = str(exc.value).partition(": ")
    assert named == field
    assert reason in message


def test_the_seeded_catalog_is_valid_within_the_ceiling_in_force() -> None:
    assert {d.code for d in SEED_CATALOG} == {"SALARY_CONSUMER", "SMB_OPERATING", "SHORT_BULLET"}
    for d in SEED_CATALOG:
        d.validate(rate_ceiling=CAP)
    bullet = next(d for d in SEED_CATALOG if d.code == "SHORT_BULLET")
    assert bullet.methods == (RepaymentMethod.BULLET,)


def test_a_definition_round_trips_through_json_and_names_unknown_fields() -> None:
    assert ProductDefinition.from_json(BASE.to_json()) == BASE
    with pytest.raises(ValueError, match=r"^colour: is not a product field"):
        ProductDefinition.from_json({**BASE.to_json(), "colour": "red"})
    with pytest.raises(ValueError, match=r"^terms\[0\]: must be a whole number"):
        ProductDefinition.from_json({**BASE.to_json(), "terms": ["six"]})
    with pytest.raises(ValueError, match=r"^max_amount: is required"):
        ProductDefinition.from_json({k: v for k, v in BASE.to_json().items() if k != "max_amount"})


def test_fees_come_from_the_definition() -> None:
    assert BASE.upfront_fee_for(Decimal("50000.00")) == Decimal("250.00")
    assert BASE.monthly_fee_for(Decimal("50000.00")) == Decimal("25.00")
    fixed = replace(BASE, upfront_fee_basis=FeeBasis.FIXED, upfront_fee=Decimal("88.00"))
    assert fixed.upfront_fee_for(Decimal("50000.00")) == Decimal("88.00")


# ---- versions ----------------------------------------------------------------------------------


def test_the_version_in_force_is_the_newest_whose_date_has_come() -> None:
    v1 = version(n=1, on=date(2026, 1, 1))
    v2 = version(replace(BASE, name="v2"), n=2, on=date(2026, 6, 1))
    v3 = version(replace(BASE, name="v3"), n=3, on=date(2027, 1, 1))
    versions = [v3, v1, v2]
    assert version_in_force(versions, date(2025, 12, 31)) is None
    assert version_in_force(versions, date(2026, 1, 1)) == v1
    assert version_in_force(versions, date(2026, 5, 31)) == v1
    assert version_in_force(versions, date(2026, 6, 1)) == v2
    assert version_in_force(versions, date(2026, 12, 31)) == v2
    assert version_in_force(versions, date(2027, 1, 1)) == v3


# ---- matching ----------------------------------------------------------------------------------


def _proposal(result: object) -> Proposal:
    assert isinstance(result, Proposal), result
    return result


def test_a_proposal_takes_the_request_the_grade_low_rate_and_the_product_fees() -> None:
    p = _proposal(match(version(), facts(), on=ON, lpr=LPR, ceiling=CEILING))
    assert (p.amount, p.term_months, p.annual_rate, p.method) == (
        Decimal("50000.00"),
        12,
        Decimal("0.08"),
        RepaymentMethod.EQUAL_INSTALLMENT,
    )
    assert (p.upfront_fee, p.monthly_fee) == (Decimal("250.00"), Decimal("25.00"))
    # Priced by the money engine: schedule summary and the all-in APR of the real cash flows.
    schedule = build_schedule(
        principal=p.amount,
        annual_rate=p.annual_rate,
        term_months=12,
        method=p.method,
        start_date=ON,
        monthly_fee=Decimal("25.00"),
    )
    # The upfront fee is due with the first installment, never taken out of the payout.
    assert p.first_payment == schedule.installments[0].payment + Decimal("250.00")
    assert p.total_interest == schedule.total_interest
    assert p.total_fees == Decimal("250.00") + Decimal("25.00") * 12
    with_fee = build_schedule(
        principal=p.amount,
        annual_rate=p.annual_rate,
        term_months=12,
        method=p.method,
        start_date=ON,
        monthly_fee=Decimal("25.00"),
        upfront_fee=Decimal("250.00"),
    )
    apr = disclose_schedule_cost(
        principal=p.amount, upfront_fee=Decimal("0.00"), schedule=with_fee, start_date=ON
    ).apr
    assert p.apr == apr and Decimal("0.08") < apr <= CAP


@pytest.mark.parametrize(
    ("change", "amount"),
    [
        ({}, "50000.00"),  # the request
        ({"caps_room": Decimal("30000.00")}, "30000.00"),  # what the caps leave
        ({"requested_amount": Decimal("150000.00")}, "80000.00"),  # the approval limit
        (
            {"requested_amount": Decimal("150000.00"), "manager_approved": True},
            "100000.00",  # the product's maximum once the manager approved
        ),
    ],
)
def test_the_proposed_amount_never_exceeds_request_caps_limit_or_bound(
    change: dict[str, Any], amount: str
) -> None:
    p = _proposal(match(version(), facts(**change), on=ON, lpr=LPR, ceiling=CEILING))
    assert p.amount == p.max_amount == Decimal(amount)


def test_the_term_is_the_requested_one_or_the_nearest_allowed() -> None:
    for asked, term in ((12, 12), (9, 6), (18, 12), (36, 24), (3, 6)):
        p = _proposal(
            match(version(), facts(requested_term=asked), on=ON, lpr=LPR, ceiling=CEILING)
        )
        assert p.term_months == term, asked


def test_the_rate_is_the_low_end_of_the_grade_range() -> None:
    p = _proposal(match(version(), facts(grade="B"), on=ON, lpr=LPR, ceiling=CEILING))
    assert p.annual_rate == Decimal("0.09") and p.rate_range == BASE.rates["B"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"grade": "C"}, "grade C is not eligible (eligible: A, B)"),
        ({"grade": None}, "no risk grade on record"),
        ({"age": 60}, "age 60 is outside 22-55"),
        ({"age": 21}, "age 21 is outside 22-55"),
        ({"document_kinds": ()}, "missing documents: employment_proof"),
        ({"caps_room": Decimal("5000.00")}, "below the minimum 10000.00"),
        ({"requested_amount": Decimal("8000.00")}, "below the minimum 10000.00"),
    ],
)
def test_an_exclusion_names_its_reason(change: dict[str, Any], reason: str) -> None:
    result = match(version(), facts(**change), on=ON, lpr=LPR, ceiling=CEILING)
    assert not isinstance(result, Proposal)
    assert result.code == "TEST_LOAN" and result.version == 1
    assert any(reason in r for r in result.reasons), result.reasons


def test_a_product_whose_all_in_cost_passes_the_ceiling_is_excluded() -> None:
    # 11.9 % contract rate plus a 2 % fee over 6 months: the all-in cost passes 12 %.
    dear = replace(
        BASE,
        rates={"A": RateRange(Decimal("0.119"), Decimal("0.12"))},
        upfront_fee=Decimal("0.02"),
    )
    result = match(version(dear), facts(requested_term=6), on=ON, lpr=LPR, ceiling=CEILING)
    assert not isinstance(result, Proposal)
    assert "exceeds the ceiling 12.0000%" in result.reasons[0]


def test_propose_splits_the_catalog_and_orders_by_apr() -> None:
    catalog = [version(d) for d in SEED_CATALOG]
    result = propose(
        catalog,
        facts(requested_amount=Decimal("30000.00"), requested_term=6, grade="B"),
        on=ON,
        lpr=LPR,
        ceiling=CEILING,
    )
    assert [p.code for p in result.proposals] == ["SMB_OPERATING", "SALARY_CONSUMER"]
    assert [p.apr for p in result.proposals] == sorted(p.apr for p in result.proposals)
    (bullet,) = result.excluded
    assert bullet.code == "SHORT_BULLET"
    assert bullet.reasons == ("missing documents: bank_statement",)
    assert result.rate_cap == CAP
    context = proposals_context(result, round_=1)
    assert [x["product_code"] for x in context["proposals"]] == ["SMB_OPERATING", "SALARY_CONSUMER"]
    assert context["excluded"][0]["reasons"] == ["missing documents: bank_statement"]
    assert choice_data(context["proposals"][0]) == {
        "product_code": "SMB_OPERATING",
        "product_version": 1,
        "amount": "30000.00",
        "term_months": 6,
        "annual_rate": "0.078",
        "method": "equal_installment",
    }


# ---- a choice against its product version -------------------------------------------------------


def _choose(**change: Any) -> Any:
    p = _proposal(match(version(), facts(), on=ON, lpr=LPR, ceiling=CEILING))
    terms: dict[str, Any] = {
        "amount": Decimal("40000.00"),
        "term_months": 24,
        "annual_rate": Decimal("0.095"),
        "method": RepaymentMethod.EQUAL_PRINCIPAL,
    }
    return check_choice(p, **{**terms, **change})


def test_a_choice_within_the_product_takes_the_product_fees() -> None:
    chosen = _choose()
    assert chosen.upfront_fee == Decimal("200.00")
    assert chosen.monthly_fee == Decimal("20.00")


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"method": RepaymentMethod.BULLET}, "data.method", "allows equal_installment"),
        ({"amount": Decimal("9000.00")}, "data.amount", "below TEST_LOAN v1's minimum"),
        ({"amount": Decimal("50000.01")}, "data.amount", "above 50000.00"),
        ({"term_months": 9}, "data.term_months", "allows 6, 12, 24 months"),
        ({"annual_rate": Decimal("0.105")}, "data.annual_rate", "range for grade A, 0.08-0.10"),
        ({"annual_rate": Decimal("0.079")}, "data.annual_rate", "range for grade A"),
    ],
)
def test_a_choice_outside_the_product_is_refused_naming_the_field(
    change: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValueError) as exc:
        _choose(**change)
    named, _, message = str(exc.value).partition(": ")
    assert named == field and reason in message, str(exc.value)
