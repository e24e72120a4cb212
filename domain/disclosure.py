"""Cost disclosure by IRR (PBoC announcement 2021 No. 3) and the interest-rate ceiling check.

The annualized rate is solved from the real cash flows, fees included; the ceiling is 4 × LPR.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from domain.lpr import LprTable
from domain.money import format_rate
from domain.schedule import Schedule, require_fen

RATE_QUANTUM = Decimal("1E-12")  # stored rates keep 12 places; format_rate shows 6
_TOLERANCE = Decimal("1E-14")
_PRECISION = 40


@dataclass(frozen=True)
class CostDisclosure:
    """Annualized cost of a loan: monthly IRR, simple APR (12·r) and compound ((1+r)^12 − 1)."""

    monthly_irr: Decimal
    apr: Decimal
    apr_compound: Decimal


def _npv(rate: Decimal, net: Decimal, payments: Sequence[Decimal]) -> Decimal:
    discount = 1 / (1 + rate)
    factor = Decimal(1)
    total = -net
    for payment in payments:
        factor *= discount
        total += payment * factor
    return total


def disclose_cost(
    *, principal: Decimal, upfront_fee: Decimal, payments: Sequence[Decimal]
) -> CostDisclosure:
    """Annualized cost of: principal − upfront_fee received at month 0, payments[k−1] paid at
    month k. The monthly IRR is solved by bisection in Decimal to within 1e-14 and kept to 12
    places. A month with no payment is a 0 in `payments` (see cash_flows_from_schedule).
    """
    principal = require_fen("principal", principal, positive=True)
    upfront_fee = require_fen("upfront_fee", upfront_fee)
    net = principal - upfront_fee
    if net <= 0:
        raise ValueError("upfront_fee: must be less than the principal")
    flows = [require_fen(f"payments[{i}]", p) for i, p in enumerate(payments)]
    if not flows or sum(flows) <= 0:
        raise ValueError("payments: at least one payment must be positive")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        # NPV falls as the rate rises (all payments ≥ 0), so one sign change brackets the IRR.
        low, high = Decimal("-0.99"), Decimal(1)
        while _npv(high, net, flows) > 0:
            low, high = high, high * 2
            if high > 10**6:
                raise ValueError("payments: no internal rate of return below 10^6 a month")
        if _npv(low, net, flows) < 0:
            raise ValueError("payments: repay less than 1 % of the net proceeds")
        while high - low > _TOLERANCE:
            mid = (low + high) / 2
            if _npv(mid, net, flows) > 0:
                low = mid
            else:
                high = mid
        monthly = (low + high) / 2
        apr = 12 * monthly
        compound = (1 + monthly) ** 12 - 1
        # Quantizing to 12 places needs as many digits as the integer part has, plus 12: an
        # absurd cost (a fee of nearly the whole principal) must be disclosed, not crash.
        ctx.prec = max(_PRECISION, compound.adjusted() + 20)
        return CostDisclosure(
            monthly_irr=monthly.quantize(RATE_QUANTUM),
            apr=apr.quantize(RATE_QUANTUM),
            apr_compound=compound.quantize(RATE_QUANTUM),
        )


def cash_flows_from_schedule(*, schedule: Schedule, start_date: date) -> tuple[Decimal, ...]:
    """Monthly payments for disclose_cost: each installment's payment placed at its month
    offset from start_date (a bullet loan gives zeros, then one payment at month n)."""
    flows: dict[int, Decimal] = {}
    for inst in schedule.installments:
        month = (inst.due_date.year - start_date.year) * 12 + inst.due_date.month - start_date.month
        if month < 1:
            raise ValueError(f"schedule: installment {inst.number} falls due before month 1")
        flows[month] = flows.get(month, Decimal("0")) + inst.payment
    last = max(flows, default=0)
    return tuple(flows.get(m, Decimal("0.00")) for m in range(1, last + 1))


def disclose_schedule_cost(
    *, principal: Decimal, upfront_fee: Decimal, schedule: Schedule, start_date: date
) -> CostDisclosure:
    """The annualized cost of a schedule, each payment placed in the month it falls due (a
    bullet loan's single payment at month n, not month 1). Every offer, quote and contract
    discloses this figure, and the ceiling is checked against it."""
    return disclose_cost(
        principal=principal,
        upfront_fee=upfront_fee,
        payments=cash_flows_from_schedule(schedule=schedule, start_date=start_date),
    )


@dataclass(frozen=True)
class CeilingPolicy:
    """Interest ceiling: lpr_multiple × one-year LPR at contract date, and an optional cap."""

    lpr_multiple: Decimal = Decimal("4")
    absolute_cap: Decimal | None = Decimal("0.24")

    def binding_cap(self, lpr_one_year: Decimal) -> Decimal:
        """The highest all-in annual rate allowed with this one-year LPR."""
        lpr_cap = self.lpr_multiple * lpr_one_year
        return lpr_cap if self.absolute_cap is None else min(lpr_cap, self.absolute_cap)


@dataclass(frozen=True)
class CeilingCheck:
    """Outcome of a ceiling check with every figure it used; binding_cap = the lower cap."""

    ok: bool
    all_in_rate: Decimal
    lpr: Decimal
    lpr_effective_date: date
    lpr_cap: Decimal
    absolute_cap: Decimal | None
    binding_cap: Decimal
    reason: str


def _pct(rate: Decimal) -> str:
    return f"{format_rate(rate * 100)[:-2]}%"  # 0.128038 → '12.8038%'


def check_interest_ceiling(
    *,
    all_in_rate: Decimal,
    contract_date: date,
    lpr_table: LprTable,
    policy: CeilingPolicy = CeilingPolicy(),
) -> CeilingCheck:
    """Is the loan's all-in annual cost within min(lpr_multiple × LPR, absolute_cap)?

    all_in_rate is the simple annualized rate `CostDisclosure.apr` (12 × monthly IRR of the
    real cash flows, every fee included), not `apr_compound`: the courts' 4 × LPR line
    (SPC provisions on private lending, 2020 revision) compares simple annual rates, and the
    one-year LPR itself is a simple annual rate. The compound figure is still disclosed. The cap
    is exact (no rounding); a rate equal to the cap passes. LookupError if no LPR was in force
    on contract_date.
    """
    lpr = lpr_table.in_force(contract_date)
    lpr_cap = policy.lpr_multiple * lpr.one_year
    binding = policy.binding_cap(lpr.one_year)
    ok = all_in_rate <= binding
    which = (
        f"{policy.lpr_multiple} × LPR {_pct(lpr.one_year)} "
        f"(in force from {lpr.effective_date.isoformat()})"
        if binding == lpr_cap
        else "the absolute cap"
    )
    reason = (
        f"all-in rate {_pct(all_in_rate)} {'is within' if ok else 'exceeds'} the ceiling "
        f"{_pct(binding)} = {which}"
    )
    return CeilingCheck(
        ok=ok,
        all_in_rate=all_in_rate,
        lpr=lpr.one_year,
        lpr_effective_date=lpr.effective_date,
        lpr_cap=lpr_cap,
        absolute_cap=policy.absolute_cap,
        binding_cap=binding,
        reason=reason,
    )
