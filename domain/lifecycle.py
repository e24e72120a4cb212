"""The loan's life (seed §3): stages, human-task kinds, who decides them and with what decisions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    BUSINESS_OFFICER = "business_officer"  # 業務部門
    OPERATIONS_SPECIALIST = "operations_specialist"  # 運營專員
    RISK_MANAGER = "risk_manager"  # 風控經理
    PRODUCT_MANAGER = "product_manager"  # 產品經理
    CUSTOMER_SERVICE = "customer_service"  # 客服專員
    DEPARTMENT_MANAGER = "department_manager"  # 部門經理
    AUDITOR = "auditor"  # 審計


class Stage(StrEnum):
    INTAKE_REVIEW = "INTAKE_REVIEW"
    RISK_REVIEW = "RISK_REVIEW"
    PRODUCT_MATCHING = "PRODUCT_MATCHING"
    OFFER_CONFIRMATION = "OFFER_CONFIRMATION"
    CONTRACT_SIGNING = "CONTRACT_SIGNING"
    DISBURSEMENT = "DISBURSEMENT"
    SERVICING = "SERVICING"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"
    EXPIRED = "EXPIRED"
    WRITTEN_OFF = "WRITTEN_OFF"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STAGES

    @property
    def can_withdraw(self) -> bool:
        """Before the money moves the borrower may walk away; after it, only settlement ends it."""
        return self in _WITHDRAWABLE


# The stages a healthy loan passes through before servicing, in order.
ORIGINATION_PATH = (
    Stage.INTAKE_REVIEW,
    Stage.RISK_REVIEW,
    Stage.PRODUCT_MATCHING,
    Stage.OFFER_CONFIRMATION,
    Stage.CONTRACT_SIGNING,
    Stage.DISBURSEMENT,
    Stage.SERVICING,
)
TERMINAL_STAGES = frozenset(
    {Stage.SETTLED, Stage.REJECTED, Stage.WITHDRAWN, Stage.EXPIRED, Stage.WRITTEN_OFF}
)
_WITHDRAWABLE = frozenset(
    {
        Stage.INTAKE_REVIEW,
        Stage.RISK_REVIEW,
        Stage.PRODUCT_MATCHING,
        Stage.OFFER_CONFIRMATION,
        Stage.CONTRACT_SIGNING,
    }
)


class TaskKind(StrEnum):
    INTAKE_REVIEW = "intake_review"
    SUPPLEMENT_DOCUMENTS = "supplement_documents"
    RISK_REVIEW = "risk_review"
    PRODUCT_MATCHING = "product_matching"
    OFFER_CONFIRMATION = "offer_confirmation"
    DISBURSEMENT = "disbursement"


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True)
class TaskRule:
    """Who may decide a kind of task, and which decisions exist for it."""

    candidate_role: Role
    decisions: tuple[str, ...]
    base_priority: int = 50


TASK_RULES: dict[TaskKind, TaskRule] = {
    TaskKind.INTAKE_REVIEW: TaskRule(
        Role.OPERATIONS_SPECIALIST, ("approve", "return", "reject"), base_priority=50
    ),
    TaskKind.SUPPLEMENT_DOCUMENTS: TaskRule(Role.BUSINESS_OFFICER, ("submit",), base_priority=60),
    TaskKind.RISK_REVIEW: TaskRule(Role.RISK_MANAGER, ("approve", "reject"), base_priority=50),
    TaskKind.PRODUCT_MATCHING: TaskRule(Role.PRODUCT_MANAGER, ("approve", "reject")),
    TaskKind.OFFER_CONFIRMATION: TaskRule(Role.BUSINESS_OFFICER, ("accept", "decline")),
    TaskKind.DISBURSEMENT: TaskRule(
        Role.OPERATIONS_SPECIALIST, ("approve", "reject"), base_priority=70
    ),
}

MAX_PRIORITY = 100
ESCALATION_STEP = 20


def escalated_priority(priority: int) -> int:
    return min(MAX_PRIORITY, priority + ESCALATION_STEP)
