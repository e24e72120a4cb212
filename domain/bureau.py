"""A credit-bureau report: what the bureau says about a borrower's other borrowing.

Pure data, here in ``domain`` rather than ``models`` because the risk rules that read it belong to
the domain (and ``domain`` never imports ``models``). Frozen dataclasses of str/int/Decimal/
datetime, so the report travels through Temporal's pydantic data converter unchanged.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.money import to_fen


@dataclass(frozen=True)
class OpenLoan:
    """One loan the borrower is still repaying elsewhere."""

    lender_type: str  # "bank", "consumer_finance", "online_platform", "credit_card", …
    balance: Decimal
    monthly_payment: Decimal

    def __post_init__(self) -> None:
        if self.balance < 0 or self.monthly_payment < 0:
            raise ValueError("an open loan's balance and monthly payment cannot be negative")
        if to_fen(self.balance) != self.balance or to_fen(self.monthly_payment) != (
            self.monthly_payment
        ):
            raise ValueError("an open loan's amounts must be whole fen")


@dataclass(frozen=True)
class BureauReport:
    """The bureau's answer for an identity it has a record of.

    ``months_since_last_delinquency`` is None when the borrower was never delinquent;
    ``total_monthly_payments`` is the sum of ``open_loans``' monthly payments (checked).
    """

    report_id: str
    reported_at: datetime
    overdue_count_24m: int
    overdue_amount: Decimal
    max_days_past_due_24m: int
    months_since_last_delinquency: int | None
    enquiries_6m: int
    open_loans: tuple[OpenLoan, ...]
    other_platform_loans: int
    total_monthly_payments: Decimal

    def __post_init__(self) -> None:
        counts = {
            "overdue_count_24m": self.overdue_count_24m,
            "max_days_past_due_24m": self.max_days_past_due_24m,
            "enquiries_6m": self.enquiries_6m,
            "other_platform_loans": self.other_platform_loans,
        }
        if self.months_since_last_delinquency is not None:
            counts["months_since_last_delinquency"] = self.months_since_last_delinquency
        negative = [name for name, value in counts.items() if value < 0]
        if negative:
            raise ValueError(f"cannot be negative: {', '.join(negative)}")
        if self.overdue_amount < 0 or to_fen(self.overdue_amount) != self.overdue_amount:
            raise ValueError("overdue_amount must be a non-negative amount in whole fen")
        if self.reported_at.tzinfo is None:
            raise ValueError("reported_at must carry its time zone")
        total = sum((loan.monthly_payment for loan in self.open_loans), Decimal("0.00"))
        if total != self.total_monthly_payments:
            raise ValueError(
                f"total_monthly_payments {self.total_monthly_payments} is not the sum of the "
                f"open loans' monthly payments ({total})"
            )
