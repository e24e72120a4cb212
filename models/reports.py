"""The shapes of the managers' reports (``loanops.reports``): the portfolio, the overdue
worklist, and their CSV forms. Money travels as strings with two decimals, shares (PAR) as
fractions with six, as everywhere in the API."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, PlainSerializer

from domain.money import format_money, format_rate

MoneyOut = Annotated[Decimal, PlainSerializer(format_money, return_type=str, when_used="json")]
FractionOut = Annotated[Decimal, PlainSerializer(format_rate, return_type=str, when_used="json")]

# DPD buckets, in order: (key, least DPD, greatest DPD or None).
DPD_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("current", 0, 0),
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("180+", 181, None),
)
# Portfolio at risk: the share of outstanding principal on loans at least this many days past due.
PAR_DAYS = (1, 30, 90)


def dpd_bucket(dpd: int) -> str:
    for key, low, high in DPD_BUCKETS:
        if dpd >= low and (high is None or dpd <= high):
            return key
    raise ValueError(f"days_past_due: {dpd} is negative")


class Group(BaseModel):
    """Loans sharing one value of a dimension: how many, and their outstanding principal."""

    key: str
    label: str | None = None
    loan_count: int
    outstanding_principal: MoneyOut


class ParOut(BaseModel):
    key: str  # par1, par30, par90
    min_days_past_due: int
    loan_count: int
    principal_at_risk: MoneyOut
    share: FractionOut


class AmountCount(BaseModel):
    loan_count: int
    amount: MoneyOut


class WriteOffTotals(AmountCount):
    """The write-offs recorded (``loan_write_offs``): how many loans, the principal written off
    (``amount``) and, separately, the interest, penalty and fees written off."""

    interest: MoneyOut = Decimal("0")
    penalty: MoneyOut = Decimal("0")
    fees: MoneyOut = Decimal("0")


class OutcomeCount(BaseModel):
    key: str
    count: int


class CollectionsOutcomes(BaseModel):
    """The collections log (``collection_contacts``) counted: the outcome of every call and
    visit, the promises to pay made and how they were checked, and how the episodes ended."""

    contacts: list[OutcomeCount]
    promises_made: int
    promises_kept: int
    promises_broken: int
    # kept / (kept + broken); zero while no promise has been checked.
    promise_kept_rate: FractionOut
    episodes: list[OutcomeCount]


class PortfolioTotals(BaseModel):
    loan_count: int
    outstanding_principal: MoneyOut
    overdue_loan_count: int
    overdue_principal: MoneyOut


class PortfolioReport(BaseModel):
    as_of: date
    currency: str = "CNY"
    # The loans on the books: every application in SERVICING.
    totals: PortfolioTotals
    # Every application by its current stage (before disbursement the principal is zero).
    by_stage: list[Group]
    # No product catalog exists yet: the product dimension is the repayment method.
    product_dimension: str = "repayment_method"
    by_product: list[Group]
    # The grade of the latest assessment (A-E); "ungraded" when none is stored.
    by_grade: list[Group]
    # The latest five-category classification; "unclassified" before the first daily run.
    by_classification: list[Group]
    dpd_buckets: list[Group]
    par: list[ParOut]
    write_offs: WriteOffTotals
    recoveries: AmountCount
    notes: list[str]
    collections: CollectionsOutcomes | None = None

    def csv(self) -> str:
        """One line per figure: section, key, loan_count, amount, share."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["as_of", "section", "key", "label", "loan_count", "amount", "share"])
        day = self.as_of.isoformat()
        t = self.totals
        w.writerow([day, "total", "outstanding", "", t.loan_count, money(t.outstanding_principal)])
        w.writerow([day, "total", "overdue", "", t.overdue_loan_count, money(t.overdue_principal)])
        sections = (
            ("stage", self.by_stage),
            ("product", self.by_product),
            ("grade", self.by_grade),
            ("classification", self.by_classification),
            ("dpd", self.dpd_buckets),
        )
        for section, groups in sections:
            for g in groups:
                w.writerow(
                    [
                        day,
                        section,
                        g.key,
                        g.label or "",
                        g.loan_count,
                        money(g.outstanding_principal),
                        "",
                    ]
                )
        for p in self.par:
            w.writerow(
                [day, "par", p.key, "", p.loan_count, money(p.principal_at_risk), fraction(p.share)]
            )
        w.writerow(
            [day, "write_offs", "written_off", "", self.write_offs.loan_count,
             money(self.write_offs.amount), ""]
        )  # fmt: skip
        for key in ("interest", "penalty", "fees"):
            w.writerow(
                [day, "write_offs", key, "", self.write_offs.loan_count,
                 money(getattr(self.write_offs, key)), ""]
            )  # fmt: skip
        w.writerow(
            [day, "recoveries", "recovered", "", self.recoveries.loan_count,
             money(self.recoveries.amount), ""]
        )  # fmt: skip
        c = self.collections
        if c is not None:
            for o in c.contacts:
                w.writerow([day, "collections_contact", o.key, "", o.count, "", ""])
            for key, n in (
                ("made", c.promises_made),
                ("kept", c.promises_kept),
                ("broken", c.promises_broken),
            ):
                w.writerow([day, "collections_promise", key, "", n, "", ""])
            w.writerow(
                [day, "collections_promise", "kept_rate", "", "", "", fraction(c.promise_kept_rate)]
            )
            for o in c.episodes:
                w.writerow([day, "collections_episode", o.key, "", o.count, "", ""])
        return out.getvalue()


class OverdueItem(BaseModel):
    application_no: str
    borrower_name: str  # always masked: the worklist is shared beyond the PII roles
    days_past_due: int
    oldest_overdue_due_date: date
    overdue_principal: MoneyOut
    overdue_interest: MoneyOut
    overdue_fee: MoneyOut
    # Penalty interest as the installment rows hold it (accrued through the servicing
    # workflow's last daily refresh).
    penalty: MoneyOut
    overdue_amount: MoneyOut
    outstanding_principal: MoneyOut
    classification: str | None
    last_contact_at: datetime | None
    last_contact_result: str | None


OVERDUE_COLUMNS = list(OverdueItem.model_fields)


class OverduePage(BaseModel):
    as_of: date
    sort: str
    order: str
    items: list[OverdueItem]
    total: int
    limit: int
    offset: int

    def csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(OVERDUE_COLUMNS)
        for item in self.items:
            row = item.model_dump(mode="json")
            w.writerow(["" if row[c] is None else row[c] for c in OVERDUE_COLUMNS])
        return out.getvalue()


def money(x: Decimal) -> str:
    return format_money(x)


def fraction(x: Decimal) -> str:
    return format_rate(x)
