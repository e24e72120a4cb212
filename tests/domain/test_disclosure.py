from datetime import date
from decimal import Decimal

import numpy_financial as npf
import pytest

from domain.disclosure import (
    CeilingPolicy,
    cash_flows_from_schedule,
    check_interest_ceiling,
    disclose_cost,
)
from domain.lpr import default_lpr_table
from domain.money import format_rate
from domain.schedule import RepaymentMethod, build_schedule

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
