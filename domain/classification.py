"""Five-category loan classification (五级分类: 正常 / 关注 / 次级 / 可疑 / 损失), pure.

A loan's category is the worst of what its days past due (DPD) and its events give:

- DPD lines (``ClassificationPolicy``, the ``classification_*`` rules of the loan's policy
  version; defaults from DESIGN.md "Policy is data", which follows
  the 商业银行金融资产风险分类办法, CBIRC/PBoC Order 2023 No. 1, arts. 10-13): overdue at all
  (DPD > 0) ⇒ at least 关注, > 90 ⇒ at least 次级, > 270 ⇒ at least 可疑, > 360 ⇒ 损失.
- events: restructured ⇒ at least 次级 (the brief's line; stricter than the 2023 办法, which lets
  a loan restructured while still 正常/关注 stay 关注 — the conservative reading is the default);
  legal action ⇒ at least 次级 (a LoanOps default: the 办法 has no litigation line, but suing
  for recovery means the borrower cannot repay from normal income, the 次级 definition of
  art. 8); written off ⇒ 损失 (art. 13).

**Manual override (the risk manager, with a reason).** An override may set any category no
better than the loan's *floor*: the automatic category, except that an overdue of at most
``technical_overdue_days`` (default 7) days with no event counts as 正常 (the 办法 art. 10
exempts short overdue caused by operational or technical reasons). The override then **holds
while the floor stays no worse than it** and lapses the first time the floor is worse: a
downgrade holds until the DPD rule (or an event) classifies worse than the override; a
technical-overdue 正常 holds until day ``technical_overdue_days + 1``. A loan that recovers does
not lift an override: the risk manager changes it by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import pairwise

from domain.balances import InstallmentBalance


class Category(StrEnum):
    NORMAL = "normal"  # 正常
    SPECIAL_MENTION = "special_mention"  # 关注
    SUBSTANDARD = "substandard"  # 次级
    DOUBTFUL = "doubtful"  # 可疑
    LOSS = "loss"  # 损失

    @property
    def rank(self) -> int:
        """0 (正常) … 4 (损失): a higher rank is worse."""
        return _ORDER.index(self)

    @property
    def label_zh(self) -> str:
        return _LABELS[self]


_ORDER = (
    Category.NORMAL,
    Category.SPECIAL_MENTION,
    Category.SUBSTANDARD,
    Category.DOUBTFUL,
    Category.LOSS,
)
_LABELS = {
    Category.NORMAL: "正常",
    Category.SPECIAL_MENTION: "关注",
    Category.SUBSTANDARD: "次级",
    Category.DOUBTFUL: "可疑",
    Category.LOSS: "损失",
}


def worst(*categories: Category) -> Category:
    return max(categories, key=lambda c: c.rank)


class LoanEvent(StrEnum):
    """Events that floor the category. They are read from the audit trail by these actions
    (``loanops.classification``), so the features that restructure, sue or write off a loan
    only need to write their audit event (a loan in stage WRITTEN_OFF counts as written off)."""

    RESTRUCTURED = "restructured"
    LEGAL_ACTION = "legal_action"
    WRITTEN_OFF = "written_off"

    @property
    def audit_action(self) -> str:
        return f"loan.{self.value}"


class Source(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


@dataclass(frozen=True)
class ClassificationPolicy:
    """The classification lines, as the loan policy holds them (``LoanPolicy.classification``:
    the rules ``classification_*`` of each policy version, so a loan is classified by the
    version it started with). A DPD strictly greater than ``*_after_days`` reaches that
    category. A written-off loan is always 损失 (art. 13): that is not a rule to change."""

    special_mention_after_days: int = 0
    substandard_after_days: int = 90
    doubtful_after_days: int = 270
    loss_after_days: int = 360
    # Overdue up to this many days may be kept 正常 by a manual override (办法 art. 10).
    technical_overdue_days: int = 7
    restructured_floor: Category = Category.SUBSTANDARD
    legal_action_floor: Category = Category.SUBSTANDARD

    @property
    def written_off_floor(self) -> Category:
        return Category.LOSS

    def validate(self) -> None:
        """ValueError naming the first rule that makes no sense."""
        lines = [
            ("special_mention_after_days", self.special_mention_after_days),
            ("substandard_after_days", self.substandard_after_days),
            ("doubtful_after_days", self.doubtful_after_days),
            ("loss_after_days", self.loss_after_days),
        ]
        if self.special_mention_after_days < 0:
            raise ValueError("special_mention_after_days: must not be negative")
        for (_, before), (name, value) in pairwise(lines):
            if value <= before:
                raise ValueError(f"{name}: must be greater than the line before it ({before})")
        if not 0 <= self.technical_overdue_days <= self.substandard_after_days:
            raise ValueError("technical_overdue_days: must be between 0 and substandard_after_days")
        for name in ("restructured_floor", "legal_action_floor"):
            if getattr(self, name) == Category.NORMAL:
                raise ValueError(f"{name}: an event must floor the loan below 正常 (normal)")


DEFAULT_CLASSIFICATION_POLICY = ClassificationPolicy()


@dataclass(frozen=True)
class Classification:
    """What the rules give: the category, the reason, and the floor (the best category a
    manual override may set)."""

    category: Category
    reason: str
    days_past_due: int
    floor: Category


def days_past_due(installments: Iterable[InstallmentBalance], as_of: date) -> int:
    """Days since the due date of the oldest installment still unpaid on ``as_of`` (0 when
    none is past due). An installment is overdue from the day after its due date."""
    overdue = [b.due_date for b in installments if b.due_date < as_of and not b.is_paid]
    return (as_of - min(overdue)).days if overdue else 0


def _dpd_category(dpd: int, policy: ClassificationPolicy) -> tuple[Category, str]:
    lines = (
        (policy.loss_after_days, Category.LOSS),
        (policy.doubtful_after_days, Category.DOUBTFUL),
        (policy.substandard_after_days, Category.SUBSTANDARD),
        (policy.special_mention_after_days, Category.SPECIAL_MENTION),
    )
    for after, category in lines:
        if dpd > after:
            return category, f"{dpd} days past due (> {after}): {category.label_zh} {category}"
    return Category.NORMAL, "not past due: 正常 normal"


def classify(
    dpd: int,
    events: Sequence[LoanEvent] = (),
    policy: ClassificationPolicy = DEFAULT_CLASSIFICATION_POLICY,
) -> Classification:
    """The automatic category from the days past due and the loan's events, with the reason:
    each rule that reaches the category is named."""
    if dpd < 0:
        raise ValueError("days_past_due: must not be negative")
    candidates = [_dpd_category(dpd, policy)]
    floors = {
        LoanEvent.RESTRUCTURED: policy.restructured_floor,
        LoanEvent.LEGAL_ACTION: policy.legal_action_floor,
        LoanEvent.WRITTEN_OFF: policy.written_off_floor,
    }
    for event in sorted(set(events), key=list(LoanEvent).index):
        floor = floors[event]
        candidates.append(
            (floor, f"{event.value.replace('_', ' ')}: at least {floor.label_zh} {floor}")
        )
    category = worst(*(c for c, _ in candidates))
    reason = "; ".join(text for c, text in candidates if c == category)
    # The override floor: a short (technical) overdue with no event may be kept 正常.
    technical = not events and dpd <= policy.technical_overdue_days
    floor = Category.NORMAL if technical else category
    return Classification(category=category, reason=reason, days_past_due=dpd, floor=floor)


def check_override(category: Category, current: Classification) -> None:
    """ValueError naming ``category`` when an override may not set it on a loan classified
    ``current`` (better than the floor)."""
    if category.rank < current.floor.rank:
        raise ValueError(
            f"category: {category} ({category.label_zh}) is better than the rules allow "
            f"({current.floor} {current.floor.label_zh}: {current.reason})"
        )


def override_holds(override: Category, current: Classification) -> bool:
    """Whether a manual ``override`` still holds: until the floor is worse than it."""
    return current.floor.rank <= override.rank
