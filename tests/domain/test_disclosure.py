from datetime import date
from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.disclosure import (
    CeilingPolicy,
    cash_flows_from_schedule,
    check_interest_ceiling,
    disclose_cost,
    disclose_schedule_cost,
)
from domain.lpr import default_lpr_table
from domain.money import format_rate
from domain.schedule import (
    RepaymentMethod,
    Schedule,
    ScheduledInstallment,
    add_months,
    build_schedule,
)

D = Decimal
TOLERANCE = D("0.00005")  # 0.005 percentage points


def pboc_example() -> tuple[D, D, list[D]]:
    # PBoC announcement 2021 No. 3: ¥100,000, ¥1,000 upfront fee, 12 × ¥8,833.30
    return D("100000"), D("1000"), [D("8833.30")] * 12


def test_pboc_example() -> None:
    principal, fee, payments = pboc_example()
    cost = disclose_cost(principal=principal, upfront_fee=fee, payments=payments)
    reference = npf.irr([-99000.0] + [8833.30] * 12)
    assert abs(cost.monthly_irr - D(repr(reference))) < D("1e-10")
    assert abs(cost.apr - D("0.1280")) < TOLERANCE
    assert abs(cost.apr_compound - D("0.1358")) < TOLERANCE
    assert format_rate(cost.apr) == "0.128038"
    assert format_rate(cost.apr_compound) == "0.135826"
    assert abs(cost.apr - 12 * cost.monthly_irr) <= D("6e-12")  # both kept to 12 places
    assert cost.monthly_irr.as_tuple().exponent == -12


def test_irr_solves_the_cash_flow_exactly() -> None:
    principal, fee, payments = pboc_example()
    r = disclose_cost(principal=principal, upfront_fee=fee, payments=payments).monthly_irr
    npv = sum(p / (1 + r) ** k for k, p in enumerate(payments, start=1)) - (principal - fee)
    assert abs(npv) < D("0.0001")


def test_equal_installment_without_fees_discloses_its_contract_rate() -> None:
    s = build_schedule(
        principal=D("10000"),
        annual_rate=D("0.12"),
        term_months=12,
        method=RepaymentMethod.EQUAL_INSTALLMENT,
        start_date=date(2024, 1, 31),
    )
    payments = cash_flows_from_schedule(schedule=s, start_date=date(2024, 1, 31))
    cost = disclose_cost(principal=D("10000"), upfront_fee=D("0"), payments=payments)
    assert abs(cost.apr - D("0.12")) < D("0.00001")  # only the fen rounding differs


def test_bullet_cash_flows_and_cost() -> None:
    start = date(2024, 1, 31)
    s = build_schedule(
        principal=D("10000"),
        annual_rate=D("0.12"),
        term_months=12,
        method=RepaymentMethod.BULLET,
        start_date=start,
    )
    flows = cash_flows_from_schedule(schedule=s, start_date=start)
    assert flows == (D("0"),) * 11 + (D("11200.00"),)
    cost = disclose_cost(principal=D("10000"), upfront_fee=D("0"), payments=flows)
    # 1.12 = (1 + r)^12 → r = 1.12^(1/12) − 1, apr_compound = 12 % exactly
    assert abs(cost.monthly_irr - D(repr(1.12 ** (1 / 12) - 1))) < D("1e-10")
    assert abs(cost.apr_compound - D("0.12")) < D("1e-10")
    assert abs(cost.apr - D("0.113865515")) < D("1e-8")


def test_bullet_loan_discloses_its_cost_at_maturity_not_month_one() -> None:
    # ¥8,000 at 10 % for 3 months, bullet: 8,000 + 8,000 × 10 % × 3/12 = 8,200 paid at month 3.
    # Independently: (1 + r)^3 = 8200/8000, r = 1.025^(1/3) − 1 = 0.8264837…%, APR 12r = 9.9178 %.
    # (Placing the 8,200 at month 1 gives r = 2.5 %, "APR 30 %".)
    start = date(2026, 1, 31)
    s = build_schedule(
        principal=D("8000"),
        annual_rate=D("0.10"),
        term_months=3,
        method=RepaymentMethod.BULLET,
        start_date=start,
    )
    assert [(i.due_date, i.payment) for i in s.installments] == [(date(2026, 4, 30), D("8200.00"))]
    cost = disclose_schedule_cost(
        principal=D("8000"), upfront_fee=D("0"), schedule=s, start_date=start
    )
    closed_form = D(repr((8200 / 8000) ** (1 / 3) - 1))
    reference = D(repr(npf.irr([-8000.0, 0.0, 0.0, 8200.0])))
    assert abs(cost.monthly_irr - closed_form) < D("1e-10")
    assert abs(cost.monthly_irr - reference) < D("1e-10")
    assert abs(cost.apr - 12 * closed_form) < D("1e-9")
    assert f"{cost.apr * 100:.4f}" == "9.9178"  # ~9.92 %, not 30 %
    assert cost.apr_compound == D("0.103812890625")  # 1.025^4 − 1, exactly


def test_equal_installment_disclosure_unchanged_by_dating_the_payments() -> None:
    # The PBoC 2021 No. 3 flows (¥100,000, ¥1,000 fee, 12 × ¥8,833.30) as a dated schedule with
    # month-end due dates: one payment a month, so the same 12.8038 % / 13.5826 % as before.
    start = date(2021, 1, 31)
    principal, fee, payments = pboc_example()
    part = D("8333.33")
    rows = tuple(
        ScheduledInstallment(
            number=k,
            due_date=add_months(start, k),
            principal=part if k < 12 else principal - 11 * part,
            interest=payment - (part if k < 12 else principal - 11 * part),
            fee=D("0"),
            payment=payment,
            remaining_principal=principal - k * part if k < 12 else D("0"),
        )
        for k, payment in enumerate(payments, start=1)
    )
    s = Schedule(
        installments=rows,
        total_principal=principal,
        total_interest=sum((r.interest for r in rows), D(0)),
        total_fees=D("0"),
        total_payment=sum(payments, D(0)),
    )
    dated = disclose_schedule_cost(
        principal=principal, upfront_fee=fee, schedule=s, start_date=start
    )
    assert dated == disclose_cost(principal=principal, upfront_fee=fee, payments=payments)
    assert format_rate(dated.apr) == "0.128038"
    assert format_rate(dated.apr_compound) == "0.135826"


@settings(max_examples=50, deadline=None)
@given(
    principal=st.integers(min_value=1_000_00, max_value=1_000_000_00).map(lambda n: D(n) / 100),
    rate=st.integers(min_value=1, max_value=240).map(lambda n: D(n) / 1000),
    term=st.integers(min_value=1, max_value=36),
    fee_share=st.integers(min_value=0, max_value=5),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
)
def test_bullet_cost_is_the_nth_root_of_what_is_repaid(
    principal: D, rate: D, term: int, fee_share: int, start: date
) -> None:
    s = build_schedule(
        principal=principal,
        annual_rate=rate,
        term_months=term,
        method=RepaymentMethod.BULLET,
        start_date=start,
    )
    fee = (principal * fee_share / 100).quantize(D("0.01"))
    cost = disclose_schedule_cost(
        principal=principal, upfront_fee=fee, schedule=s, start_date=start
    )
    repaid = s.total_payment
    closed_form = (float(repaid) / float(principal - fee)) ** (1 / term) - 1
    assert abs(cost.monthly_irr - D(repr(closed_form))) < D("1e-9")


def test_zero_cost_loan() -> None:
    cost = disclose_cost(principal=D("1200"), upfront_fee=D("0"), payments=[D("100")] * 12)
    assert abs(cost.monthly_irr) < D("1e-12")
    assert abs(cost.apr_compound) < D("1e-11")


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"principal": D("0")}, "principal"),
        ({"upfront_fee": D("100000")}, "upfront_fee"),
        ({"payments": []}, "payments"),
        ({"payments": [D("1.001")]}, r"payments\[0\]"),
    ],
)
def test_disclose_refuses_bad_input(kw: dict[str, object], name: str) -> None:
    principal, fee, payments = pboc_example()
    args: dict[str, object] = {"principal": principal, "upfront_fee": fee, "payments": payments}
    args.update(kw)
    with pytest.raises(ValueError, match=f"^{name}"):
        disclose_cost(**args)  # type: ignore[arg-type]


def test_ceiling_refuses_the_pboc_example_in_2025() -> None:
    principal, fee, payments = pboc_example()
    apr = disclose_cost(principal=principal, upfront_fee=fee, payments=payments).apr
    check = check_interest_ceiling(
        all_in_rate=apr,
        contract_date=date(2025, 6, 1),
        lpr_table=default_lpr_table(),
        policy=CeilingPolicy(),
    )
    assert not check.ok
    assert check.lpr == D("0.0300")
    assert check.lpr_effective_date == date(2025, 5, 20)
    assert check.lpr_cap == D("0.12")
    assert check.absolute_cap == D("0.24")
    assert check.binding_cap == D("0.12")
    assert check.reason == (
        "all-in rate 12.8038% exceeds the ceiling 12.0000% = 4 × LPR 3.0000% "
        "(in force from 2025-05-20)"
    )


def test_ceiling_accepts_the_same_loan_in_2020() -> None:
    check = check_interest_ceiling(
        all_in_rate=D("0.128038"),
        contract_date=date(2020, 1, 1),
        lpr_table=default_lpr_table(),
        policy=CeilingPolicy(),
    )
    assert check.ok
    assert check.lpr == D("0.0415")
    assert check.binding_cap == D("0.1660")
    assert check.reason.startswith("all-in rate 12.8038% is within the ceiling 16.6000%")


def test_absolute_cap_binds_when_lower_and_rate_at_cap_passes() -> None:
    policy = CeilingPolicy(lpr_multiple=D("4"), absolute_cap=D("0.10"))
    on_cap = check_interest_ceiling(
        all_in_rate=D("0.10"),
        contract_date=date(2025, 6, 1),
        lpr_table=default_lpr_table(),
        policy=policy,
    )
    assert on_cap.ok
    assert on_cap.binding_cap == D("0.10")
    assert on_cap.reason.endswith("= the absolute cap")
    above = check_interest_ceiling(
        all_in_rate=D("0.100001"),
        contract_date=date(2025, 6, 1),
        lpr_table=default_lpr_table(),
        policy=policy,
    )
    assert not above.ok


def test_no_absolute_cap() -> None:
    # 10 × LPR 4.20 % = 42 %: only the absolute 24 % line stops a 30 % loan
    table = default_lpr_table()
    capped = check_interest_ceiling(
        all_in_rate=D("0.30"),
        contract_date=date(2019, 9, 20),
        lpr_table=table,
        policy=CeilingPolicy(lpr_multiple=D("10")),
    )
    assert not capped.ok
    assert capped.binding_cap == D("0.24")
    uncapped = check_interest_ceiling(
        all_in_rate=D("0.30"),
        contract_date=date(2019, 9, 20),
        lpr_table=table,
        policy=CeilingPolicy(lpr_multiple=D("10"), absolute_cap=None),
    )
    assert uncapped.ok
    assert uncapped.absolute_cap is None
    assert uncapped.binding_cap == D("0.4200")


def test_ceiling_before_lpr_exists() -> None:
    with pytest.raises(LookupError):
        check_interest_ceiling(
            all_in_rate=D("0.1"),
            contract_date=date(2019, 1, 1),
            lpr_table=default_lpr_table(),
            policy=CeilingPolicy(),
        )
