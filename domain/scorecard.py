"""Application scorecard: points by attribute bands, summed to a score, mapped to a grade and a
probability of default; knock-out rules; a recommendation and the top reason codes.

The scorecard is versioned policy data (``Scorecard``): a result records the version of the card
that produced it, and the same inputs with the same card always give the same result (``score``
is pure; Decimal and int throughout, no floats, no clock, no I/O).

Conventions:

* A numeric attribute's bands are given by increasing lower bounds, the first at 0. A value takes
  the last band whose lower bound it reaches: the value *at* a lower bound belongs to that band,
  anything below it to the band before.
* Debt-to-income (DTI) after this loan = (monthly_debt_payments + new_monthly_payment) /
  monthly_income, quantized to 4 places (a hundredth of a percent), half-up; bands and the DTI
  knock-out compare that quantized figure, the one the result shows. No income gives an infinite
  DTI (``Decimal('Infinity')``): the worst DTI band and the DTI knock-out.
* Knock-outs decline whatever the score. Those the intake checks judge (age outside the bounds, a
  prohibited purpose, the blacklist, borrowing caps exceeded: ``domain.intake``, with the rules
  this card carries in ``intake``) come in as ``ScoreInputs.intake_knockouts`` and are not judged
  a second time; the card adds its own two: DTI above max_dti (strictly) and worst days past due
  in 24 months at or above severe_days_past_due. One version, one set of rules.
* The grade is the first grade whose min_score the score reaches; its PD is the card's figure for
  that grade. Recommendation: any knock-out → decline; else the grade in approve_grades →
  approve, in review_grades → review, any other grade → decline.
* Top reasons: every knock-out code first (in the order above), then the band reason codes that
  cost the most points against that attribute's best band (ties in attribute order), at most
  top_reason_count of them, and only those that cost something.
"""

import re
from dataclasses import dataclass, fields
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from domain.intake import IntakeRules, scored_purpose_categories
from domain.money import decimal_rule
from domain.schedule import require_fen

DTI_QUANTUM = Decimal("0.0001")
INFINITE_DTI = Decimal("Infinity")

_REASON = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")

# Knock-out codes, in the order they are listed: the intake checks' (in their check order), then
# the card's own.
KO_AGE_OUT_OF_BOUNDS = "KO_AGE_OUT_OF_BOUNDS"
KO_PROHIBITED_PURPOSE = "KO_PROHIBITED_PURPOSE"
KO_BLACKLIST = "KO_BLACKLIST"
KO_CAPS_EXCEEDED = "KO_CAPS_EXCEEDED"
KO_DTI_OVER_LIMIT = "KO_DTI_OVER_LIMIT"
KO_SEVERE_DELINQUENCY = "KO_SEVERE_DELINQUENCY"
# The intake check (domain.intake code) behind each of its knock-outs, and the text for people.
INTAKE_KNOCKOUTS: dict[str, tuple[str, str]] = {
    "age": (KO_AGE_OUT_OF_BOUNDS, "年龄不在可借范围内"),
    "purpose": (KO_PROHIBITED_PURPOSE, "借款用途属禁止用途"),
    "blacklist": (KO_BLACKLIST, "借款人在黑名单上"),
    "borrowing_caps": (KO_CAPS_EXCEEDED, "本次借款将超过借款余额上限"),
}
KNOCKOUT_CODES = (
    *(code for code, _text in INTAKE_KNOCKOUTS.values()),
    KO_DTI_OVER_LIMIT,
    KO_SEVERE_DELINQUENCY,
)

# The numeric attributes, in scoring order: (card field, attribute name, values are whole numbers).
NUMERIC_ATTRIBUTES: tuple[tuple[str, str, bool], ...] = (
    ("dti_bands", "dti", False),
    ("income_bands", "monthly_income", False),
    ("employment_bands", "employment_years", True),
    ("age_bands", "age", True),
    ("delinquency_bands", "delinquencies_24m", True),
    ("enquiry_bands", "enquiries_6m", True),
    ("platform_bands", "other_platform_loans", True),
)
PURPOSE_ATTRIBUTE = "purpose_category"


class Recommendation(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


@dataclass(frozen=True)
class Band:
    """One band of a numeric attribute: values from `lower` up to the next band's lower bound
    (exclusive) score `points`, explained by `reason` (a code) and `label` (for people). `lower`
    is None only for the employment_unknown band (employment_years not given)."""

    lower: Decimal | None
    points: int
    reason: str
    label: str


@dataclass(frozen=True)
class PurposeBand:
    """The points of one loan purpose category."""

    category: str
    points: int
    reason: str
    label: str


@dataclass(frozen=True)
class Grade:
    """A grade: scores from min_score up (to the better grade's floor) and its PD (a fraction)."""

    grade: str
    min_score: int
    pd: Decimal


@dataclass(frozen=True)
class ScoreInputs:
    """What the scorecard looks at. Money is Decimal yuan with at most 2 decimals (floats are
    refused); counts and years are whole numbers ≥ 0. monthly_debt_payments are the existing
    obligations from the credit bureau; new_monthly_payment is this loan's largest installment;
    intake_knockouts are the codes of the intake checks that failed as knock-outs (``age``,
    ``purpose``, ``blacklist``, ``borrowing_caps``), judged by ``domain.intake`` on this card's
    ``intake`` rules.
    requested_amount is recorded for the decision file; the scorecard itself does not band it.
    Invalid inputs raise ValueError naming the field."""

    monthly_income: Decimal
    monthly_debt_payments: Decimal
    new_monthly_payment: Decimal
    requested_amount: Decimal
    employment_years: int | None
    age: int
    delinquencies_24m: int
    max_days_past_due_24m: int
    enquiries_6m: int
    other_platform_loans: int
    purpose_category: str
    intake_knockouts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require_fen("monthly_income", self.monthly_income)
        require_fen("monthly_debt_payments", self.monthly_debt_payments)
        require_fen("new_monthly_payment", self.new_monthly_payment)
        require_fen("requested_amount", self.requested_amount, positive=True)
        counts = (
            "age",
            "delinquencies_24m",
            "max_days_past_due_24m",
            "enquiries_6m",
            "other_platform_loans",
        )
        for name in (*counts, "employment_years"):
            value = getattr(self, name)
            if name == "employment_years" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: must be a whole number, got {value!r}")
            if value < 0:
                raise ValueError(f"{name}: must not be negative, got {value}")
        if self.delinquencies_24m == 0 and self.max_days_past_due_24m > 0:
            raise ValueError("max_days_past_due_24m: must be 0 when delinquencies_24m is 0")
        if not isinstance(self.purpose_category, str) or not self.purpose_category:
            raise ValueError("purpose_category: must be a non-empty category name")
        if not isinstance(self.intake_knockouts, tuple):
            raise ValueError("intake_knockouts: must be a tuple of intake check codes")
        for code in self.intake_knockouts:
            if code not in INTAKE_KNOCKOUTS:
                raise ValueError(
                    f"intake_knockouts: {code!r} is not an intake knock-out "
                    f"({', '.join(INTAKE_KNOCKOUTS)})"
                )


@dataclass(frozen=True)
class AttributeScore:
    """One attribute's band: the value scored, its points, reason code and label, and how many
    points it fell short of the attribute's best band (shortfall ≥ 0)."""

    attribute: str
    value: Decimal | int | str | None
    points: int
    reason: str
    label: str
    shortfall: int


@dataclass(frozen=True)
class Knockout:
    code: str
    message: str


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of ``score``: everything it used and decided, and the card version."""

    card_version: int
    dti: Decimal
    attributes: tuple[AttributeScore, ...]
    score: int
    grade: str
    pd: Decimal
    knockouts: tuple[Knockout, ...]
    recommendation: Recommendation
    top_reasons: tuple[str, ...]


@dataclass(frozen=True)
class Scorecard:
    """One version of the application scorecard. Frozen and validated on construction
    (ValueError naming the first field that makes no sense). ``rules``/``from_rules`` give its
    JSON form for storage as versioned data."""

    version: int
    effective_from: date
    source: str
    base_points: int
    dti_bands: tuple[Band, ...]
    income_bands: tuple[Band, ...]
    employment_bands: tuple[Band, ...]
    employment_unknown: Band
    age_bands: tuple[Band, ...]
    delinquency_bands: tuple[Band, ...]
    enquiry_bands: tuple[Band, ...]
    platform_bands: tuple[Band, ...]
    purpose_bands: tuple[PurposeBand, ...]
    grades: tuple[Grade, ...]
    max_dti: Decimal
    severe_days_past_due: int
    approve_grades: tuple[str, ...]
    review_grades: tuple[str, ...]
    # The thresholds of the automatic intake checks (age, documents, purpose, caps, income).
    intake: IntakeRules
    top_reason_count: int = 4

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the first field that makes no sense."""
        _whole("version", self.version, minimum=1)
        if not isinstance(self.effective_from, date):
            raise ValueError("effective_from: must be a date")
        _whole("base_points", self.base_points)
        reasons: set[str] = set()
        for name, _attribute, whole in NUMERIC_ATTRIBUTES:
            bands = getattr(self, name)
            if not isinstance(bands, tuple) or not bands:
                raise ValueError(f"{name}: must be a non-empty tuple of bands")
            previous: Decimal | None = None
            for i, band in enumerate(bands):
                where = f"{name}[{i}]"
                _check_band(where, band, reasons)
                lower = band.lower
                if lower is None or not isinstance(lower, Decimal) or not lower.is_finite():
                    raise ValueError(f"{where}.lower: must be a finite Decimal")
                if whole and lower != lower.to_integral_value():
                    raise ValueError(f"{where}.lower: must be a whole number")
                if previous is None and lower != 0:
                    raise ValueError(f"{where}.lower: the first band must start at 0")
                if previous is not None and lower <= previous:
                    raise ValueError(f"{where}.lower: must be greater than the band before")
                previous = lower
        _check_band("employment_unknown", self.employment_unknown, reasons)
        if self.employment_unknown.lower is not None:
            raise ValueError("employment_unknown.lower: must be null (it has no range)")
        if not isinstance(self.purpose_bands, tuple) or not self.purpose_bands:
            raise ValueError("purpose_bands: must be a non-empty tuple of purposes")
        categories: set[str] = set()
        for i, purpose in enumerate(self.purpose_bands):
            where = f"purpose_bands[{i}]"
            if not isinstance(purpose, PurposeBand):
                raise ValueError(f"{where}: must be a PurposeBand")
            if not isinstance(purpose.category, str) or not _CATEGORY.match(purpose.category):
                raise ValueError(f"{where}.category: must be a lower_snake_case name")
            if purpose.category in categories:
                raise ValueError(f"{where}.category: {purpose.category!r} is listed twice")
            categories.add(purpose.category)
            _check_points(where, purpose.points, purpose.reason, purpose.label, reasons)
        if not isinstance(self.intake, IntakeRules):
            raise ValueError("intake: must be IntakeRules")
        for category in scored_purpose_categories(self.intake):
            if category not in categories:
                raise ValueError(
                    f"purpose_bands: the purpose category {category!r} (from the intake rules' "
                    "purposes) has no band"
                )
        self._validate_grades()
        if (
            not isinstance(self.max_dti, Decimal)
            or not self.max_dti.is_finite()
            or self.max_dti <= 0
        ):
            raise ValueError("max_dti: must be a finite Decimal greater than 0")
        _whole("severe_days_past_due", self.severe_days_past_due, minimum=1)
        _whole("top_reason_count", self.top_reason_count, minimum=1)

    def _validate_grades(self) -> None:
        if not isinstance(self.grades, tuple) or not self.grades:
            raise ValueError("grades: must be a non-empty tuple of grades")
        names: set[str] = set()
        for i, grade in enumerate(self.grades):
            where = f"grades[{i}]"
            if not isinstance(grade, Grade):
                raise ValueError(f"{where}: must be a Grade")
            if not isinstance(grade.grade, str) or not grade.grade:
                raise ValueError(f"{where}.grade: must be a non-empty name")
            if grade.grade in names:
                raise ValueError(f"{where}.grade: {grade.grade!r} is listed twice")
            names.add(grade.grade)
            _whole(f"{where}.min_score", grade.min_score)
            if not isinstance(grade.pd, Decimal) or not 0 < grade.pd < 1:
                raise ValueError(f"{where}.pd: must be a Decimal fraction between 0 and 1")
            if i > 0:
                better = self.grades[i - 1]
                if grade.min_score >= better.min_score:
                    raise ValueError(f"{where}.min_score: must be below the grade before")
                if grade.pd <= better.pd:
                    raise ValueError(f"{where}.pd: must be greater than the grade before")
        lowest = self.lowest_score()
        if self.grades[-1].min_score > lowest:
            raise ValueError(
                f"grades[{len(self.grades) - 1}].min_score: must be at most {lowest}, "
                "the lowest score the card gives, so that every score has a grade"
            )
        for name in ("approve_grades", "review_grades"):
            for i, grade_name in enumerate(getattr(self, name)):
                if grade_name not in names:
                    raise ValueError(f"{name}[{i}]: {grade_name!r} is not a grade")
        for i, grade_name in enumerate(self.review_grades):
            if grade_name in self.approve_grades:
                raise ValueError(f"review_grades[{i}]: {grade_name!r} is also an approve grade")

    def lowest_score(self) -> int:
        """The lowest total the card can give (base plus every attribute's worst band)."""
        employment = [b.points for b in self.employment_bands] + [self.employment_unknown.points]
        return (
            self.base_points
            + sum(
                min(b.points for b in getattr(self, name))
                for name, _a, _w in NUMERIC_ATTRIBUTES
                if name != "employment_bands"
            )
            + min(employment)
            + min(p.points for p in self.purpose_bands)
        )

    def rules(self) -> dict[str, Any]:
        """The card without the version header, as JSON-friendly values (for storage)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _HEADER:
                continue
            out[f.name] = _to_json(getattr(self, f.name))
        return out

    @classmethod
    def from_rules(
        cls, *, version: int, effective_from: date, source: str, rules: dict[str, Any]
    ) -> "Scorecard":
        """The inverse of ``rules``. Every rule is required (a card is never half a default) and
        unknown keys are refused; ValueError naming the rule."""
        if not isinstance(rules, dict):
            raise ValueError("rules: must be an object")
        known = [f.name for f in fields(cls) if f.name not in _HEADER]
        for name in rules:
            if name not in known:
                raise ValueError(f"rules.{name}: is not a scorecard rule")
        kwargs: dict[str, Any] = {}
        for name in known:
            if name not in rules:
                raise ValueError(f"rules.{name}: is missing")
            raw = rules[name]
            if name.endswith("_bands") and name != "purpose_bands":
                kwargs[name] = tuple(
                    _band_from(f"{name}[{i}]", item) for i, item in enumerate(_list(name, raw))
                )
            elif name == "employment_unknown":
                kwargs[name] = _band_from(name, raw)
            elif name == "purpose_bands":
                kwargs[name] = tuple(
                    _purpose_from(f"{name}[{i}]", item) for i, item in enumerate(_list(name, raw))
                )
            elif name == "grades":
                kwargs[name] = tuple(
                    _grade_from(f"{name}[{i}]", item) for i, item in enumerate(_list(name, raw))
                )
            elif name == "intake":
                kwargs[name] = IntakeRules.from_rules(raw)
            elif name in ("approve_grades", "review_grades"):
                kwargs[name] = tuple(
                    _text(f"{name}[{i}]", item) for i, item in enumerate(_list(name, raw))
                )
            elif name == "max_dti":
                kwargs[name] = decimal_rule(name, raw)
            else:
                kwargs[name] = _int(name, raw)
        return cls(version=version, effective_from=effective_from, source=source, **kwargs)


_HEADER = ("version", "effective_from", "source")


def _whole(name: str, value: object, *, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be a whole number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")


def _check_points(
    where: str, points: object, reason: object, label: object, seen: set[str]
) -> None:
    _whole(f"{where}.points", points)
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise ValueError(f"{where}.reason: must be an UPPER_SNAKE_CASE code, got {reason!r}")
    if reason.startswith("KO_"):
        raise ValueError(f"{where}.reason: KO_ codes are reserved for knock-outs")
    if reason in seen:
        raise ValueError(f"{where}.reason: {reason} is used by another band")
    seen.add(reason)
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{where}.label: must not be empty")


def _check_band(where: str, band: object, seen: set[str]) -> None:
    if not isinstance(band, Band):
        raise ValueError(f"{where}: must be a Band")
    _check_points(where, band.points, band.reason, band.label, seen)


def _to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, IntakeRules):
        return value.rules()
    if isinstance(value, Band | PurposeBand | Grade):
        return {f.name: _to_json(getattr(value, f.name)) for f in fields(value)}
    return value


def _list(name: str, raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise ValueError(f"{name}: must be a list")
    return raw


def _object(name: str, raw: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{name}: must be an object")
    for key in raw:
        if key not in keys:
            raise ValueError(f"{name}.{key}: is not a field")
    for key in keys:
        if key not in raw:
            raise ValueError(f"{name}.{key}: is missing")
    return raw


def _int(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str | Decimal):
        raise ValueError(f"{name}: must be a whole number, not {raw!r}")
    try:
        whole = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"{name}: must be a whole number, not {raw!r}") from None
    if not whole.is_finite() or whole != whole.to_integral_value():
        raise ValueError(f"{name}: must be a whole number, not {raw!r}")
    return int(whole)


def _text(name: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{name}: must be a string, not {raw!r}")
    return raw


def _band_from(name: str, raw: Any) -> Band:
    obj = _object(name, raw, ("lower", "points", "reason", "label"))
    lower = obj["lower"]
    return Band(
        lower=None if lower is None else decimal_rule(f"{name}.lower", lower),
        points=_int(f"{name}.points", obj["points"]),
        reason=_text(f"{name}.reason", obj["reason"]),
        label=_text(f"{name}.label", obj["label"]),
    )


def _purpose_from(name: str, raw: Any) -> PurposeBand:
    obj = _object(name, raw, ("category", "points", "reason", "label"))
    return PurposeBand(
        category=_text(f"{name}.category", obj["category"]),
        points=_int(f"{name}.points", obj["points"]),
        reason=_text(f"{name}.reason", obj["reason"]),
        label=_text(f"{name}.label", obj["label"]),
    )


def _grade_from(name: str, raw: Any) -> Grade:
    obj = _object(name, raw, ("grade", "min_score", "pd"))
    return Grade(
        grade=_text(f"{name}.grade", obj["grade"]),
        min_score=_int(f"{name}.min_score", obj["min_score"]),
        pd=decimal_rule(f"{name}.pd", obj["pd"]),
    )


def debt_to_income(inputs: ScoreInputs) -> Decimal:
    """(existing monthly debt payments + this loan's payment) / monthly income, quantized to
    DTI_QUANTUM half-up; Decimal('Infinity') when there is no income."""
    if inputs.monthly_income == 0:
        return INFINITE_DTI
    ratio = (inputs.monthly_debt_payments + inputs.new_monthly_payment) / inputs.monthly_income
    return ratio.quantize(DTI_QUANTUM, rounding=ROUND_HALF_UP)


def _band_for(bands: tuple[Band, ...], value: Decimal) -> Band:
    chosen = bands[0]
    for band in bands:
        assert band.lower is not None  # validated
        if value >= band.lower:
            chosen = band
    return chosen


def score(inputs: ScoreInputs, card: Scorecard) -> ScoreResult:
    """Score one application on one card (see the module docstring for every convention).
    ValueError if the purpose category is not on the card."""
    dti = debt_to_income(inputs)
    values: dict[str, Decimal | int | None] = {
        "dti": dti,
        "monthly_income": inputs.monthly_income,
        "employment_years": inputs.employment_years,
        "age": inputs.age,
        "delinquencies_24m": inputs.delinquencies_24m,
        "enquiries_6m": inputs.enquiries_6m,
        "other_platform_loans": inputs.other_platform_loans,
    }
    attributes: list[AttributeScore] = []
    for name, attribute, _whole_values in NUMERIC_ATTRIBUTES:
        bands: tuple[Band, ...] = getattr(card, name)
        candidates = list(bands)
        value = values[attribute]
        if attribute == "employment_years":
            candidates.append(card.employment_unknown)
        band = card.employment_unknown if value is None else _band_for(bands, Decimal(value))
        best = max(b.points for b in candidates)
        attributes.append(
            AttributeScore(
                attribute=attribute,
                value=value,
                points=band.points,
                reason=band.reason,
                label=band.label,
                shortfall=best - band.points,
            )
        )
    purposes = {p.category: p for p in card.purpose_bands}
    purpose = purposes.get(inputs.purpose_category)
    if purpose is None:
        raise ValueError(
            f"purpose_category: {inputs.purpose_category!r} is not a purpose of "
            f"scorecard v{card.version}"
        )
    attributes.append(
        AttributeScore(
            attribute=PURPOSE_ATTRIBUTE,
            value=purpose.category,
            points=purpose.points,
            reason=purpose.reason,
            label=purpose.label,
            shortfall=max(p.points for p in card.purpose_bands) - purpose.points,
        )
    )
    total = card.base_points + sum(a.points for a in attributes)
    grade = next((g for g in card.grades if total >= g.min_score), card.grades[-1])
    knockouts = _knockouts(inputs, card, dti)
    if knockouts:
        recommendation = Recommendation.DECLINE
    elif grade.grade in card.approve_grades:
        recommendation = Recommendation.APPROVE
    elif grade.grade in card.review_grades:
        recommendation = Recommendation.REVIEW
    else:
        recommendation = Recommendation.DECLINE
    costly = sorted(
        (a for a in attributes if a.shortfall > 0),
        key=lambda a: -a.shortfall,  # sorted() is stable: ties keep attribute order
    )[: card.top_reason_count]
    return ScoreResult(
        card_version=card.version,
        dti=dti,
        attributes=tuple(attributes),
        score=total,
        grade=grade.grade,
        pd=grade.pd,
        knockouts=knockouts,
        recommendation=recommendation,
        top_reasons=tuple(k.code for k in knockouts) + tuple(a.reason for a in costly),
    )


def _knockouts(inputs: ScoreInputs, card: Scorecard, dti: Decimal) -> tuple[Knockout, ...]:
    failed = set(inputs.intake_knockouts)
    out = [
        Knockout(code, f"{text}（见自动检查 {check}）")
        for check, (code, text) in INTAKE_KNOCKOUTS.items()
        if check in failed
    ]
    if dti > card.max_dti:
        message = (
            "未填写月收入，负债收入比无穷大"
            if dti == INFINITE_DTI
            else f"本次借款后负债收入比 {dti} 高于上限 {card.max_dti}"
        )
        out.append(Knockout(KO_DTI_OVER_LIMIT, message))
    if inputs.max_days_past_due_24m >= card.severe_days_past_due:
        out.append(
            Knockout(
                KO_SEVERE_DELINQUENCY,
                f"近 24 个月最长逾期 {inputs.max_days_past_due_24m} 天"
                f"（{card.severe_days_past_due} 天起为严重逾期）",
            )
        )
    return tuple(out)


def _b(lower: int | str, points: int, reason: str, label: str) -> Band:
    return Band(Decimal(lower), points, reason, label)


SCORECARD_V1 = Scorecard(
    version=1,
    effective_from=date(2025, 1, 1),  # as LoanPolicy v1: in force for every loan so far
    source="LoanOps illustrative card v1 (issue 7 item 8); expert-set, not fitted to data",
    base_points=400,
    dti_bands=(
        _b("0", 80, "DTI_LOW", "借款后负债收入比低于 20%"),
        _b("0.20", 65, "DTI_MODERATE", "借款后负债收入比 20%–35%"),
        _b("0.35", 45, "DTI_ELEVATED", "借款后负债收入比 35%–50%"),
        _b("0.50", 20, "DTI_HIGH", "借款后负债收入比 50%–60%"),
        _b("0.60", 0, "DTI_VERY_HIGH", "借款后负债收入比 60% 及以上"),
    ),
    income_bands=(
        _b(0, 0, "INCOME_VERY_LOW", "月收入低于 3,000 元"),
        _b(3000, 15, "INCOME_LOW", "月收入 3,000–5,000 元"),
        _b(5000, 30, "INCOME_MODEST", "月收入 5,000–8,000 元"),
        _b(8000, 40, "INCOME_MIDDLE", "月收入 8,000–15,000 元"),
        _b(15000, 50, "INCOME_HIGH", "月收入 15,000 元及以上"),
    ),
    employment_bands=(
        _b(0, 5, "EMPLOYMENT_UNDER_1Y", "工作年限不满 1 年"),
        _b(1, 20, "EMPLOYMENT_1_3Y", "工作年限 1–3 年"),
        _b(3, 30, "EMPLOYMENT_3_5Y", "工作年限 3–5 年"),
        _b(5, 40, "EMPLOYMENT_5Y_PLUS", "工作年限 5 年及以上"),
    ),
    employment_unknown=Band(None, 0, "EMPLOYMENT_UNKNOWN", "未填写工作年限"),
    age_bands=(
        _b(0, 0, "AGE_UNDER_22", "年龄不满 22 周岁"),
        _b(22, 15, "AGE_22_24", "年龄 22–24 周岁"),
        _b(25, 30, "AGE_25_34", "年龄 25–34 周岁"),
        _b(35, 35, "AGE_35_49", "年龄 35–49 周岁"),
        _b(50, 20, "AGE_50_PLUS", "年龄 50 周岁及以上"),
    ),
    delinquency_bands=(
        _b(0, 80, "DELINQ_NONE", "近 24 个月无逾期"),
        _b(1, 45, "DELINQ_ONE", "近 24 个月逾期 1 次"),
        _b(2, 20, "DELINQ_TWO", "近 24 个月逾期 2 次"),
        _b(3, 0, "DELINQ_THREE_PLUS", "近 24 个月逾期 3 次及以上"),
    ),
    enquiry_bands=(
        _b(0, 40, "ENQUIRIES_0_2", "近 6 个月征信查询 0–2 次"),
        _b(3, 25, "ENQUIRIES_3_5", "近 6 个月征信查询 3–5 次"),
        _b(6, 10, "ENQUIRIES_6_9", "近 6 个月征信查询 6–9 次"),
        _b(10, 0, "ENQUIRIES_10_PLUS", "近 6 个月征信查询 10 次及以上"),
    ),
    platform_bands=(
        _b(0, 40, "PLATFORMS_NONE", "无其他平台借款"),
        _b(1, 30, "PLATFORMS_1_2", "在 1–2 个其他平台有借款"),
        _b(3, 10, "PLATFORMS_3_4", "在 3–4 个其他平台有借款"),
        _b(5, 0, "PLATFORMS_5_PLUS", "在 5 个及以上其他平台有借款"),
    ),
    purpose_bands=(
        PurposeBand("education", 30, "PURPOSE_EDUCATION", "用途：教育"),
        PurposeBand("medical", 30, "PURPOSE_MEDICAL", "用途：医疗"),
        PurposeBand("home_improvement", 25, "PURPOSE_HOME_IMPROVEMENT", "用途：房屋装修"),
        PurposeBand("consumption", 20, "PURPOSE_CONSUMPTION", "用途：日常消费"),
        PurposeBand("business", 10, "PURPOSE_BUSINESS", "用途：小微经营"),
        PurposeBand("prohibited", 0, "PURPOSE_PROHIBITED", "用途：禁止用途"),
        PurposeBand("home_purchase", 0, "PURPOSE_HOME_PURCHASE", "用途：购房"),
        PurposeBand("securities", 0, "PURPOSE_SECURITIES", "用途：证券或期货投资"),
    ),
    grades=(
        Grade("A", 700, Decimal("0.0092")),
        Grade("B", 650, Decimal("0.0216")),
        Grade("C", 600, Decimal("0.0500")),
        Grade("D", 550, Decimal("0.1113")),
        Grade("E", 0, Decimal("0.2294")),
    ),
    max_dti=Decimal("0.70"),
    severe_days_past_due=90,
    approve_grades=("A", "B"),
    review_grades=("C",),
    intake=IntakeRules(),  # the defaults of domain.intake: ages 18–60, caps, documents, purposes
    top_reason_count=4,
)
"""The default card. Illustrative, set by judgment for Chinese online consumer lending, not
fitted to any portfolio; every figure is an assumption to be replaced by a validated card.

* Scale: base 400, scores 400–795. Grade PDs follow a points-to-double-odds scale of 40 with
  600 ↔ odds 19:1 (PD 5 %): PD(s) = 1 / (1 + 19 · 2^((s − 600) / 40)), taken at each grade's
  floor for A–D (700, 650, 600, 550: the grade's worst PD) and at 500 for E; 4 places.
* DTI: the old CBRC guideline on property lending (商业银行房地产贷款风险管理指引, 2004) puts
  all monthly debt at most 55 % of income for a mortgage; this card bands 20/35/50/60 % and
  knocks out above 70 % (short, small consumer loans), an assumption.
* Income bands bracket the urban per-capita disposable income (NBS 2023: about 4,300 CNY a month).
* Age: 18 is full civil capacity (Civil Code art. 17); 60 the usual upper line of consumer
  lenders. Under 22 scores lowest (student lending is restricted: CBIRC/MoE/PBoC notice on
  students' internet consumer loans, 2021).
* Severe delinquency: 90 days past due, the non-performing line of the five-category loan
  classification (金融资产风险分类办法, 2023).
* Prohibited purposes: internet consumer loans may not fund home purchases, securities, futures
  or similar investment (商业银行互联网贷款管理暂行办法, 2020); "prohibited" covers any other use
  the intake form flags (gambling, illegal activity).
* Multi-platform borrowing (多头借贷) and recent enquiries are the usual bureau signals of a
  borrower taking loan after loan; the cut-offs are assumptions.
"""
