"""Payment reversal in the money engine: the ledger re-computed from the reversed payment equals,
to the fen, a ledger that never received it — checked against an independent re-implementation
of the repayment rules (``Oracle``: its own balances, penalty runs and allocation loop) that
replays every other payment from the loan's start."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.allocation import InstallmentBalance, PaymentMode
from domain.penalty import PenaltyPolicy
from domain.reversal import LedgerTerms, Posting, ReversalResult, apply_posting, reverse_payment
from domain.schedule import RepaymentMethod
from tests.domain.sample_loans import RATE, START, three_month_loan

D = Decimal
NONE = Decimal("0")
CAP = D("0.15")  # the penalty rate 12 % × 1.5 = 18 % is capped at 15 %
TERMS = LedgerTerms(
    annual_rate=RATE,
    start_date=START,
    method=RepaymentMethod.EQUAL_INSTALLMENT,
    penalty_policy=PenaltyPolicy(multiple=D("1.5")),
    max_annual_rate=CAP,
)
DUE = [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


def fen(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class Row:
    due: date
    principal: Decimal
    interest: Decimal
    principal_paid: Decimal = NONE
    interest_paid: Decimal = NONE
    penalty: Decimal = NONE
    penalty_paid: Decimal = NONE
    # Penalty counted through this many days after the due date.
    counted: int = 0

    def owed(self) -> dict[str, Decimal]:
        return {
            "penalty": self.penalty - self.penalty_paid,
            "interest": self.interest - self.interest_paid,
            "principal": self.principal - self.principal_paid,
        }

    def paid_off(self) -> bool:
        return all(v == 0 for v in self.owed().values())


@dataclass
class Oracle:
    """The contract's repayment rules written out plainly: penalty at min(rate × 1.5, cap) per
    day on the principal overdue, counted from the day after the due date, rounded once per
    stretch of unchanged principal; a payment goes to overdue penalties, interest, principal
    (oldest first, component by component), then the current installment's interest and
    principal, then the next installments in turn; what is left is credit."""

    rows: list[Row] = field(default_factory=list)
    credit: Decimal = NONE

    @classmethod
    def start(cls) -> Oracle:
        return cls(
            [
                Row(b.due_date, b.principal_due, b.interest_due)
                for b in three_month_loan()  # the schedule's figures, nothing more
            ]
        )

    def accrue(self, day: date) -> None:
        rate = min(RATE * D("1.5"), CAP)
        for r in self.rows:
            days = (day - r.due).days
            if days <= r.counted:
                continue
            p = r.principal - r.principal_paid
            r.penalty += fen(p * rate * days / 360) - fen(p * rate * r.counted / 360)
            r.counted = days

    def pay(self, amount: Decimal, day: date) -> None:
        self.accrue(day)
        funds = amount + self.credit
        overdue = [r for r in self.rows if r.due < day and not r.paid_off()]
        current = [r for r in self.rows if r.due >= day and not r.paid_off()][:1]

        def take(r: Row, part: str) -> None:
            nonlocal funds
            x = min(funds, r.owed()[part])
            funds -= x
            attr = {"penalty": "penalty_paid"}.get(part, f"{part}_paid")
            setattr(r, attr, getattr(r, attr) + x)

        for part in ("penalty", "interest", "principal"):
            for r in overdue:
                take(r, part)
        for r in current:
            for part in ("interest", "principal"):
                take(r, part)
        for r in self.rows:
            for part in ("penalty", "interest", "principal"):
                take(r, part)
        self.credit = funds

    def figures(self) -> list[tuple[Decimal, ...]]:
        return [
            (
                r.principal_paid,
                r.interest_paid,
                r.penalty,
                r.penalty_paid,
                r.principal - r.principal_paid,
            )
            for r in self.rows
        ]


def engine_figures(rows: tuple[InstallmentBalance, ...]) -> list[tuple[Decimal, ...]]:
    return [
        (
            b.principal_paid,
            b.interest_paid,
            b.penalty_accrued,
            b.penalty_paid,
            b.principal_outstanding,
        )
        for b in rows
    ]


def post_all(postings: list[Posting]) -> list[tuple[tuple[InstallmentBalance, ...], Decimal]]:
    """Book every posting with the engine; the ledger before each one (the workflow's journal)."""
    rows, credit = three_month_loan(), D("0")
    before = []
    for p in postings:
        before.append((rows, credit))
        result = apply_posting(rows, credit, p, TERMS)
        rows, credit = result.installments, result.credit
    return before


def reverse(postings: list[Posting], k: int, as_of: date) -> ReversalResult:
    before = post_all(postings)
    rows, credit = before[k]
    return reverse_payment(
        before=rows, credit_before=credit, later=postings[k + 1 :], as_of=as_of, terms=TERMS
    )


def oracle_without(postings: list[Posting], k: int, as_of: date) -> Oracle:
    o = Oracle.start()
    for i, p in enumerate(postings):
        if i != k:
            o.pay(p.amount, p.paid_on)
    o.accrue(as_of)
    return o


def test_a_reversed_on_time_payment_makes_installment_1_overdue_again() -> None:
    """Installment 1 (3,400.22) paid on its due date bounces; the borrower's next payment of
    3,400.22 on 2024-03-31 now first pays installment 1's penalty (31 days on 3,300.22 at 15 %:
    42.63), its interest (100.00) and 3,257.59 of its principal, leaving 42.63 of it and all of
    installment 2 unpaid; on 2024-04-10 both are overdue."""
    postings = [
        Posting("p1", D("3400.22"), DUE[0]),
        Posting("p2", D("3400.22"), DUE[1]),
    ]
    as_of = date(2024, 4, 10)
    result = reverse(postings, 0, as_of)
    first, second, third = result.installments
    assert first.penalty_paid == D("42.63") == fen(D("3300.22") * CAP * 31 / 360)
    assert first.interest_paid == D("100.00")
    assert first.principal_outstanding == D("42.63")
    # Then 10 more days on the 42.63 left: 0.73 − 0.55 (one rounding per unchanged stretch).
    assert first.penalty_accrued == D("42.63") + D("0.18")
    assert not second.is_paid and second.due_date < as_of
    assert second.principal_paid + second.interest_paid == D("0")
    assert second.penalty_accrued == fen(D("3333.22") * CAP * 10 / 360) == D("13.89")
    assert third.principal_paid == 0
    assert result.credit == 0
    oracle = oracle_without(postings, 0, as_of)
    assert engine_figures(result.installments) == oracle.figures()
    # The re-applied payment says where its money went now.
    (again,) = result.reapplied
    assert again.ref == "p2" and again.mode == PaymentMode.INSTALLMENTS
    assert sum(line.amount for line in again.lines) == D("3400.22")


def test_reversing_the_last_payment_reopens_a_settled_ledger() -> None:
    postings = [Posting(f"p{i}", D("3400.23"), DUE[i]) for i in range(3)]
    before_last = post_all(postings)[2]
    assert not before_last[0][2].is_paid
    result = reverse(postings, 2, DUE[2] + timedelta(days=5))
    assert not result.installments[2].is_paid
    assert result.installments[2].penalty_accrued > 0
    oracle = oracle_without(postings, 2, DUE[2] + timedelta(days=5))
    assert engine_figures(result.installments) == oracle.figures()
    assert result.credit == oracle.credit


def test_a_later_payoff_that_no_longer_covers_is_applied_as_a_repayment() -> None:
    early = Posting("p1", D("3400.22"), DUE[0])
    payoff_on = DUE[0] + timedelta(days=10)
    rows, credit = post_all([early])[0]
    booked = apply_posting(rows, credit, early, TERMS)
    from domain.prepayment import payoff_quote

    quote = payoff_quote(
        installments=booked.installments,
        as_of=payoff_on,
        annual_rate=RATE,
        start_date=START,
        penalty_policy=TERMS.penalty_policy,
        max_annual_rate=CAP,
    )
    postings = [early, Posting("p2", quote.total, payoff_on, PaymentMode.PAYOFF)]
    result = reverse(postings, 0, payoff_on)
    (again,) = result.reapplied
    assert again.mode == PaymentMode.INSTALLMENTS
    assert not all(b.is_paid for b in result.installments)
    oracle = oracle_without(postings, 0, payoff_on)
    assert engine_figures(result.installments) == oracle.figures()


@st.composite
def payment_runs(draw: st.DrawFn) -> tuple[list[Posting], int, date]:
    n = draw(st.integers(min_value=1, max_value=5))
    day = START
    postings = []
    for i in range(n):
        day += timedelta(days=draw(st.integers(min_value=1, max_value=45)))
        cents = draw(st.integers(min_value=1, max_value=500_000))
        postings.append(Posting(f"p{i}", D(cents) / 100, day))
    k = draw(st.integers(min_value=0, max_value=n - 1))
    as_of = day + timedelta(days=draw(st.integers(min_value=0, max_value=60)))
    return postings, k, as_of


@settings(max_examples=150, deadline=None)
@given(payment_runs())
def test_a_reversal_equals_a_ledger_that_never_had_the_payment(
    run: tuple[list[Posting], int, date],
) -> None:
    postings, k, as_of = run
    result = reverse(postings, k, as_of)
    oracle = oracle_without(postings, k, as_of)
    assert engine_figures(result.installments) == oracle.figures()
    assert result.credit == oracle.credit
    # Every fen of the payments kept is applied or held: nothing of the reversed one.
    kept = sum((p.amount for i, p in enumerate(postings) if i != k), D("0"))
    applied = sum(
        (
            b.principal_paid + b.interest_paid + b.fee_paid + b.penalty_paid
            for b in result.installments
        ),
        D("0"),
    )
    assert applied + result.credit == kept


@pytest.mark.parametrize("k", [0, 1])
def test_the_ledger_before_each_later_payment_is_given_for_the_next_reversal(k: int) -> None:
    """Reversing two payments one after the other (the journal's before-states refreshed by the
    first) equals a ledger without both."""
    postings = [Posting(f"p{i}", D("2000.00"), DUE[0] + timedelta(days=10 * i)) for i in range(3)]
    first = reverse(postings, k, DUE[1])
    later = postings[k + 1 :]
    # Reverse p2 next, from the ledger the first reversal gives before it.
    j = 2 - (k + 1)
    again = first.reapplied[j]
    second = reverse_payment(
        before=again.installments_before,
        credit_before=again.credit_before,
        later=later[j + 1 :],
        as_of=DUE[1],
        terms=TERMS,
    )
    o = Oracle.start()
    o.pay(postings[1 - k].amount, postings[1 - k].paid_on)
    o.accrue(DUE[1])
    assert engine_figures(second.installments) == o.figures()
