"""The collections ladder as policy data, and a call's typed outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from domain.collections import DEFAULT_LADDER, ContactOutcomeData, VisitOutcomeData
from domain.policy import DEFAULT_POLICY, LoanPolicy


def test_the_default_ladder_is_the_issues() -> None:
    assert DEFAULT_POLICY.collection_ladder == {
        "sms_notice": 1,
        "reminder_call": 3,
        "collection_call": 8,
        "field_visit": 31,
        "legal_review": 61,
        "write_off_proposal": 91,
    }
    DEFAULT_POLICY.validate()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"field_visit": 8}, "collection_ladder.field_visit: must be more days past due"),
        ({"sms_notice": 0}, "collection_ladder.sms_notice: must be a whole number of days ≥ 1"),
        ({"lawyer": 5}, "collection_ladder.lawyer: is not a ladder step"),
    ],
)
def test_a_ladder_that_makes_no_sense_is_refused_naming_the_step(
    change: dict[str, int], message: str
) -> None:
    policy = replace(DEFAULT_POLICY, collection_ladder={**DEFAULT_LADDER, **change})
    with pytest.raises(ValueError, match=message):
        policy.validate()
    missing = {k: v for k, v in DEFAULT_LADDER.items() if k != "legal_review"}
    with pytest.raises(ValueError, match=r"collection_ladder.legal_review: is required"):
        replace(DEFAULT_POLICY, collection_ladder=missing).validate()


def test_the_ladder_round_trips_as_rules() -> None:
    rules = {**DEFAULT_POLICY.rules(), "collection_ladder": {**DEFAULT_LADDER, "sms_notice": 2}}
    policy = LoanPolicy.from_rules(
        version=2, effective_from=date(2026, 1, 1), source="t", rules=rules
    )
    assert policy.collection_ladder["sms_notice"] == 2
    with pytest.raises(ValueError, match=r"collection_ladder.sms_notice: must be a whole number"):
        LoanPolicy.from_rules(
            version=2,
            effective_from=date(2026, 1, 1),
            source="t",
            rules={"collection_ladder": {**DEFAULT_LADDER, "sms_notice": "soon"}},
        )


def test_a_promise_carries_its_amount_and_date() -> None:
    data = ContactOutcomeData.parse_decision(
        "promise_to_pay", {"promise_amount": "300.50", "promise_date": "2026-05-01"}
    )
    assert (data.promise_amount, data.promise_date) == (Decimal("300.50"), date(2026, 5, 1))
    assert data.spoke_with == "borrower"
    with pytest.raises(ValueError, match=r"data.promise_date: is required"):
        ContactOutcomeData.parse_decision("promise_to_pay", {"promise_amount": "1.00"})
    with pytest.raises(ValueError, match=r"data.promise_amount: must not have more than two"):
        ContactOutcomeData.parse_decision(
            "promise_to_pay", {"promise_amount": "1.001", "promise_date": "2026-05-01"}
        )


def test_a_third_party_is_never_spoken_to_and_a_visit_needs_its_report() -> None:
    with pytest.raises(ValueError, match=r"no_third_party"):
        ContactOutcomeData.parse_decision("reached", {"spoke_with": "mother"})
    with pytest.raises(ValueError, match=r"data.spoke_with: nobody was spoken with"):
        ContactOutcomeData.parse_decision("unreachable", {"spoke_with": "borrower"})
    with pytest.raises(ValueError, match=r"data.report: a field visit needs its visit report"):
        VisitOutcomeData.parse_decision("reached", {})
    assert VisitOutcomeData.parse_decision("reached", {"report": "shop open"}).report == (
        "shop open"
    )
