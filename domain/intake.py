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
from typing import Any

from domain.identity import age_on
from domain.money import decimal_rule
from domain.schedule import require_fen


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


# Kinds of document an application may carry (the upload route accepts these) and their names.
DOCUMENT_KIND_NAMES: dict[str, str] = {
    "id_card_front": "身份证人像面",
    "id_card_back": "身份证国徽面",
    "income_proof": "收入证明",
    "bank_statement": "银行流水",
    "employment_proof": "工作证明",
    "other": "其他材料",
}
PROHIBITED_CATEGORY_NAMES: dict[str, str] = {
    "securities": "炒股或证券投资",
    "futures": "期货交易",
    "crypto": "虚拟货币交易",
    "property_down_payment": "购房首付",
    "gambling": "赌博",
    "unlawful": "违法用途",
}


@dataclass(frozen=True)
class IntakeRules:
    """Thresholds of the automatic checks (policy data, versioned with the scorecard that
    carries them: ``Scorecard.intake``). Validated on construction; ValueError names the rule."""

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

    def __post_init__(self) -> None:
        for name in ("min_age", "max_age"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"intake.{name}: must be a whole number, got {value!r}")
        if self.min_age < 18:
            raise ValueError("intake.min_age: must be at least 18 (full civil capacity)")
        if self.max_age < self.min_age:
            raise ValueError("intake.max_age: must not be below min_age")
        for name in ("platform_cap", "total_cap", "implausible_monthly_income"):
            require_fen(f"intake.{name}", getattr(self, name), positive=True)
        if self.total_cap < self.platform_cap:
            raise ValueError("intake.total_cap: must not be below platform_cap")
        for i, kind in enumerate(self.required_documents):
            if kind not in DOCUMENT_KIND_NAMES:
                raise ValueError(
                    f"intake.required_documents[{i}]: {kind!r} is not a document kind "
                    f"({', '.join(DOCUMENT_KIND_NAMES)})"
                )
        if not isinstance(self.prohibited_purposes, dict) or not self.prohibited_purposes:
            raise ValueError("intake.prohibited_purposes: must name at least one category")
        for category, words in self.prohibited_purposes.items():
            where = f"intake.prohibited_purposes.{category}"
            if not isinstance(words, tuple) or not words:
                raise ValueError(f"{where}: must list at least one word")
            if any(not isinstance(w, str) or not w.strip() for w in words):
                raise ValueError(f"{where}: words must be non-empty text")

    def rules(self) -> dict[str, Any]:
        """JSON-friendly form (stored with the scorecard version)."""
        return {
            "min_age": self.min_age,
            "max_age": self.max_age,
            "platform_cap": str(self.platform_cap),
            "total_cap": str(self.total_cap),
            "required_documents": list(self.required_documents),
            "prohibited_purposes": {k: list(v) for k, v in self.prohibited_purposes.items()},
            "implausible_monthly_income": str(self.implausible_monthly_income),
        }

    @classmethod
    def from_rules(cls, raw: Any) -> "IntakeRules":
        """The inverse of ``rules``: every rule required, unknown ones refused (ValueError)."""
        known = (
            "min_age",
            "max_age",
            "platform_cap",
            "total_cap",
            "required_documents",
            "prohibited_purposes",
            "implausible_monthly_income",
        )
        if not isinstance(raw, dict):
            raise ValueError("rules.intake: must be an object")
        for name in raw:
            if name not in known:
                raise ValueError(f"rules.intake.{name}: is not an intake rule")
        for name in known:
            if name not in raw:
                raise ValueError(f"rules.intake.{name}: is missing")
        docs = raw["required_documents"]
        purposes = raw["prohibited_purposes"]
        if not isinstance(docs, list):
            raise ValueError("rules.intake.required_documents: must be a list")
        if not isinstance(purposes, dict) or any(
            not isinstance(v, list) for v in purposes.values()
        ):
            raise ValueError("rules.intake.prohibited_purposes: must map categories to word lists")
        return cls(
            min_age=_whole_rule("min_age", raw["min_age"]),
            max_age=_whole_rule("max_age", raw["max_age"]),
            platform_cap=decimal_rule("intake.platform_cap", raw["platform_cap"]),
            total_cap=decimal_rule("intake.total_cap", raw["total_cap"]),
            required_documents=tuple(docs),
            prohibited_purposes={k: tuple(v) for k, v in purposes.items()},
            implausible_monthly_income=decimal_rule(
                "intake.implausible_monthly_income", raw["implausible_monthly_income"]
            ),
        )


def _whole_rule(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"rules.intake.{name}: must be a whole number, not {raw!r}")
    return raw


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
    on = f"申请日 {facts.application_date} 年满 {age} 周岁"
    if rules.min_age <= age <= rules.max_age:
        return CheckResult("age", Outcome.PASS, on)
    return CheckResult(
        "age",
        Outcome.FAIL,
        f"{on}，不在可借年龄 {rules.min_age}–{rules.max_age} 周岁之内",
        knock_out=True,
    )


def _documents(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    missing = [k for k in rules.required_documents if k not in facts.document_kinds]
    if not missing:
        return CheckResult("documents", Outcome.PASS, "必备材料齐全")
    names = "、".join(f"{DOCUMENT_KIND_NAMES[k]}（{k}）" for k in missing)
    return CheckResult("documents", Outcome.FAIL, f"缺少：{names}")


def _purpose(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    category = prohibited_category(facts.purpose, rules)
    if category is None:
        return CheckResult("purpose", Outcome.PASS, "不属于禁止用途")
    name = PROHIBITED_CATEGORY_NAMES.get(category, category)
    return CheckResult(
        "purpose",
        Outcome.FAIL,
        f"借款用途属禁止用途：{name}（{category}）",
        knock_out=True,
    )


def _duplicates(facts: IntakeFacts) -> CheckResult:
    if facts.other_open_applications == 0:
        return CheckResult("duplicate_application", Outcome.PASS, "该身份证号无其他在办申请")
    return CheckResult(
        "duplicate_application",
        Outcome.FAIL,
        f"该身份证号另有 {facts.other_open_applications} 笔在办申请",
    )


def _blacklist(facts: IntakeFacts) -> CheckResult:
    if not facts.blacklisted:
        return CheckResult("blacklist", Outcome.PASS, "不在黑名单上")
    return CheckResult("blacklist", Outcome.FAIL, "借款人在黑名单上", knock_out=True)


def _caps(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    here = facts.outstanding_here + facts.amount
    if here > rules.platform_cap:
        return CheckResult(
            "borrowing_caps",
            Outcome.FAIL,
            f"本平台未还本金连同本次申请共 {here} 元，超过单一平台上限 {rules.platform_cap} 元",
            knock_out=True,
        )
    if facts.outstanding_elsewhere is None:
        return CheckResult(
            "borrowing_caps",
            Outcome.WARN,
            f"本平台连同本次申请共 {here} 元，未超过 {rules.platform_cap} 元；"
            "无征信报告，其他平台借款情况不明",
        )
    total = here + facts.outstanding_elsewhere
    if total > rules.total_cap:
        return CheckResult(
            "borrowing_caps",
            Outcome.FAIL,
            f"各平台未还本金连同本次申请共 {total} 元，超过总上限 {rules.total_cap} 元",
            knock_out=True,
        )
    return CheckResult(
        "borrowing_caps",
        Outcome.PASS,
        f"本平台 {here} 元、各平台合计 {total} 元，"
        f"未超过上限 {rules.platform_cap} 元 / {rules.total_cap} 元",
    )


def _income(facts: IntakeFacts, rules: IntakeRules) -> CheckResult:
    if facts.monthly_income <= 0:
        return CheckResult("income", Outcome.FAIL, "未填写月收入")
    if facts.monthly_income > rules.implausible_monthly_income:
        return CheckResult(
            "income",
            Outcome.WARN,
            f"月收入 {facts.monthly_income} 元偏高，需有收入证明佐证",
        )
    return CheckResult("income", Outcome.PASS, f"月收入 {facts.monthly_income} 元")


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


def scored_purpose_categories(rules: IntakeRules) -> tuple[str, ...]:
    """Every scorecard purpose category ``purpose_category`` can give under these rules."""
    prohibited = {
        _PROHIBITED_AS_CARD_CATEGORY.get(c, "prohibited") for c in rules.prohibited_purposes
    }
    return (*(c for c, _words in PURPOSE_WORDS), "consumption", *sorted(prohibited))


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
