"""The upfront service fee is never taken out of the principal: it is a due amount of the first
installment, in the schedule, the ledger, the APR, the offer and every early repayment. Each
figure is checked against values computed here by hand or by numpy_financial."""

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy_financial as npf
import pytest

from domain.allocation import Component, allocate_payment, balances_from_schedule
from domain.disclosure import disclose_schedule_cost
from domain.lpr import LprRate
from domain.policy import DEFAULT_POLICY
from domain.prepayment import apply_partial_prepayment, apply_payoff, payoff_quote
from domain.schedule import RepaymentMethod, Schedule, UpfrontFeeDue, build_schedule
from domain.tasks import ProductTermsData
from models.shapes import LoanTerms
from workflows.matching import price_offer

D = Decimal
START = date(2024, 1, 31)
FEE = D("150.00")
EI = RepaymentMethod.EQUAL_INSTALLMENT


def loan_with_fee() -> Schedule:
    """¥10,000 at 12 % for 3 months (payments 3400.22, 3400.22, 3400.23), fee ¥150 upfront."""
    return build_schedule(
        principal=D("10000.00"),
        annual_rate=D("0.12"),
        term_months=3,
        method=EI,
        start_date=START,
        upfront_fee=FEE,
    )


def test_the_fee_falls_due_with_the_first_installment_only() -> None:
    s = loan_with_fee()
    first, second, third = s.installments
    assert (first.principal, first.interest, first.fee, first.payment) == (
        D("3300.22"),
        D("100.00"),
        D("150.00"),
        D("3550.22"),
    )
    assert first.upfront_fee == FEE
    assert (second.fee, second.payment) == (D("0.00"), D("3400.22"))
    assert (third.fee, third.payment) == (D("0.00"), D("3400.23"))
    assert s.total_principal == D("10000.00")  # nothing taken out of the principal
    assert s.total_fees == D("150.00")
    assert s.total_payment == D("10350.67")  # 3550.22 + 3400.22 + 3400.23


def test_the_apr_sees_the_whole_principal_at_day_0_and_the_fee_with_installment_1() -> None:
    s = loan_with_fee()
    cost = disclose_schedule_cost(
        principal=D("10000.00"), upfront_fee=D("0"), schedule=s, start_date=START
    )
    irr = npf.irr([-10000.0, 3550.22, 3400.22, 3400.23])
    assert abs(cost.monthly_irr - D(repr(irr))) < D("1e-9")
    assert abs(cost.apr - D(repr(12 * irr))) < D("1e-9")
    # Paying the fee a month later than a deduction at day 0 costs less, but more than 12 %.
    deducted = npf.irr([-9850.0, 3400.22, 3400.22, 3400.23])
    assert D("0.12") < cost.apr < D(repr(12 * deducted))


def test_the_first_payment_pays_the_fee_like_any_amount_due() -> None:
    ledger = balances_from_schedule(loan_with_fee())
    assert ledger[0].fee_due == FEE and ledger[0].fixed_fee == FEE
    result = allocate_payment(
        installments=ledger, amount=D("3550.22"), as_of=date(2024, 2, 29), annual_rate=D("0.12")
    )
    paid = {(line.installment, line.component): line.amount for line in result.lines}
    assert paid == {
        (1, Component.FEE): D("150.00"),
        (1, Component.INTEREST): D("100.00"),
        (1, Component.PRINCIPAL): D("3300.22"),
    }
    assert result.installments[0].is_paid and result.credit == 0


def test_a_payoff_before_the_first_due_date_still_owes_the_fee() -> None:
    ledger = balances_from_schedule(loan_with_fee())
    on = date(2024, 2, 10)
    q = payoff_quote(installments=ledger, as_of=on, annual_rate=D("0.12"), start_date=START)
    # 10000 × 0.12 × 10 / 360 = 33.33; the fee is owed whenever the loan ends.
    assert (q.remaining_principal, q.accrued_interest, q.fees) == (
        D("10000.00"),
        D("33.33"),
        D("150.00"),
    )
    assert q.total == D("10183.33")
    done = apply_payoff(
        installments=ledger, amount=q.total, as_of=on, annual_rate=D("0.12"), start_date=START
    )
    assert all(b.is_paid for b in done.installments) and done.credit == 0
    fee_lines = [line for line in done.lines if line.component is Component.FEE]
    assert sum(line.amount for line in fee_lines) == FEE
    assert sum(line.amount for line in done.lines) == q.total


def test_a_payoff_after_the_first_installment_owes_no_fee_again() -> None:
    ledger = balances_from_schedule(loan_with_fee())
    paid = allocate_payment(
        installments=ledger, amount=D("3550.22"), as_of=date(2024, 2, 29), annual_rate=D("0.12")
    ).installments
    q = payoff_quote(
        installments=paid, as_of=date(2024, 3, 10), annual_rate=D("0.12"), start_date=START
    )
    assert q.fees == 0
    # 6699.78 × 0.12 × 10 / 360 = 22.3326 → 22.33
    assert q.total == D("6699.78") + D("22.33")


def test_a_fee_paid_early_is_credited_back_and_charged_once_at_payoff() -> None:
    ledger = balances_from_schedule(loan_with_fee())
    on = date(2024, 2, 10)
    early = allocate_payment(
        installments=ledger, amount=D("150.00"), as_of=on, annual_rate=D("0.12")
    ).installments
    assert early[0].fee_paid == FEE
    q = payoff_quote(installments=early, as_of=on, annual_rate=D("0.12"), start_date=START)
    assert (q.fees, q.prepaid_credit) == (FEE, FEE)
    assert q.total == D("10033.33")  # the fee was already paid: principal and interest only


def test_a_partial_prepayment_before_the_first_due_date_keeps_the_fee_due() -> None:
    ledger = balances_from_schedule(loan_with_fee())
    on = date(2024, 2, 10)
    result = apply_partial_prepayment(
        installments=ledger,
        amount=D("5033.33"),
        as_of=on,
        annual_rate=D("0.12"),
        start_date=START,
        method=EI,
        mode="keep_term",
    )
    first = result.installments[0]
    assert first.due_date == date(2024, 2, 29)
    assert first.fixed_fee == FEE and first.fee_due - first.fee_paid == FEE
    assert sum(b.fee_due for b in result.installments) == FEE
    assert sum(b.principal_due for b in result.installments) == D("10000.00")
    q = payoff_quote(
        installments=result.installments, as_of=on, annual_rate=D("0.12"), start_date=START
    )
    assert q.fees == FEE


def test_loan_terms_pay_out_the_whole_principal() -> None:
    terms = LoanTerms(D("20000.00"), 12, D("0.12"), EI, upfront_fee=FEE)
    assert terms.payout == D("20000.00") and terms.fee_deducted == 0
    assert terms.schedule(START).installments[0].fee == FEE
    legacy = LoanTerms(
        D("20000.00"),
        12,
        D("0.12"),
        EI,
        upfront_fee=FEE,
        upfront_fee_due=UpfrontFeeDue.DEDUCTED_FROM_PAYOUT,
    )
    assert legacy.payout == D("19850.00")
    assert legacy.schedule(START).total_fees == 0  # taken at the payout, not scheduled


def test_the_offer_totals_include_the_fee_once() -> None:
    offer = price_offer(
        ProductTermsData(D("20000.00"), 12, D("0.12"), EI, upfront_fee=FEE),
        requested_amount=D("20000.00"),
        lpr=LprRate(date(2023, 1, 1), D("0.05"), None),
        policy=DEFAULT_POLICY,
        offered_on=START,
        now=datetime(2024, 1, 31, 2, tzinfo=UTC),
    )
    level = D("1776.98")  # 20000 × 0.01 × 1.01^12 / (1.01^12 − 1) = 1776.9758 → 1776.98
    assert offer.first_payment == level + FEE
    assert offer.total_fees == FEE
    schedule = offer.terms.schedule(START)
    assert offer.total_payment == schedule.total_payment
    assert offer.total_payment == offer.terms.principal + offer.total_interest + FEE
    flows = [-20000.0] + [float(i.payment) for i in schedule.installments]
    assert abs(offer.apr - D(repr(12 * npf.irr(flows)))) < D("1e-9")


def test_a_product_may_only_state_the_fee_due_with_the_first_installment() -> None:
    data = {"amount": "20000.00", "term_months": 12, "annual_rate": "0.12", "upfront_fee": "150"}
    parsed = ProductTermsData.parse({**data, "upfront_fee_due": "first_installment"})
    assert parsed.upfront_fee_due == UpfrontFeeDue.FIRST_INSTALLMENT
    assert ProductTermsData.parse(data).upfront_fee_due == UpfrontFeeDue.FIRST_INSTALLMENT
    with pytest.raises(ValueError, match=r"data\.upfront_fee_due"):
        ProductTermsData.parse({**data, "upfront_fee_due": "deducted_from_payout"})
