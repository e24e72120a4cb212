"""What is owed and paid on each installment while a loan is serviced, by component.

Shared by allocation, penalty and prepayment; allocation re-exports it.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from domain.money import ZERO


class Component(StrEnum):
    """A part of an installment that money can be allocated to."""

    PENALTY = "penalty"  # penalty interest on overdue principal
    INTEREST = "interest"
    PRINCIPAL = "principal"
    FEE = "fee"


@dataclass(frozen=True)
class InstallmentBalance:
    """An installment's amounts due and paid; penalty accrues up to penalty_accrued_through."""

    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fee_due: Decimal
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fee_paid: Decimal = ZERO
    penalty_accrued: Decimal = ZERO
    penalty_paid: Decimal = ZERO
    penalty_accrued_through: date | None = None
    # The part of fee_due that is a one-off charge (the upfront service fee, due with the first
    # installment): an early repayment waives later installments' fees, never this one.
    fixed_fee: Decimal = ZERO

    @property
    def principal_outstanding(self) -> Decimal:
        return self.principal_due - self.principal_paid

    @property
    def interest_outstanding(self) -> Decimal:
        return self.interest_due - self.interest_paid

    @property
    def fee_outstanding(self) -> Decimal:
        return self.fee_due - self.fee_paid

    @property
    def penalty_outstanding(self) -> Decimal:
        return self.penalty_accrued - self.penalty_paid

    @property
    def total_outstanding(self) -> Decimal:
        return (
            self.principal_outstanding
            + self.interest_outstanding
            + self.fee_outstanding
            + self.penalty_outstanding
        )

    @property
    def is_paid(self) -> bool:
        """Nothing outstanding, penalty included (penalty accrued so far)."""
        return self.total_outstanding == 0

    def outstanding_of(self, component: Component) -> Decimal:
        """Outstanding amount of one component."""
        return {
            Component.PENALTY: self.penalty_outstanding,
            Component.INTEREST: self.interest_outstanding,
            Component.PRINCIPAL: self.principal_outstanding,
            Component.FEE: self.fee_outstanding,
        }[component]
