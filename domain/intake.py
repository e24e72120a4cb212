"""The automatic checks made before the intake review (seed §3.1, §4.1; DESIGN.md borrowing caps):
each a named result — pass, warn or fail with its detail — that informs the operations
specialist; a failed knock-out also informs the risk manager.

Pure code: the facts are gathered by an activity (rows, the bureau report), the rules are policy
data (``IntakeRules``; defaults here, in one place).
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from domain.identity import age_on


class Outcome(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


# Purposes the department does not lend for (seed §4.1: lawful use of funds; CBIRC rules on
# consumer loans: no securities, futures, crypto, property down payments, gambling). Matched as
# words in the stated purpose; each category lists the words in Chinese and English.
DEFAULT_PROHIBITED_PURPOSES: dict[str, tuple[str, ...]] = {
    "securities": ("炒股", "股票", "证券", "配资", "stock", "securities"),
    "futures": ("期货", "futures"),
    "crypto": ("比特币", "虚拟货币", "加密货币", "数字货币", "炒币", "crypto", "bitcoin"),
    "property_down_payment": ("首付", "购房", "买房", "down payment"),
    "gambling": ("赌博", "博彩", "赌", "gambling", "casino"),
    "unlawful": ("违法", "洗钱", "非法", "illegal"),
}


@dataclass(frozen=True)
class IntakeRules:
    """Thresholds of the automatic checks (policy data)."""

    min_age: int = 18
    max_age: int = 60
    # Borrowing caps for a natural person (P2P interim measures 2016, art. 17).
    platform_cap: Decimal = Decimal("200000.00")
    total_cap: Decimal = Decimal("1000000.00")
    required_documents: tuple[str, ...] = ("id_card_front", "id_card_back", "income_proof")
    prohibited_purposes: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PROHIBITED_PURPOSES)
    )
    # A stated income above this (monthly) is plausible only with evidence: a warning.
    implausible_monthly_income: Decimal = Decimal("500000.00")


@dataclass(frozen=True)
class IntakeFacts:
    """What the checks look at, gathered when the application arrives."""

    application_date: date
    birth_date: date
    amount: Decimal
    monthly_income: Decimal
    purpose: str
    document_kinds: tuple[str, ...] = ()
    # Other applications of the same identity number not yet ended (not this one).
    other_open_applications: int = 0
    blacklisted: bool = False
    # Principal outstanding on this platform, and elsewhere (from the bureau; None: unknown).
    outstanding_here: Decimal = Decimal("0.00")
    outstanding_elsewhere: Decimal | None = None


@dataclass(frozen=True)
class CheckResult:
    code: str
    outcome: Outcome
    detail: str
    # A failure that stops the application short of an offer whatever the score says.
    knock_out: bool = False


def prohibited_category(purpose: str, rules: IntakeRules) -> str | None:
    """The prohibited category the stated purpose falls in, if any (case-insensitive)."""
    text = purpose.casefold()
    for category, words in rules.prohibited_purposes.items():
        if any(word.casefold() in text for word in words):
            return category
    return None


def run_checks(facts: IntakeFacts, rules: IntakeRules | None = None) -> tuple[CheckResult, ...]:
    """Every check, in a fixed order; the same facts and rules give the same results."""
    rules = rules or IntakeRules()
    return (
        _age(facts, rules),
        _documents(facts, rules),
        _purpose(facts, rules),
        _duplicates(facts),
        _blacklist(facts),
        _caps(facts, rules),
        _income(facts, rules),
    )


def knock_outs(results: tuple[CheckResult, ...]) -> tuple[CheckResult, ...]:
    return tuple(r for r in results if r.knock_out and r.outcome == Outcome.FAIL)


def _age(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    age = age_on(facts.birth_date, facts.application_date)
    if rules.min_age <= age <= rules.max_age:
        return CheckResult("age", Outcome.PASS, f"{age} years on {facts.application_date}")
    return CheckResult(
        "age",
        Outcome.FAIL,
        f"{age} years on {facts.application_date}; lending needs {rules.min_age}–{rules.max_age}",
        knock_out=True,
    )


def _documents(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    missing = [k for k in rules.required_documents if k not in facts.document_kinds]
    if not missing:
        return CheckResult("documents", Outcome.PASS, "every required document is attached")
    return CheckResult("documents", Outcome.FAIL, f"missing: {', '.join(missing)}")


def _purpose(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    category = prohibited_category(facts.purpose, rules)
    if category is None:
        return CheckResult("purpose", Outcome.PASS, "not a prohibited purpose")
    return CheckResult(
        "purpose",
        Outcome.FAIL,
        f"the stated purpose is prohibited ({category})",
        knock_out=True,
    )


def _duplicates(facts: IntakeFacts) -> CheckResult:
    if facts.other_open_applications == 0:
        return CheckResult("duplicate_application", Outcome.PASS, "no other open application")
    return CheckResult(
        "duplicate_application",
        Outcome.FAIL,
        f"{facts.other_open_applications} other open application(s) for this identity number",
    )


def _blacklist(facts: IntakeFacts) -> CheckResult:
    if not facts.blacklisted:
        return CheckResult("blacklist", Outcome.PASS, "not on the blacklist")
    return CheckResult("blacklist", Outcome.FAIL, "the borrower is blacklisted", knock_out=True)


def _caps(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    here = facts.outstanding_here + facts.amount
    if here > rules.platform_cap:
        return CheckResult(
            "borrowing_caps",
            Outcome.FAIL,
            f"{here} on this platform with this request exceeds the cap {rules.platform_cap}",
            knock_out=True,
        )
    if facts.outstanding_elsewhere is None:
        return CheckResult(
            "borrowing_caps",
            Outcome.WARN,
            f"{here} on this platform is within {rules.platform_cap}; "
            "borrowing elsewhere is unknown (no bureau report)",
        )
    total = here + facts.outstanding_elsewhere
    if total > rules.total_cap:
        return CheckResult(
            "borrowing_caps",
            Outcome.FAIL,
            f"{total} across platforms with this request exceeds the cap {rules.total_cap}",
            knock_out=True,
        )
    return CheckResult(
        "borrowing_caps",
        Outcome.PASS,
        f"{here} here and {total} across platforms, within {rules.platform_cap} / {rules.total_cap}",
    )


def _income(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    if facts.monthly_income <= 0:
        return CheckResult("income", Outcome.FAIL, "no monthly income stated")
    if facts.monthly_income > rules.implausible_monthly_income:
        return CheckResult(
            "income",
            Outcome.WARN,
            f"a monthly income of {facts.monthly_income} needs evidence",
        )
    return CheckResult("income", Outcome.PASS, f"monthly income {facts.monthly_income}")


# Words that place a stated purpose in one of the scorecard's purpose categories (the first match
# wins; anything else is consumption). Prohibited categories map to the card's own.
PURPOSE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("education", ("学费", "教育", "培训", "tuition", "education")),
    ("medical", ("医疗", "看病", "手术", "治疗", "medical", "hospital")),
    ("home_improvement", ("装修", "renovation", "home improvement")),
    ("business", ("经营", "店铺", "进货", "周转", "business", "inventory")),
)
_PROHIBITED_AS_CARD_CATEGORY = {
    "securities": "securities",
    "property_down_payment": "home_purchase",
}


def purpose_category(purpose: str, rules: IntakeRules | None = None) -> str:
    """The scorecard category of a stated purpose: a prohibited one first, then by its words."""
    rules = rules or IntakeRules()
    prohibited = prohibited_category(purpose, rules)
    if prohibited is not None:
        return _PROHIBITED_AS_CARD_CATEGORY.get(prohibited, "prohibited")
    text = purpose.casefold()
    for category, words in PURPOSE_WORDS:
        if any(word.casefold() in text for word in words):
            return category
    return "consumption"
