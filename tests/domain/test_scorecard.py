"""Scorecard: every band boundary, every knock-out, the recommendation table, top reasons,
determinism for a fixed version, the JSON round trip, and invalid cards refused by field.

The oracle is the card v1 written out again below as literal tables, looked up by bisection
(not by the module's scan), with DTI computed exactly in Fraction and rounded half-up by hand.
"""

import dataclasses
import json
import math
import re
from bisect import bisect_right
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.scorecard import (
    KO_AGE_OUT_OF_BOUNDS,
    KO_BLACKLIST,
    KO_CAPS_EXCEEDED,
    KO_DTI_OVER_LIMIT,
    KO_PROHIBITED_PURPOSE,
    KO_SEVERE_DELINQUENCY,
    SCORECARD_V1,
    Recommendation,
    Scorecard,
    ScoreInputs,
    ScoreResult,
    score,
)

D = Decimal
V1 = SCORECARD_V1

# Card v1 written out again by hand: attribute → [(lower bound, points, reason)].
ORACLE: dict[str, list[tuple[str, int, str]]] = {
    "dti": [
        ("0", 80, "DTI_LOW"),
        ("0.20", 65, "DTI_MODERATE"),
        ("0.35", 45, "DTI_ELEVATED"),
        ("0.50", 20, "DTI_HIGH"),
        ("0.60", 0, "DTI_VERY_HIGH"),
    ],
    "monthly_income": [
        ("0", 0, "INCOME_VERY_LOW"),
        ("3000", 15, "INCOME_LOW"),
        ("5000", 30, "INCOME_MODEST"),
        ("8000", 40, "INCOME_MIDDLE"),
        ("15000", 50, "INCOME_HIGH"),
    ],
    "employment_years": [
        ("0", 5, "EMPLOYMENT_UNDER_1Y"),
        ("1", 20, "EMPLOYMENT_1_3Y"),
        ("3", 30, "EMPLOYMENT_3_5Y"),
        ("5", 40, "EMPLOYMENT_5Y_PLUS"),
    ],
    "age": [
        ("0", 0, "AGE_UNDER_22"),
        ("22", 15, "AGE_22_24"),
        ("25", 30, "AGE_25_34"),
        ("35", 35, "AGE_35_49"),
        ("50", 20, "AGE_50_PLUS"),
    ],
    "delinquencies_24m": [
        ("0", 80, "DELINQ_NONE"),
        ("1", 45, "DELINQ_ONE"),
        ("2", 20, "DELINQ_TWO"),
        ("3", 0, "DELINQ_THREE_PLUS"),
    ],
    "enquiries_6m": [
        ("0", 40, "ENQUIRIES_0_2"),
        ("3", 25, "ENQUIRIES_3_5"),
        ("6", 10, "ENQUIRIES_6_9"),
        ("10", 0, "ENQUIRIES_10_PLUS"),
    ],
    "other_platform_loans": [
        ("0", 40, "PLATFORMS_NONE"),
        ("1", 30, "PLATFORMS_1_2"),
        ("3", 10, "PLATFORMS_3_4"),
        ("5", 0, "PLATFORMS_5_PLUS"),
    ],
}
EMPLOYMENT_UNKNOWN = (0, "EMPLOYMENT_UNKNOWN")
PURPOSES = {
    "education": (30, "PURPOSE_EDUCATION"),
    "medical": (30, "PURPOSE_MEDICAL"),
    "home_improvement": (25, "PURPOSE_HOME_IMPROVEMENT"),
    "consumption": (20, "PURPOSE_CONSUMPTION"),
    "business": (10, "PURPOSE_BUSINESS"),
    "prohibited": (0, "PURPOSE_PROHIBITED"),
    "home_purchase": (0, "PURPOSE_HOME_PURCHASE"),
    "securities": (0, "PURPOSE_SECURITIES"),
}
PROHIBITED = ("prohibited", "home_purchase", "securities")
BASE = 400
GRADES = [("A", 700, "0.0092"), ("B", 650, "0.0216"), ("C", 600, "0.0500"), ("D", 550, "0.1113")]
GRADE_E_PD = "0.2294"
STEP = {"dti": D("0.0001"), "monthly_income": D("0.01")}  # the others are whole numbers
FIELD = {  # attribute → the card field holding its bands
    "dti": "dti_bands",
    "monthly_income": "income_bands",
    "employment_years": "employment_bands",
    "age": "age_bands",
    "delinquencies_24m": "delinquency_bands",
    "enquiries_6m": "enquiry_bands",
    "other_platform_loans": "platform_bands",
}

BEST: dict[str, Any] = dict(  # every attribute in its best band: 400 + 395 = 795, grade A
    monthly_income=D("20000.00"),
    monthly_debt_payments=D("0.00"),
    new_monthly_payment=D("1000.00"),  # DTI 0.05
    requested_amount=D("20000.00"),
    employment_years=6,
    age=40,
    delinquencies_24m=0,
    max_days_past_due_24m=0,
    enquiries_6m=0,
    other_platform_loans=0,
    purpose_category="education",
    intake_knockouts=(),
)


def make(**changes: Any) -> ScoreInputs:
    return ScoreInputs(**{**BEST, **changes})


def reasons(result: ScoreResult) -> dict[str, str]:
    return {a.attribute: a.reason for a in result.attributes}


def oracle_dti(x: ScoreInputs) -> Decimal:
    if x.monthly_income == 0:
        return D("Infinity")
    exact = Fraction(x.monthly_debt_payments + x.new_monthly_payment) / Fraction(x.monthly_income)
    tenth_thousandths = math.floor(exact * 10000 + Fraction(1, 2))  # half-up, exact ≥ 0
    return D(tenth_thousandths).scaleb(-4)


def oracle_band(attribute: str, value: Decimal) -> tuple[int, str]:
    table = ORACLE[attribute]
    i = bisect_right([D(lower) for lower, _p, _r in table], value) - 1
    return table[i][1], table[i][2]


def oracle_score(x: ScoreInputs) -> tuple[int, list[str]]:
    """(score, knock-out codes) for card v1, by the tables above."""
    dti = oracle_dti(x)
    values: dict[str, Decimal | None] = {
        "dti": dti,
        "monthly_income": x.monthly_income,
        "employment_years": None if x.employment_years is None else D(x.employment_years),
        "age": D(x.age),
        "delinquencies_24m": D(x.delinquencies_24m),
        "enquiries_6m": D(x.enquiries_6m),
        "other_platform_loans": D(x.other_platform_loans),
    }
    total = BASE + PURPOSES[x.purpose_category][0]
    for attribute, value in values.items():
        total += EMPLOYMENT_UNKNOWN[0] if value is None else oracle_band(attribute, value)[0]
    kos = []
    if "age" in x.intake_knockouts:
        kos.append(KO_AGE_OUT_OF_BOUNDS)
    if "purpose" in x.intake_knockouts:
        kos.append(KO_PROHIBITED_PURPOSE)
    if "blacklist" in x.intake_knockouts:
        kos.append(KO_BLACKLIST)
    if "borrowing_caps" in x.intake_knockouts:
        kos.append(KO_CAPS_EXCEEDED)
    if dti > D("0.70"):
        kos.append(KO_DTI_OVER_LIMIT)
    if x.max_days_past_due_24m >= 90:
        kos.append(KO_SEVERE_DELINQUENCY)
    return total, kos


def with_value(attribute: str, value: Decimal) -> ScoreInputs:
    """The best applicant, except `attribute` = value (DTI through this loan's payment)."""
    if attribute == "dti":
        return make(new_monthly_payment=value * BEST["monthly_income"])
    if attribute == "monthly_income":
        return make(monthly_income=value, new_monthly_payment=D("0.00"))
    if attribute == "delinquencies_24m":
        return make(delinquencies_24m=int(value), max_days_past_due_24m=1 if value else 0)
    return make(**{attribute: int(value)})


# --- the card is the table -------------------------------------------------------------------


def test_card_v1_is_the_table() -> None:
    for attribute, field in FIELD.items():
        bands = getattr(V1, field)
        assert [(b.lower, b.points, b.reason) for b in bands] == [
            (D(lower), points, reason) for lower, points, reason in ORACLE[attribute]
        ]
        assert all(b.label for b in bands)
    assert (V1.employment_unknown.points, V1.employment_unknown.reason) == EMPLOYMENT_UNKNOWN
    assert {p.category: (p.points, p.reason) for p in V1.purpose_bands} == PURPOSES
    assert {c for c in PURPOSES if PURPOSES[c][0] == 0} == set(PROHIBITED)
    assert [(g.grade, g.min_score, g.pd) for g in V1.grades] == [
        *((name, floor, D(pd)) for name, floor, pd in GRADES),
        ("E", 0, D(GRADE_E_PD)),
    ]
    assert (
        V1.base_points,
        V1.intake.min_age,
        V1.intake.max_age,
        V1.max_dti,
        V1.severe_days_past_due,
    ) == (
        BASE,
        18,
        60,
        D("0.70"),
        90,
    )
    dti_high = next(b for b in V1.dti_bands if b.reason == "DTI_HIGH")
    assert dti_high.label == "借款后负债收入比 50%–60%"


def test_grade_pds_follow_the_documented_scale() -> None:
    # PD(s) = 1 / (1 + 19 · 2^((s − 600) / 40)) at each floor, E at 500; 4 places.
    def pd(s: int) -> Decimal:
        return D(str(round(1 / (1 + 19 * 2 ** ((s - 600) / 40)), 4)))

    for name, floor, expected in GRADES:
        assert pd(floor) == D(expected), name
    assert pd(500) == D(GRADE_E_PD)


def test_best_applicant() -> None:
    result = score(make(), V1)
    assert (result.score, result.grade, result.pd) == (795, "A", D("0.0092"))
    assert result.recommendation is Recommendation.APPROVE
    assert result.knockouts == () and result.top_reasons == ()
    assert all(a.shortfall == 0 for a in result.attributes)
    assert result.card_version == 1


# --- every band boundary ---------------------------------------------------------------------

BOUNDARIES = [(attribute, i) for attribute, table in ORACLE.items() for i in range(1, len(table))]


@pytest.mark.parametrize(("attribute", "i"), BOUNDARIES)
def test_band_boundary(attribute: str, i: int) -> None:
    lower = D(ORACLE[attribute][i][0])
    at = score(with_value(attribute, lower), V1)
    below = score(with_value(attribute, lower - STEP.get(attribute, D(1))), V1)
    assert reasons(at)[attribute] == ORACLE[attribute][i][2]
    assert reasons(below)[attribute] == ORACLE[attribute][i - 1][2]
    assert at.score - below.score == ORACLE[attribute][i][1] - ORACLE[attribute][i - 1][1]


@pytest.mark.parametrize("attribute", list(ORACLE))
def test_first_and_last_bands_are_open(attribute: str) -> None:
    assert reasons(score(with_value(attribute, D(0)), V1))[attribute] == ORACLE[attribute][0][2]
    far = D(ORACLE[attribute][-1][0]) * 3 + 1
    if attribute == "dti":
        far = D("9.5")  # 190,000 a month against 20,000 of income
    assert reasons(score(with_value(attribute, far), V1))[attribute] == ORACLE[attribute][-1][2]


def test_dti_is_quantized_half_up_before_banding() -> None:
    # 0.19995 → 0.2000 (DTI_MODERATE); 0.199949… → 0.1999 (DTI_LOW)
    half = make(monthly_income=D("20000.00"), new_monthly_payment=D("3999.00"))
    assert score(half, V1).dti == D("0.2000")  # 3999 / 20000 = 0.19995
    assert reasons(score(half, V1))["dti"] == "DTI_MODERATE"
    under = make(monthly_income=D("20000.01"), new_monthly_payment=D("3999.00"))
    assert score(under, V1).dti == D("0.1999")
    assert reasons(score(under, V1))["dti"] == "DTI_LOW"


def test_dti_counts_existing_debt_and_this_loan() -> None:
    x = make(
        monthly_income=D("8000.00"),
        monthly_debt_payments=D("2000.00"),
        new_monthly_payment=D("1200.00"),
    )
    assert score(x, V1).dti == D("0.4000")


def test_unknown_employment_and_every_purpose() -> None:
    result = score(make(employment_years=None), V1)
    assert reasons(result)["employment_years"] == "EMPLOYMENT_UNKNOWN"
    assert result.score == 795 - 40
    for category, (points, reason) in PURPOSES.items():
        result = score(make(purpose_category=category), V1)
        assert reasons(result)["purpose_category"] == reason
        assert result.score == 795 - 30 + points


# --- every knock-out, alone ------------------------------------------------------------------

KNOCKOUTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (code, the last value that passes, the first that knocks out)
    # The intake checks' knock-outs arrive as their outcome (domain.intake judged them, at their
    # boundaries: tests/domain/test_intake.py); the card lists them, never judges them again.
    (KO_AGE_OUT_OF_BOUNDS, {"age": 17}, {"age": 17, "intake_knockouts": ("age",)}),
    (KO_BLACKLIST, {}, {"intake_knockouts": ("blacklist",)}),
    (
        KO_DTI_OVER_LIMIT,
        {"new_monthly_payment": D("14000.00")},  # 0.7000
        {"new_monthly_payment": D("14002.00")},  # 0.7001
    ),
    (KO_CAPS_EXCEEDED, {}, {"intake_knockouts": ("borrowing_caps",)}),
    (
        KO_SEVERE_DELINQUENCY,
        {"delinquencies_24m": 1, "max_days_past_due_24m": 89},
        {"delinquencies_24m": 1, "max_days_past_due_24m": 90},
    ),
    (
        KO_PROHIBITED_PURPOSE,
        {"purpose_category": "business"},
        {"purpose_category": "business", "intake_knockouts": ("purpose",)},
    ),
]


@pytest.mark.parametrize(("code", "passes", "knocks_out"), KNOCKOUTS)
def test_knockout_alone(code: str, passes: dict[str, Any], knocks_out: dict[str, Any]) -> None:
    ok = score(make(**passes), V1)
    assert ok.knockouts == ()
    ko = score(make(**knocks_out), V1)
    assert [k.code for k in ko.knockouts] == [code]
    assert ko.knockouts[0].message
    assert ko.recommendation is Recommendation.DECLINE
    assert ko.top_reasons[0] == code
    assert ok.recommendation is not Recommendation.DECLINE  # the rest of the applicant is fine


@pytest.mark.parametrize("category", PROHIBITED)
def test_a_prohibited_category_scores_nothing_and_is_knocked_out_by_intake_alone(
    category: str,
) -> None:
    """The purpose's points come from the card; whether it is prohibited, from the intake
    rules (one rule set): the category alone knocks nothing out."""
    result = score(make(purpose_category=category), V1)
    assert reasons(result)["purpose_category"] == PURPOSES[category][1]
    assert PURPOSES[category][0] == 0 and result.knockouts == ()


def test_no_income_is_an_infinite_dti_and_a_knockout() -> None:
    result = score(make(monthly_income=D("0.00")), V1)
    assert result.dti == D("Infinity")
    assert [k.code for k in result.knockouts] == [KO_DTI_OVER_LIMIT]
    assert "无穷大" in result.knockouts[0].message
    assert reasons(result)["dti"] == "DTI_VERY_HIGH"
    assert reasons(result)["monthly_income"] == "INCOME_VERY_LOW"
    no_debt_at_all = make(monthly_income=D("0.00"), new_monthly_payment=D("0.00"))
    assert score(no_debt_at_all, V1).dti == D("Infinity")  # no income is never a low DTI


def test_every_knockout_at_once_in_order() -> None:
    x = make(
        age=70,
        monthly_income=D("1000.00"),
        delinquencies_24m=4,
        max_days_past_due_24m=180,
        purpose_category="securities",
        intake_knockouts=("borrowing_caps", "purpose", "blacklist", "age"),
    )
    codes = [k.code for k in score(x, V1).knockouts]
    assert codes == [
        KO_AGE_OUT_OF_BOUNDS,
        KO_PROHIBITED_PURPOSE,
        KO_BLACKLIST,
        KO_CAPS_EXCEEDED,
        KO_DTI_OVER_LIMIT,
        KO_SEVERE_DELINQUENCY,
    ]
    assert list(score(x, V1).top_reasons[:6]) == codes


# --- grades and the recommendation table -----------------------------------------------------


@pytest.mark.parametrize(
    ("total", "grade", "pd", "recommendation"),
    [
        (795, "A", "0.0092", Recommendation.APPROVE),
        (700, "A", "0.0092", Recommendation.APPROVE),
        (699, "B", "0.0216", Recommendation.APPROVE),
        (650, "B", "0.0216", Recommendation.APPROVE),
        (649, "C", "0.0500", Recommendation.REVIEW),
        (600, "C", "0.0500", Recommendation.REVIEW),
        (599, "D", "0.1113", Recommendation.DECLINE),
        (550, "D", "0.1113", Recommendation.DECLINE),
        (549, "E", "0.2294", Recommendation.DECLINE),
        (395, "E", "0.2294", Recommendation.DECLINE),
    ],
)
def test_grade_cutoffs_and_recommendation(
    total: int, grade: str, pd: str, recommendation: Recommendation
) -> None:
    card = dataclasses.replace(V1, base_points=total - 395)  # the best applicant has 395 points
    result = score(make(), card)
    assert (result.score, result.grade, result.pd) == (total, grade, D(pd))
    assert result.recommendation is recommendation
    knocked_out = score(make(intake_knockouts=("blacklist",)), card)
    assert (knocked_out.grade, knocked_out.recommendation) == (grade, Recommendation.DECLINE)


# --- a worked example, by hand ---------------------------------------------------------------

WORKED = dict(
    monthly_income=D("6000.00"),
    monthly_debt_payments=D("1500.00"),
    new_monthly_payment=D("1200.00"),
    employment_years=2,
    age=23,
    delinquencies_24m=1,
    max_days_past_due_24m=15,
    enquiries_6m=4,
    other_platform_loans=2,
    purpose_category="consumption",
)


def test_worked_example_by_hand() -> None:
    # DTI (1500 + 1200) / 6000 = 0.45  → DTI_ELEVATED        45 (best 80: short 35)
    # income 6000                       → INCOME_MODEST       30 (best 50: short 20)
    # employed 2 years                  → EMPLOYMENT_1_3Y     20 (best 40: short 20)
    # age 23                            → AGE_22_24           15 (best 35: short 20)
    # 1 delinquency                     → DELINQ_ONE          45 (best 80: short 35)
    # 4 enquiries                       → ENQUIRIES_3_5       25 (best 40: short 15)
    # 2 other platforms                 → PLATFORMS_1_2       30 (best 40: short 10)
    # consumption                       → PURPOSE_CONSUMPTION 20 (best 30: short 10)
    # 400 + 45 + 30 + 20 + 15 + 45 + 25 + 30 + 20 = 630 → C (600–649), PD 5 %, review.
    result = score(make(**WORKED), V1)
    assert result.dti == D("0.4500")
    assert [(a.reason, a.points, a.shortfall) for a in result.attributes] == [
        ("DTI_ELEVATED", 45, 35),
        ("INCOME_MODEST", 30, 20),
        ("EMPLOYMENT_1_3Y", 20, 20),
        ("AGE_22_24", 15, 20),
        ("DELINQ_ONE", 45, 35),
        ("ENQUIRIES_3_5", 25, 15),
        ("PLATFORMS_1_2", 30, 10),
        ("PURPOSE_CONSUMPTION", 20, 10),
    ]
    assert (result.score, result.grade, result.pd) == (630, "C", D("0.0500"))
    assert result.recommendation is Recommendation.REVIEW
    assert result.knockouts == ()
    # Shortfalls 35, 35, then a three-way tie at 20: attribute order breaks ties, 4 kept.
    assert result.top_reasons == ("DTI_ELEVATED", "DELINQ_ONE", "INCOME_MODEST", "EMPLOYMENT_1_3Y")


def test_top_reasons_put_every_knockout_first() -> None:
    result = score(make(**WORKED, intake_knockouts=("blacklist", "borrowing_caps")), V1)
    assert result.score == 630 and result.recommendation is Recommendation.DECLINE
    assert result.top_reasons == (
        KO_BLACKLIST,
        KO_CAPS_EXCEEDED,
        "DTI_ELEVATED",
        "DELINQ_ONE",
        "INCOME_MODEST",
        "EMPLOYMENT_1_3Y",
    )


def test_top_reasons_only_name_bands_that_cost_points() -> None:
    result = score(make(enquiries_6m=3), V1)
    assert result.top_reasons == ("ENQUIRIES_3_5",)
    two = score(make(**WORKED), dataclasses.replace(V1, top_reason_count=2))
    assert two.top_reasons == ("DTI_ELEVATED", "DELINQ_ONE")


# --- properties: oracle, determinism, monotonicity -------------------------------------------

fen = st.integers(min_value=0, max_value=5_000_000).map(lambda n: D(n).scaleb(-2))


@st.composite
def applications(draw: st.DrawFn) -> ScoreInputs:
    delinquencies = draw(st.integers(0, 6))
    return ScoreInputs(
        monthly_income=draw(st.one_of(st.just(D("0.00")), fen)),
        monthly_debt_payments=draw(fen),
        new_monthly_payment=draw(fen),
        requested_amount=draw(fen.filter(lambda a: a > 0)),
        employment_years=draw(st.one_of(st.none(), st.integers(0, 45))),
        age=draw(st.integers(0, 100)),
        delinquencies_24m=delinquencies,
        max_days_past_due_24m=draw(st.integers(0, 400)) if delinquencies else 0,
        enquiries_6m=draw(st.integers(0, 30)),
        other_platform_loans=draw(st.integers(0, 20)),
        purpose_category=draw(st.sampled_from(sorted(PURPOSES))),
        intake_knockouts=tuple(
            draw(
                st.lists(
                    st.sampled_from(["age", "purpose", "blacklist", "borrowing_caps"]), unique=True
                )
            )
        ),
    )


def _no_floats(value: object) -> bool:
    if isinstance(value, float):
        return False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_no_floats(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple):
        return all(_no_floats(v) for v in value)
    return True


@given(applications())
@settings(max_examples=300, deadline=None)
def test_score_matches_the_oracle(x: ScoreInputs) -> None:
    result = score(x, V1)
    total, kos = oracle_score(x)
    assert result.dti == oracle_dti(x)
    assert result.score == total
    assert [k.code for k in result.knockouts] == kos
    grade = next((name for name, floor, _pd in GRADES if total >= floor), "E")
    assert result.grade == grade
    expected = (
        Recommendation.DECLINE
        if kos or grade in ("D", "E")
        else Recommendation.REVIEW
        if grade == "C"
        else Recommendation.APPROVE
    )
    assert result.recommendation is expected
    assert result.top_reasons[: len(kos)] == tuple(kos)
    shortfalls = [a.shortfall for a in result.attributes]
    costly = result.top_reasons[len(kos) :]
    assert len(costly) == min(4, sum(1 for s in shortfalls if s > 0))
    by_reason = {a.reason: a.shortfall for a in result.attributes}
    kept = [by_reason[r] for r in costly]
    assert kept == sorted(kept, reverse=True)
    assert all(s <= min(kept) for r, s in by_reason.items() if r not in costly) if kept else True
    assert _no_floats(result)


ROUND_TRIP = Scorecard.from_rules(
    version=V1.version,
    effective_from=V1.effective_from,
    source=V1.source,
    rules=json.loads(json.dumps(V1.rules())),
)


@given(applications())
@settings(max_examples=100, deadline=None)
def test_same_inputs_and_version_give_the_same_result(x: ScoreInputs) -> None:
    first = score(x, V1)
    assert score(x, V1) == first
    assert score(dataclasses.replace(x), ROUND_TRIP) == first
    assert first.card_version == 1


def _worse_ways() -> list[tuple[str, Callable[[ScoreInputs, int], ScoreInputs]]]:
    cents = D("0.01")
    return [
        ("debt", lambda x, k: dataclasses.replace(x, monthly_debt_payments=x.monthly_debt_payments + k * cents)),
        ("payment", lambda x, k: dataclasses.replace(x, new_monthly_payment=x.new_monthly_payment + k * cents)),
        ("income", lambda x, k: dataclasses.replace(x, monthly_income=max(D("0.00"), x.monthly_income - k * cents))),
        ("employment", lambda x, k: dataclasses.replace(x, employment_years=None if x.employment_years is None or k % 7 == 0 else max(0, x.employment_years - k % 50))),
        ("delinquencies", lambda x, k: dataclasses.replace(x, delinquencies_24m=x.delinquencies_24m + k % 10)),
        ("days past due", lambda x, k: dataclasses.replace(x, delinquencies_24m=max(1, x.delinquencies_24m), max_days_past_due_24m=x.max_days_past_due_24m + k % 400)),
        ("enquiries", lambda x, k: dataclasses.replace(x, enquiries_6m=x.enquiries_6m + k % 30)),
        ("platforms", lambda x, k: dataclasses.replace(x, other_platform_loans=x.other_platform_loans + k % 20)),
        ("blacklisted", lambda x, k: dataclasses.replace(x, intake_knockouts=tuple({*x.intake_knockouts, "blacklist"}))),
        ("caps", lambda x, k: dataclasses.replace(x, intake_knockouts=tuple({*x.intake_knockouts, "borrowing_caps"}))),
    ]  # fmt: skip


RANK = {Recommendation.APPROVE: 2, Recommendation.REVIEW: 1, Recommendation.DECLINE: 0}


@given(applications(), st.sampled_from(_worse_ways()), st.integers(1, 2_000_000))
@settings(max_examples=400, deadline=None)
def test_worsening_one_input_never_helps(
    x: ScoreInputs, way: tuple[str, Callable[[ScoreInputs, int], ScoreInputs]], k: int
) -> None:
    _name, worsen = way
    before, after = score(x, V1), score(worsen(x, k), V1)
    assert after.score <= before.score
    assert RANK[after.recommendation] <= RANK[before.recommendation]
    assert {ko.code for ko in before.knockouts} <= {ko.code for ko in after.knockouts}


# --- the card as data ------------------------------------------------------------------------


def test_json_round_trip() -> None:
    rules = V1.rules()
    text = json.dumps(rules, ensure_ascii=False)
    assert ROUND_TRIP == V1
    assert json.loads(text) == rules  # only JSON types: Decimals are strings
    assert rules["dti_bands"][3] == {
        "lower": "0.50",
        "points": 20,
        "reason": "DTI_HIGH",
        "label": "借款后负债收入比 50%–60%",
    }
    assert rules["employment_unknown"]["lower"] is None
    assert "version" not in rules and "effective_from" not in rules
    v2 = Scorecard.from_rules(
        version=2, effective_from=V1.effective_from, source="test", rules=rules
    )
    assert score(make(**WORKED), v2).card_version == 2
    assert dataclasses.replace(score(make(**WORKED), v2), card_version=1) == score(
        make(**WORKED), V1
    )


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(rules: dict[str, Any]) -> None:
        *parents, last = re.split(r"\.|\[|\]\.?", path.rstrip("]"))
        target: Any = rules
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return edit


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda rules: rules.pop(name)


INVALID: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_set("dti_bands[2].lower", "0.20"), "dti_bands[2].lower: must be greater than the band"),
    (_set("dti_bands[3].lower", "0.30"), "dti_bands[3].lower: must be greater than the band"),
    (_set("income_bands[0].lower", "100"), "income_bands[0].lower: the first band must start"),
    (_set("age_bands[1].lower", "22.5"), "age_bands[1].lower: must be a whole number"),
    (_set("dti_bands[1].lower", "abc"), "dti_bands[1].lower: must be a decimal number"),
    (_set("dti_bands[1].lower", None), "dti_bands[1].lower: must be a finite Decimal"),
    (_set("dti_bands", []), "dti_bands: must be a non-empty tuple"),
    (_set("dti_bands[0].points", "ten"), "dti_bands[0].points: must be a whole number"),
    (_set("dti_bands[0].points", True), "dti_bands[0].points: must be a whole number"),
    (_set("dti_bands[0].reason", "dti low"), "dti_bands[0].reason: must be an UPPER_SNAKE"),
    (_set("dti_bands[0].reason", "KO_DTI"), "dti_bands[0].reason: KO_ codes are reserved"),
    (_set("income_bands[0].reason", "DTI_LOW"), "income_bands[0].reason: DTI_LOW is used"),
    (_set("enquiry_bands[0].label", " "), "enquiry_bands[0].label: must not be empty"),
    (_set("employment_unknown.lower", "0"), "employment_unknown.lower: must be null"),
    (_set("purpose_bands[1].category", "education"), "purpose_bands[1].category: 'education'"),
    (_set("purpose_bands[0].category", "Education"), "purpose_bands[0].category: must be"),
    (_set("purpose_bands[5].category", "forbidden"), "purpose_bands: the purpose category 'pro"),
    (_set("grades[1].min_score", 700), "grades[1].min_score: must be below the grade before"),
    (_set("grades[2].pd", "0.01"), "grades[2].pd: must be greater than the grade before"),
    (_set("grades[0].pd", "1"), "grades[0].pd: must be a Decimal fraction"),
    (_set("grades[0].pd", "0"), "grades[0].pd: must be a Decimal fraction"),
    (_set("grades[4].min_score", 401), "grades[4].min_score: must be at most 400"),
    (_set("grades[3].grade", "A"), "grades[3].grade: 'A' is listed twice"),
    (_set("grades", []), "grades: must be a non-empty tuple"),
    (_set("approve_grades", ["A", "F"]), "approve_grades[1]: 'F' is not a grade"),
    (_set("review_grades", ["B"]), "review_grades[0]: 'B' is also an approve grade"),
    (_set("intake.min_age", 16), "intake.min_age: must be at least 18"),
    (_set("intake.max_age", 17), "intake.max_age: must not be below min_age"),
    (_set("intake.min_age", "18"), "rules.intake.min_age: must be a whole number"),
    (_set("intake.platform_cap", "0"), "intake.platform_cap: must be greater than 0"),
    (_set("intake.total_cap", "1000.00"), "intake.total_cap: must not be below platform_cap"),
    (_set("intake.required_documents", ["passport"]), "intake.required_documents[0]: 'passport'"),
    (_set("intake.prohibited_purposes.gambling", []), "intake.prohibited_purposes.gambling: must"),
    (_set("intake.prohibited_purposes", {}), "intake.prohibited_purposes: must name at least"),
    (_set("intake.extra", 1), "rules.intake.extra: is not an intake rule"),
    (_drop("intake"), "rules.intake: is missing"),
    (_set("max_dti", "0"), "max_dti: must be a finite Decimal greater than 0"),
    (_set("max_dti", "Infinity"), "max_dti: must be a finite number"),
    (_set("severe_days_past_due", 0), "severe_days_past_due: must be at least 1"),
    (_set("top_reason_count", 0), "top_reason_count: must be at least 1"),
    (_set("base_points", 1.5), "base_points: must be a whole number"),
    (_set("extra", 1), "rules.extra: is not a scorecard rule"),
    (_drop("max_dti"), "rules.max_dti: is missing"),
    (_set("dti_bands[0]", {"lower": "0", "points": 80}), "dti_bands[0].reason: is missing"),
    (_set("dti_bands[0].colour", "red"), "dti_bands[0].colour: is not a field"),
]


@pytest.mark.parametrize(("edit", "message"), INVALID)
def test_invalid_cards_are_refused_naming_the_field(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    rules = json.loads(json.dumps(V1.rules()))
    edit(rules)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Scorecard.from_rules(version=1, effective_from=V1.effective_from, source="t", rules=rules)


def test_invalid_header_and_direct_construction() -> None:
    with pytest.raises(ValueError, match=r"^version: must be at least 1"):
        dataclasses.replace(V1, version=0)
    swapped = (V1.dti_bands[0], V1.dti_bands[2], V1.dti_bands[1], *V1.dti_bands[3:])
    with pytest.raises(ValueError, match=r"^dti_bands\[2\].lower: must be greater"):
        dataclasses.replace(V1, dti_bands=swapped)


# --- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"monthly_income": 5000.0}, "monthly_income: expected a Decimal"),
        ({"monthly_income": D("-1.00")}, "monthly_income: must not be negative"),
        ({"new_monthly_payment": D("1.005")}, "new_monthly_payment: 1.005 has more than 2"),
        ({"monthly_debt_payments": D("NaN")}, "monthly_debt_payments: must be a finite"),
        ({"requested_amount": D("0.00")}, "requested_amount: must be greater than 0"),
        ({"age": -1}, "age: must not be negative"),
        ({"age": True}, "age: must be a whole number"),
        ({"employment_years": -2}, "employment_years: must not be negative"),
        ({"enquiries_6m": 2.0}, "enquiries_6m: must be a whole number"),
        ({"max_days_past_due_24m": 30}, "max_days_past_due_24m: must be 0 when"),
        ({"purpose_category": ""}, "purpose_category: must be a non-empty"),
        ({"intake_knockouts": ["age"]}, "intake_knockouts: must be a tuple"),
        ({"intake_knockouts": ("dti",)}, "intake_knockouts: 'dti' is not an intake knock-out"),
    ],
)
def test_invalid_inputs_are_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        make(**changes)


def test_a_purpose_not_on_the_card_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^purpose_category: 'gambling' is not a purpose"):
        score(make(purpose_category="gambling"), V1)
