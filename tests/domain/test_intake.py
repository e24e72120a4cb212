"""The automatic intake checks: each check alone, at its boundaries, and the issue's example
(¥5,000,000 from a borrower earning ¥1,000 a month, to trade stocks)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from domain.intake import (
    CheckResult,
    IntakeFacts,
    IntakeRules,
    Outcome,
    knock_outs,
    prohibited_category,
    purpose_category,
    run_checks,
)

D = Decimal
GOOD = IntakeFacts(
    application_date=date(2026, 11, 29),
    birth_date=date(1990, 5, 17),
    amount=D("50000.00"),
    monthly_income=D("18000.00"),
    purpose="店铺装修",
    document_kinds=("id_card_front", "id_card_back", "income_proof"),
    outstanding_elsewhere=D("0.00"),
)


def result(facts: IntakeFacts, code: str) -> CheckResult:
    return next(r for r in run_checks(facts) if r.code == code)


def test_a_good_application_passes_every_check() -> None:
    results = run_checks(GOOD)
    assert [r.code for r in results] == [
        "age",
        "documents",
        "purpose",
        "duplicate_application",
        "blacklist",
        "borrowing_caps",
        "income",
    ]
    assert {r.outcome for r in results} == {Outcome.PASS}
    assert knock_outs(results) == ()


@pytest.mark.parametrize(
    ("birth", "outcome"),
    [
        (date(2008, 11, 29), Outcome.PASS),  # 18 today
        (date(2008, 11, 30), Outcome.FAIL),  # 18 tomorrow
        (date(1965, 11, 30), Outcome.PASS),  # 60 until tomorrow
        (date(1966, 11, 29), Outcome.PASS),  # 60 today
        (date(1965, 11, 29), Outcome.FAIL),  # 61 today
    ],
)
def test_age_bounds_on_the_application_date(birth: date, outcome: Outcome) -> None:
    r = result(replace(GOOD, birth_date=birth), "age")
    assert r.outcome == outcome
    assert r.knock_out == (outcome == Outcome.FAIL)


@pytest.mark.parametrize(
    ("purpose", "category"),
    [
        ("炒股", "securities"),
        ("买股票", "securities"),
        ("期货交易", "futures"),
        ("投资比特币", "crypto"),
        ("购房首付", "property_down_payment"),
        ("Casino trip", "gambling"),
        ("店铺装修", None),
        ("孩子学费", None),
    ],
)
def test_prohibited_purposes(purpose: str, category: str | None) -> None:
    assert prohibited_category(purpose, IntakeRules()) == category
    r = result(replace(GOOD, purpose=purpose), "purpose")
    assert (r.outcome == Outcome.FAIL) == (category is not None)


def test_missing_documents_are_named() -> None:
    r = result(replace(GOOD, document_kinds=("id_card_front",)), "documents")
    assert r.outcome == Outcome.FAIL
    assert r.detail == "缺少：身份证国徽面（id_card_back）、收入证明（income_proof）"
    assert not r.knock_out


def test_another_open_application_and_the_blacklist() -> None:
    assert result(replace(GOOD, other_open_applications=1), "duplicate_application").outcome == (
        Outcome.FAIL
    )
    r = result(replace(GOOD, blacklisted=True), "blacklist")
    assert r.outcome == Outcome.FAIL and r.knock_out


@pytest.mark.parametrize(
    ("amount", "here", "elsewhere", "outcome"),
    [
        ("200000.00", "0.00", "0.00", Outcome.PASS),  # exactly the platform cap
        ("200000.01", "0.00", "0.00", Outcome.FAIL),
        ("100000.00", "100000.01", "0.00", Outcome.FAIL),  # counting loans outstanding here
        ("100000.00", "0.00", "900000.00", Outcome.PASS),  # exactly the total cap
        ("100000.00", "0.00", "900000.01", Outcome.FAIL),
        ("100000.00", "0.00", None, Outcome.WARN),  # no bureau report: unknown elsewhere
    ],
)
def test_borrowing_caps(amount: str, here: str, elsewhere: str | None, outcome: Outcome) -> None:
    facts = replace(
        GOOD,
        amount=D(amount),
        outstanding_here=D(here),
        outstanding_elsewhere=D(elsewhere) if elsewhere is not None else None,
    )
    r = result(facts, "borrowing_caps")
    assert r.outcome == outcome
    assert r.knock_out == (outcome == Outcome.FAIL)


def test_income_present_and_plausible() -> None:
    assert result(replace(GOOD, monthly_income=D("0.00")), "income").outcome == Outcome.FAIL
    assert result(replace(GOOD, monthly_income=D("500000.00")), "income").outcome == Outcome.PASS
    assert result(replace(GOOD, monthly_income=D("500000.01")), "income").outcome == Outcome.WARN


def test_the_issue_example_is_knocked_out_twice() -> None:
    facts = replace(GOOD, amount=D("5000000.00"), monthly_income=D("1000.00"), purpose="炒股")
    codes = [r.code for r in knock_outs(run_checks(facts))]
    assert codes == ["purpose", "borrowing_caps"]


def test_the_rules_are_data() -> None:
    strict = IntakeRules(min_age=21, platform_cap=D("50000.00"))
    assert result(replace(GOOD, birth_date=date(2006, 1, 1)), "age").outcome == Outcome.PASS
    assert run_checks(replace(GOOD, birth_date=date(2006, 1, 1)), strict)[0].outcome == (
        Outcome.FAIL
    )
    assert run_checks(replace(GOOD, amount=D("50000.01")), strict)[5].outcome == Outcome.FAIL


@pytest.mark.parametrize(
    ("purpose", "category"),
    [
        ("店铺装修", "home_improvement"),
        ("孩子学费", "education"),
        ("住院手术", "medical"),
        ("进货周转", "business"),
        ("买手机", "consumption"),
        ("炒股", "securities"),
        ("购房首付", "home_purchase"),
        ("赌博", "prohibited"),
    ],
)
def test_purpose_categories_are_the_scorecards(purpose: str, category: str) -> None:
    from domain.scorecard import SCORECARD_V1

    assert purpose_category(purpose) == category
    assert category in {p.category for p in SCORECARD_V1.purpose_bands}


def test_the_rules_round_trip_as_data_and_refuse_nonsense() -> None:
    rules = IntakeRules(min_age=21, platform_cap=D("50000.00"))
    assert IntakeRules.from_rules(rules.rules()) == rules
    with pytest.raises(ValueError, match=r"^intake.max_age: must not be below min_age"):
        IntakeRules(min_age=30, max_age=25)
    with pytest.raises(ValueError, match=r"^intake.required_documents\[0\]: 'selfie'"):
        IntakeRules(required_documents=("selfie",))
    with pytest.raises(ValueError, match=r"^rules.intake.min_age: is missing"):
        IntakeRules.from_rules({k: v for k, v in rules.rules().items() if k != "min_age"})
