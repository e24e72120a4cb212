"""The loan's life (seed §3): the roles of the department and the stages a loan passes through.

Human-task kinds and who decides them are in ``domain.tasks``."""

from __future__ import annotations

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
