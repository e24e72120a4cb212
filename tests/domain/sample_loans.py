"""Sample loans shared by the allocation and prepayment tests."""

from datetime import date
from decimal import Decimal

from domain.allocation import InstallmentBalance, balances_from_schedule
from domain.schedule import RepaymentMethod, build_schedule

START = date(2024, 1, 31)
RATE = Decimal("0.12")


def three_month_loan() -> tuple[InstallmentBalance, ...]:
    """¥10,000 at 12 % for 3 months, equal installments from Jan 31 2024:
    1: due 2024-02-29, principal 3300.22, interest 100.00 (payment 3400.22)
    2: due 2024-03-31, principal 3333.22, interest 67.00 (payment 3400.22)
    3: due 2024-04-30, principal 3366.56, interest 33.67 (payment 3400.23)"""
    schedule = build_schedule(
        principal=Decimal("10000"),
        annual_rate=RATE,
        term_months=3,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        start_date=START,
    )
    return balances_from_schedule(schedule)
