"""The loan policy: every business rule that changes with regulators or the company, in one
versioned snapshot. A loan takes the version in force when it starts and keeps it for life; every
quote, view and decision of that loan uses it, and decisions record its version.

Defaults live here and nowhere else; ``loanops migrate`` seeds them as version 1 into the
database, where later versions are added with an effective date (``loanops policy``).
"""

from dataclasses import dataclass, field, fields
from datetime import date, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from domain.classification import Category, ClassificationPolicy
from domain.collections import DEFAULT_LADDER, validate_ladder
from domain.disclosure import CeilingPolicy
from domain.money import decimal_rule
from domain.penalty import PenaltyPolicy
from domain.tasks import TaskKind

DEFAULT_SLA_HOURS: dict[str, float] = {
    "intake_review": 8.0,
    "supplement_documents": 24.0,
    "risk_review": 24.0,
    "risk_approval": 24.0,
    "product_matching": 8.0,
    "offer_confirmation": 24.0,
    "disbursement": 4.0,
    "disbursement_refused": 8.0,
    "bureau_unavailable": 4.0,
    "follow_up_call": 48.0,
    "overdue_call": 24.0,
    "disbursement_authorization": 4.0,
    "disbursement_manager_auth": 8.0,
    "disbursement_awaiting_funds": 24.0,
    "post_loan_review": 72.0,
    # The ladder's decisions that are not calls get three days before they escalate.
    "field_visit": 72.0,
    "legal_review": 72.0,
    "write_off_proposal": 72.0,
    "write_off_approval": 72.0,
    # A settled loan's refund of its credit (settlement-refund-v1).
    "refund": 8.0,
    "refund_authorization": 4.0,
    "refund_failed": 8.0,
}


class Overpayment(StrEnum):
    """What a repayment beyond what is due does: pay the next installments early, or wait as
    credit for the next due date. (Reducing principal is an explicit partial prepayment, so the
    rest of the schedule is always re-amortized.)"""

    NEXT_INSTALLMENT = "next_installment"
    CREDIT = "credit"


@dataclass(frozen=True)
class LoanPolicy:
    """One version of the loan policy. Frozen: a loan's copy never changes under it."""

    version: int = 1
    effective_from: date = date(2025, 1, 1)
    source: str = "LoanOps defaults (seed §3-§4; DESIGN.md 'Policy is data')"
    business_timezone: str = "Asia/Shanghai"
    # Penalty interest (罚息): multiple of the contract rate, days of grace.
    penalty_multiple: Decimal = Decimal("1.5")
    penalty_grace_days: int = 0
    # Interest ceiling: lpr_multiple × the one-year LPR on the offer date, and an absolute line.
    lpr_multiple: Decimal = Decimal("4")
    absolute_rate_cap: Decimal | None = Decimal("0.24")
    # Human tasks: SLA per task kind (hours); how many times a task escalates before its
    # kind's exhaustion rule applies (domain.tasks.Exhausted).
    sla_hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))
    max_escalations: int = 3
    # A task nobody decides within this many days ends: the application expires, or (for a
    # call in servicing) the task closes as expired. Keeps every workflow's history bounded.
    task_abandon_days: int = 30
    # Approval authority: the risk manager approves alone up to this amount and down to this
    # grade; above either the department manager must approve too (maker-checker).
    risk_approval_limit: Decimal = Decimal("200000.00")
    risk_approval_worst_grade: str = "C"
    # A return for supplement is due in this many working days (Monday to Friday).
    supplement_business_days: int = 5
    # Deadlines (days).
    supplement_deadline_days: int = 7
    offer_valid_days: int = 7
    contract_sign_days: int = 5
    # Servicing.
    reminder_days_before_due: int = 3
    reminder_time: time = time(9, 0)
    follow_up_call_after_days: int = 7
    overpayment: Overpayment = Overpayment.NEXT_INSTALLMENT
    # Collection conduct: borrowers are contacted only inside these local hours.
    contact_hours_start: time = time(8, 0)
    contact_hours_end: time = time(21, 0)
    # The collections ladder: the days past due at which each step fires (domain.collections),
    # at most this many contact attempts (calls, visits) a business day per loan, and how far
    # ahead a promise to pay may be dated.
    collection_ladder: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LADDER))
    collection_max_contacts_per_day: int = 3
    collection_promise_max_days: int = 14
    # A workflow run continues as new past this many history events (Temporal warns at 10,240).
    continue_as_new_after_events: int = 5000
    # Payout (payout-v1): above this net amount the department manager authorizes the payout
    # as well as the second operations specialist (tiered four-eyes, seed §4.4).
    disbursement_dual_limit: Decimal = Decimal("50000.00")
    # A payout the pool cannot cover is checked again this often (minutes) until a top-up.
    funds_recheck_minutes: int = 60
    # A pending bank order is asked for its status this long (minutes) after the last answer
    # when no callback came first.
    payout_confirmation_minutes: int = 10
    # A settled loan's documents are archived and kept this many years after settlement
    # (5: the AML record-keeping period after a business relationship ends).
    archive_retention_years: int = 5
    # Aftercare (domain.aftercare): follow-up calls repeat this many days apart after the first
    # (0: only the first); post-loan reviews every ``post_loan_review_days``, sooner for a loan of
    # at least ``post_loan_review_large_amount`` or classified 关注 or worse.
    follow_up_call_interval_days: int = 90
    post_loan_review_days: int = 180
    post_loan_review_days_close: int = 90
    post_loan_review_large_amount: Decimal = Decimal("100000.00")
    # Retention (issue 11 §6, loanops.retention): a borrower's personal data is destroyed this
    # many years after their last loan settled (5: the AML record-keeping period after the
    # business relationship ends), the financial records kept.
    pii_retention_years: int = 5
    # Five-category classification (domain.classification): a loan more than this many days
    # past due reaches 关注 / 次级 / 可疑 / 损失 (DESIGN.md; 商业银行金融资产风险分类办法
    # arts. 10-13); an overdue of at most ``classification_technical_overdue_days`` may be kept
    # 正常 by the risk manager's override; a restructured loan or one under legal action is at
    # least the floor named (a written-off loan is always 损失).
    classification_special_mention_after_days: int = 0
    classification_substandard_after_days: int = 90
    classification_doubtful_after_days: int = 270
    classification_loss_after_days: int = 360
    classification_technical_overdue_days: int = 7
    classification_restructured_floor: Category = Category.SUBSTANDARD
    classification_legal_action_floor: Category = Category.SUBSTANDARD

    def sla(self, kind: str) -> timedelta:
        return timedelta(hours=self.sla_hours.get(kind, 24.0))

    @property
    def penalty(self) -> PenaltyPolicy:
        return PenaltyPolicy(multiple=self.penalty_multiple, grace_days=self.penalty_grace_days)

    @property
    def ceiling(self) -> CeilingPolicy:
        return CeilingPolicy(lpr_multiple=self.lpr_multiple, absolute_cap=self.absolute_rate_cap)

    @property
    def classification(self) -> ClassificationPolicy:
        return ClassificationPolicy(
            special_mention_after_days=self.classification_special_mention_after_days,
            substandard_after_days=self.classification_substandard_after_days,
            doubtful_after_days=self.classification_doubtful_after_days,
            loss_after_days=self.classification_loss_after_days,
            technical_overdue_days=self.classification_technical_overdue_days,
            restructured_floor=self.classification_restructured_floor,
            legal_action_floor=self.classification_legal_action_floor,
        )

    def validate(self) -> None:
        """ValueError naming the first field that makes no sense."""
        try:
            ZoneInfo(self.business_timezone)
        except (ValueError, KeyError):
            raise ValueError(
                "business_timezone: must be an IANA time zone, e.g. Asia/Shanghai"
            ) from None
        if not Decimal(1) <= self.penalty_multiple <= Decimal(3):
            raise ValueError("penalty_multiple: must be between 1 and 3")
        if self.penalty_grace_days < 0:
            raise ValueError("penalty_grace_days: must not be negative")
        if self.lpr_multiple <= 0:
            raise ValueError("lpr_multiple: must be greater than zero")
        if self.absolute_rate_cap is not None and not 0 < self.absolute_rate_cap <= 1:
            raise ValueError("absolute_rate_cap: must be a fraction between 0 and 1")
        for kind, hours in self.sla_hours.items():
            if kind not in {k.value for k in TaskKind}:
                raise ValueError(f"sla_hours.{kind}: is not a task kind")
            if not 0 < hours < float("inf"):
                raise ValueError(f"sla_hours.{kind}: must be greater than zero")
        if not 0 <= self.max_escalations <= 10:
            raise ValueError("max_escalations: must be between 0 and 10")
        for name in (
            "supplement_deadline_days",
            "offer_valid_days",
            "contract_sign_days",
            "reminder_days_before_due",
            "follow_up_call_after_days",
            "task_abandon_days",
            "supplement_business_days",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
        if self.risk_approval_limit <= 0:
            raise ValueError("risk_approval_limit: must be greater than zero")
        if self.risk_approval_worst_grade not in ("A", "B", "C", "D", "E"):
            raise ValueError("risk_approval_worst_grade: must be one of A, B, C, D, E")
        if self.contact_hours_start >= self.contact_hours_end:
            raise ValueError("contact_hours_end: must be after contact_hours_start")
        if self.disbursement_dual_limit <= 0:
            raise ValueError("disbursement_dual_limit: must be greater than zero")
        for name in ("funds_recheck_minutes", "payout_confirmation_minutes"):
            if not 1 <= getattr(self, name) <= 24 * 60:
                raise ValueError(f"{name}: must be between 1 and 1440 minutes")
        if not 1 <= self.archive_retention_years <= 100:
            raise ValueError("archive_retention_years: must be between 1 and 100")
        validate_ladder(self.collection_ladder)
        if not 1 <= self.collection_max_contacts_per_day <= 10:
            raise ValueError("collection_max_contacts_per_day: must be between 1 and 10")
        if not 1 <= self.collection_promise_max_days <= 90:
            raise ValueError("collection_promise_max_days: must be between 1 and 90")
        if self.continue_as_new_after_events < 100:
            raise ValueError("continue_as_new_after_events: must be at least 100")
        if self.follow_up_call_interval_days < 0:
            raise ValueError("follow_up_call_interval_days: must not be negative")
        for name in ("post_loan_review_days", "post_loan_review_days_close"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        if self.post_loan_review_large_amount <= 0:
            raise ValueError("post_loan_review_large_amount: must be greater than zero")
        if not 1 <= self.pii_retention_years <= 100:
            raise ValueError("pii_retention_years: must be between 1 and 100")
        try:
            self.classification.validate()
        except ValueError as err:
            raise ValueError(f"classification_{err}") from None

    def rules(self) -> dict[str, Any]:
        """The rules without the version header, as JSON-friendly values (for storage)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("version", "effective_from", "source"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, Decimal | time):
                value = str(value) if isinstance(value, Decimal) else value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            out[f.name] = value
        return out

    @classmethod
    def from_rules(
        cls, *, version: int, effective_from: date, source: str, rules: dict[str, Any]
    ) -> "LoanPolicy":
        """The inverse of ``rules``; unknown keys are refused, missing ones take the defaults."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, raw in rules.items():
            if name not in known or name in ("version", "effective_from", "source"):
                raise ValueError(f"rules.{name}: is not a policy rule")
            kwargs[name] = _rule_value(name, getattr(DEFAULT_POLICY, name), raw)
        policy = cls(version=version, effective_from=effective_from, source=source, **kwargs)
        policy.validate()
        return policy


DEFAULT_POLICY = LoanPolicy()


def _rule_value(name: str, default: Any, raw: Any) -> Any:
    """One rule from its JSON form, typed like its default; ValueError naming the rule."""
    if raw is None:
        if name == "absolute_rate_cap":  # the only rule that may be absent (no absolute line)
            return None
        raise ValueError(f"{name}: must not be null")
    if isinstance(raw, bool) or (isinstance(raw, dict | list) and not isinstance(default, dict)):
        raise ValueError(f"{name}: {raw!r} is not a valid value")
    if isinstance(default, Decimal) or name == "absolute_rate_cap":
        return decimal_rule(name, raw)
    if isinstance(default, time):
        try:
            at = time.fromisoformat(str(raw))
        except ValueError:
            raise ValueError(f"{name}: must be a local time HH:MM, not {raw!r}") from None
        if at.tzinfo is not None:
            raise ValueError(f"{name}: must be a local time without a UTC offset")
        return at
    if isinstance(default, StrEnum):  # Overpayment, Category
        kind = type(default)
        try:
            return kind(raw)
        except ValueError:
            choices = ", ".join(o.value for o in kind)
            raise ValueError(f"{name}: must be one of {choices}, not {raw!r}") from None
    if name == "collection_ladder":
        if not isinstance(raw, dict):
            raise ValueError(f"{name}: must be an object of ladder step to days past due")
        ladder: dict[str, int] = {}
        for step, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}.{step}: must be a whole number of days")
            ladder[str(step)] = value
        return ladder
    if isinstance(default, dict):
        if not isinstance(raw, dict):
            raise ValueError(f"{name}: must be an object of task kind to hours")
        hours: dict[str, float] = {}
        for kind, value in raw.items():
            if isinstance(value, bool | dict | list | None):
                raise ValueError(f"{name}.{kind}: must be a number of hours")
            try:
                hours[str(kind)] = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name}.{kind}: must be a number of hours, not {value!r}"
                ) from None
        return hours
    if isinstance(default, int):
        try:
            whole = Decimal(str(raw))
        except InvalidOperation:
            raise ValueError(f"{name}: must be a whole number, not {raw!r}") from None
        if not whole.is_finite() or whole != whole.to_integral_value():
            raise ValueError(f"{name}: must be a whole number, not {raw!r}")
        return int(whole)
    return str(raw)
