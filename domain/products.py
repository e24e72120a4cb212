"""The product catalog (seed §2 product manager, §3.3 product matching): what each loan product
lends, to whom and at what price, and the matching of an application against it.

A product is versioned: a version is never changed; a change is a new version with an
effective date, and the version in force on a date is the newest whose effective date has come.
An offer records the product code, the version and the figures of the definition it used, so
a later version never changes it.

Pure code: the definitions live in the database (``loanops.products``), the facts of the
application are gathered by an activity (``activities.products``). No ``from __future__
import annotations``: these dataclasses cross the workflow sandbox through pydantic.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from domain.disclosure import CeilingPolicy, check_interest_ceiling, disclose_schedule_cost
from domain.lpr import LprRate, LprTable
from domain.money import FEN, ZERO, to_fen
from domain.schedule import MAX_TERM_MONTHS, RepaymentMethod, UpfrontFeeDue, build_schedule

GRADES = ("A", "B", "C", "D", "E")
RATE_QUANTUM = Decimal("0.000001")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")
_DOCUMENT_KIND = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_PRODUCT_AMOUNT = Decimal("10000000.00")


class FeeBasis(StrEnum):
    """How the upfront service fee is set: a fixed amount, or a rate of the principal."""

    FIXED = "fixed"
    RATE = "rate"


@dataclass(frozen=True)
class RateRange:
    """The annual contract rates a product charges one risk grade (both ends allowed)."""

    low: Decimal
    high: Decimal

    def __contains__(self, rate: object) -> bool:
        return isinstance(rate, Decimal) and self.low <= rate <= self.high


@dataclass(frozen=True)
class ProductDefinition:
    """One version's definition. ``rates`` names the eligible grades: a grade absent from it
    is not eligible for the product. Fees: ``upfront_fee`` is an amount (basis fixed) or a
    fraction of the principal (basis rate); ``monthly_fee_rate`` is a fraction of the principal
    charged each month. ``approval_limit``: above it the department manager must have approved
    the application (the risk approval above authority); None = the product's maximum."""

    code: str
    name: str
    methods: tuple[RepaymentMethod, ...]
    min_amount: Decimal
    max_amount: Decimal
    terms: tuple[int, ...]
    rates: dict[str, RateRange]
    upfront_fee_basis: FeeBasis = FeeBasis.FIXED
    upfront_fee: Decimal = Decimal("0.00")
    upfront_fee_due: UpfrontFeeDue = UpfrontFeeDue.FIRST_INSTALLMENT
    monthly_fee_rate: Decimal = Decimal("0")
    penalty_multiple: Decimal = Decimal("1.5")
    prepayment_fee_rate: Decimal = Decimal("0")
    required_documents: tuple[str, ...] = ()
    min_age: int = 18
    max_age: int | None = None
    approval_limit: Decimal | None = None

    # ---- figures ------------------------------------------------------------------------------

    def upfront_fee_for(self, amount: Decimal) -> Decimal:
        if self.upfront_fee_basis == FeeBasis.RATE:
            return to_fen(amount * self.upfront_fee)
        return to_fen(self.upfront_fee)

    def monthly_fee_for(self, amount: Decimal) -> Decimal:
        return to_fen(amount * self.monthly_fee_rate)

    def nearest_term(self, requested: int) -> int:
        """The requested term if the product allows it, else the nearest (the shorter on a tie)."""
        return min(self.terms, key=lambda t: (abs(t - requested), t))

    def highest_rate(self) -> Decimal:
        return max(r.high for r in self.rates.values())

    # ---- validation ---------------------------------------------------------------------------

    def validate(self, *, rate_ceiling: Decimal | None = None) -> None:
        """ValueError naming the first field that makes no sense; ``rate_ceiling`` is the
        interest ceiling in force (no grade's range may reach above it)."""
        if not _CODE.match(self.code):
            raise ValueError(
                "code: must be 2-32 upper-case letters, digits or _, starting with a letter"
            )
        if not self.name.strip() or len(self.name) > 100:
            raise ValueError("name: must be between 1 and 100 characters")
        if not self.methods:
            raise ValueError("methods: at least one repayment method is required")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError("methods: a method is listed twice")
        _money("min_amount", self.min_amount, positive=True)
        _money("max_amount", self.max_amount, positive=True)
        if self.max_amount > MAX_PRODUCT_AMOUNT:
            raise ValueError(f"max_amount: must not exceed {MAX_PRODUCT_AMOUNT}")
        if self.min_amount > self.max_amount:
            raise ValueError(f"min_amount: {self.min_amount} is above max_amount {self.max_amount}")
        if not self.terms:
            raise ValueError("terms: at least one term (months) is required")
        for i, term in enumerate(self.terms):
            if isinstance(term, bool) or not isinstance(term, int):
                raise ValueError(f"terms[{i}]: must be a whole number of months")
            if not 1 <= term <= MAX_TERM_MONTHS:
                raise ValueError(f"terms[{i}]: must be between 1 and {MAX_TERM_MONTHS}")
        if len(set(self.terms)) != len(self.terms):
            raise ValueError("terms: a term is listed twice")
        if not self.rates:
            raise ValueError("rates: at least one risk grade must be eligible")
        for grade, band in self.rates.items():
            if grade not in GRADES:
                raise ValueError(f"rates.{grade}: is not a risk grade (A-E)")
            for end in ("low", "high"):
                value = getattr(band, end)
                _rate(f"rates.{grade}.{end}", value)
            if band.low > band.high:
                raise ValueError(f"rates.{grade}.low: {band.low} is above the high end {band.high}")
            if rate_ceiling is not None and band.high > rate_ceiling:
                raise ValueError(
                    f"rates.{grade}.high: {band.high} is above the interest ceiling "
                    f"{rate_ceiling} in force"
                )
        if self.upfront_fee_basis == FeeBasis.FIXED:
            _money("upfront_fee", self.upfront_fee)
            if self.upfront_fee >= self.min_amount:
                raise ValueError("upfront_fee: must be less than min_amount")
        else:
            _rate("upfront_fee", self.upfront_fee)
            if self.upfront_fee >= Decimal("0.2"):
                raise ValueError("upfront_fee: a rate of the principal must be below 0.2")
        if self.upfront_fee_due != UpfrontFeeDue.FIRST_INSTALLMENT:
            raise ValueError(
                "upfront_fee_due: must be first_installment; the fee is never taken out of the "
                "principal (the borrower receives the whole principal)"
            )
        _rate("monthly_fee_rate", self.monthly_fee_rate)
        if self.monthly_fee_rate >= Decimal("0.02"):
            raise ValueError("monthly_fee_rate: must be below 0.02 (2 % a month)")
        if not Decimal(1) <= self.penalty_multiple <= Decimal(3):
            raise ValueError("penalty_multiple: must be between 1 and 3")
        _rate("prepayment_fee_rate", self.prepayment_fee_rate)
        if self.prepayment_fee_rate >= Decimal("0.1"):
            raise ValueError("prepayment_fee_rate: must be below 0.1")
        for i, kind in enumerate(self.required_documents):
            if not _DOCUMENT_KIND.match(kind):
                raise ValueError(
                    f"required_documents[{i}]: must be a document kind such as bank_statement"
                )
        if not 18 <= self.min_age <= 100:
            raise ValueError("min_age: must be between 18 and 100")
        if self.max_age is not None and not self.min_age <= self.max_age <= 100:
            raise ValueError(f"max_age: must be between min_age {self.min_age} and 100")
        if self.approval_limit is not None:
            _money("approval_limit", self.approval_limit, positive=True)
            if not self.min_amount <= self.approval_limit <= self.max_amount:
                raise ValueError("approval_limit: must lie between min_amount and max_amount")

    # ---- storage (JSON) -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "methods": [m.value for m in self.methods],
            "min_amount": str(self.min_amount),
            "max_amount": str(self.max_amount),
            "terms": list(self.terms),
            "rates": {
                g: {"low": str(r.low), "high": str(r.high)} for g, r in sorted(self.rates.items())
            },
            "upfront_fee_basis": self.upfront_fee_basis.value,
            "upfront_fee": str(self.upfront_fee),
            "upfront_fee_due": self.upfront_fee_due.value,
            "monthly_fee_rate": str(self.monthly_fee_rate),
            "penalty_multiple": str(self.penalty_multiple),
            "prepayment_fee_rate": str(self.prepayment_fee_rate),
            "required_documents": list(self.required_documents),
            "min_age": self.min_age,
            "max_age": self.max_age,
            "approval_limit": None if self.approval_limit is None else str(self.approval_limit),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ProductDefinition":
        """The inverse of ``to_json`` (also a product file's form); ValueError naming the field
        for a missing, unknown or malformed one. Call ``validate`` for the rules."""
        if not isinstance(data, dict):
            raise ValueError("definition: must be an object")
        known = {f for f in cls.__dataclass_fields__}
        for name in data:
            if name not in known:
                raise ValueError(f"{name}: is not a product field")
        for name in ("code", "name", "methods", "min_amount", "max_amount", "terms", "rates"):
            if data.get(name) is None:
                raise ValueError(f"{name}: is required")
        rates_raw = data["rates"]
        if not isinstance(rates_raw, dict):
            raise ValueError("rates: must be an object of grade to {low, high}")
        rates: dict[str, RateRange] = {}
        for grade, band in rates_raw.items():
            if not isinstance(band, dict) or set(band) != {"low", "high"}:
                raise ValueError(f"rates.{grade}: must be an object with low and high")
            rates[str(grade)] = RateRange(
                low=_decimal(f"rates.{grade}.low", band["low"]),
                high=_decimal(f"rates.{grade}.high", band["high"]),
            )
        kwargs: dict[str, Any] = {
            "code": _text("code", data["code"]),
            "name": _text("name", data["name"]),
            "methods": tuple(
                _choice(f"methods[{i}]", m, RepaymentMethod)
                for i, m in enumerate(_list("methods", data["methods"]))
            ),
            "min_amount": _decimal("min_amount", data["min_amount"]),
            "max_amount": _decimal("max_amount", data["max_amount"]),
            "terms": tuple(
                _whole(f"terms[{i}]", t) for i, t in enumerate(_list("terms", data["terms"]))
            ),
            "rates": rates,
        }
        if data.get("upfront_fee_basis") is not None:
            kwargs["upfront_fee_basis"] = _choice(
                "upfront_fee_basis", data["upfront_fee_basis"], FeeBasis
            )
        if data.get("upfront_fee_due") is not None:
            kwargs["upfront_fee_due"] = _choice(
                "upfront_fee_due", data["upfront_fee_due"], UpfrontFeeDue
            )
        for name in ("upfront_fee", "monthly_fee_rate", "penalty_multiple", "prepayment_fee_rate"):
            if data.get(name) is not None:
                kwargs[name] = _decimal(name, data[name])
        if data.get("required_documents") is not None:
            kwargs["required_documents"] = tuple(
                _text(f"required_documents[{i}]", k)
                for i, k in enumerate(_list("required_documents", data["required_documents"]))
            )
        if data.get("min_age") is not None:
            kwargs["min_age"] = _whole("min_age", data["min_age"])
        if "max_age" in data:
            kwargs["max_age"] = (
                None if data["max_age"] is None else _whole("max_age", data["max_age"])
            )
        if "approval_limit" in data:
            raw = data["approval_limit"]
            kwargs["approval_limit"] = None if raw is None else _decimal("approval_limit", raw)
        return cls(**kwargs)


def _decimal(name: str, raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | str | Decimal | float):
        raise ValueError(f"{name}: must be a decimal number, not {raw!r}")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"{name}: must be a decimal number, not {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"{name}: must be a finite number")
    return value


def _whole(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValueError(f"{name}: must be a whole number, not {raw!r}")
    return raw


def _text(name: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{name}: must be a string")
    return raw.strip()


def _list(name: str, raw: Any) -> list[Any]:
    if not isinstance(raw, list | tuple):
        raise ValueError(f"{name}: must be a list")
    return list(raw)


def _choice(name: str, raw: Any, enum: type[StrEnum]) -> Any:
    try:
        return enum(str(raw))
    except ValueError:
        raise ValueError(f"{name}: must be one of {', '.join(e.value for e in enum)}") from None


def _money(name: str, value: Decimal, *, positive: bool = False) -> None:
    if not value.is_finite() or value != value.quantize(FEN):
        raise ValueError(f"{name}: must be an amount with at most two decimal places")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name}: must be {'greater than zero' if positive else 'non-negative'}")


def _rate(name: str, value: Decimal) -> None:
    if not value.is_finite() or not Decimal(0) <= value <= 1:
        raise ValueError(f"{name}: must be a fraction between 0 and 1, e.g. 0.108")
    if value != value.quantize(RATE_QUANTUM):
        raise ValueError(f"{name}: must not have more than six decimal places")


# ---- versions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductVersion:
    """One version of a product as recorded: never changed once written."""

    code: str
    version: int
    effective_from: date
    definition: ProductDefinition
    recorded_by: str = "system"
    note: str = ""


def version_in_force(versions: Iterable[ProductVersion], on: date) -> ProductVersion | None:
    """The newest version whose effective date has come by ``on`` (None: none yet)."""
    due = [v for v in versions if v.effective_from <= on]
    return max(due, key=lambda v: (v.effective_from, v.version), default=None)


# ---- matching ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchFacts:
    """What matching looks at, gathered by the activity (no personal data: an age, not a
    birth date; document kinds, not documents)."""

    requested_amount: Decimal
    requested_term: int
    # The risk grade of the application's newest assessment (None: it was never assessed).
    grade: str | None
    # How much more the borrower may borrow under the caps (here and across platforms).
    caps_room: Decimal
    age: int | None
    document_kinds: tuple[str, ...] = ()
    # The department manager approved the application (risk approval above authority).
    manager_approved: bool = False


@dataclass(frozen=True)
class Proposal:
    """Proposed terms under one product version, priced on the offer date."""

    code: str
    version: int
    name: str
    definition: ProductDefinition
    grade: str
    amount: Decimal
    # The most this application may borrow under this product (request, caps, bounds, limit).
    max_amount: Decimal
    term_months: int
    annual_rate: Decimal
    method: RepaymentMethod
    upfront_fee: Decimal
    monthly_fee: Decimal
    first_payment: Decimal
    total_interest: Decimal
    total_fees: Decimal
    apr: Decimal

    @property
    def rate_range(self) -> RateRange:
        return self.definition.rates[self.grade]


@dataclass(frozen=True)
class Exclusion:
    code: str
    version: int
    name: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Proposals:
    """The answer of matching for one round."""

    offered_on: date
    grade: str | None
    proposals: tuple[Proposal, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    lpr: Decimal | None = None
    rate_cap: Decimal | None = None

    def find(self, code: str, version: int) -> Proposal | None:
        return next((p for p in self.proposals if p.code == code and p.version == version), None)


def amount_room(defn: ProductDefinition, facts: MatchFacts) -> Decimal:
    """The most this application may borrow under ``defn``."""
    room = min(facts.requested_amount, facts.caps_room, defn.max_amount)
    if defn.approval_limit is not None and not facts.manager_approved:
        room = min(room, defn.approval_limit)
    return to_fen(max(room, ZERO))


def price(
    *,
    amount: Decimal,
    term_months: int,
    annual_rate: Decimal,
    method: RepaymentMethod,
    upfront_fee: Decimal,
    monthly_fee: Decimal,
    on: date,
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(first payment, total interest, total fees, APR) of these terms from ``on``: the whole
    principal paid out, the upfront fee due with the first installment (as ``price_offer``)."""
    schedule = build_schedule(
        principal=amount,
        annual_rate=annual_rate,
        term_months=term_months,
        method=method,
        start_date=on,
        monthly_fee=monthly_fee,
        upfront_fee=upfront_fee,
    )
    cost = disclose_schedule_cost(
        principal=amount, upfront_fee=Decimal("0.00"), schedule=schedule, start_date=on
    )
    return (
        schedule.installments[0].payment,
        schedule.total_interest,
        schedule.total_fees,
        cost.apr,
    )


def match(
    product: ProductVersion,
    facts: MatchFacts,
    *,
    on: date,
    lpr: LprRate,
    ceiling: CeilingPolicy,
) -> Proposal | Exclusion:
    """Propose terms under ``product`` for these facts, or say every reason it does not fit.
    Proposed: amount = the room (request, caps, product bounds, approval limit); the requested
    term if allowed else the nearest; the first allowed method; the grade's lowest rate; the
    product's fees; priced (APR by IRR, fees included) and within the ceiling of ``on``."""
    d = product.definition
    reasons: list[str] = []
    if facts.grade is None:
        reasons.append("no risk grade on record")
    elif facts.grade not in d.rates:
        reasons.append(
            f"grade {facts.grade} is not eligible (eligible: {', '.join(sorted(d.rates))})"
        )
    room = amount_room(d, facts)
    if room < d.min_amount:
        limits = [f"requested {facts.requested_amount}", f"caps leave {to_fen(facts.caps_room)}"]
        if d.approval_limit is not None and not facts.manager_approved:
            limits.append(f"approval limit {d.approval_limit}")
        reasons.append(
            f"at most {room} can be lent ({'; '.join(limits)}), below the minimum {d.min_amount}"
        )
    if facts.age is None:
        reasons.append("the borrower's age is unknown")
    elif facts.age < d.min_age or (d.max_age is not None and facts.age > d.max_age):
        bounds = f"{d.min_age}-{d.max_age}" if d.max_age is not None else f"at least {d.min_age}"
        reasons.append(f"age {facts.age} is outside {bounds}")
    missing = [k for k in d.required_documents if k not in facts.document_kinds]
    if missing:
        reasons.append(f"missing documents: {', '.join(missing)}")
    if reasons:
        return Exclusion(product.code, product.version, d.name, tuple(reasons))
    assert facts.grade is not None
    rate = d.rates[facts.grade].low
    term = d.nearest_term(facts.requested_term)
    method = d.methods[0]
    upfront, monthly = d.upfront_fee_for(room), d.monthly_fee_for(room)
    first, interest, fees, apr = price(
        amount=room,
        term_months=term,
        annual_rate=rate,
        method=method,
        upfront_fee=upfront,
        monthly_fee=monthly,
        on=on,
    )
    check = check_interest_ceiling(
        all_in_rate=apr, contract_date=on, lpr_table=LprTable((lpr,)), policy=ceiling
    )
    if not check.ok:
        return Exclusion(product.code, product.version, d.name, (check.reason,))
    return Proposal(
        code=product.code,
        version=product.version,
        name=d.name,
        definition=d,
        grade=facts.grade,
        amount=room,
        max_amount=room,
        term_months=term,
        annual_rate=rate,
        method=method,
        upfront_fee=upfront,
        monthly_fee=monthly,
        first_payment=first,
        total_interest=interest,
        total_fees=fees,
        apr=apr,
    )


def propose(
    catalog: Sequence[ProductVersion],
    facts: MatchFacts,
    *,
    on: date,
    lpr: LprRate,
    ceiling: CeilingPolicy,
) -> Proposals:
    """Every product version in force (``catalog``) matched: eligible ones (lowest APR first)
    and the excluded ones with their reasons (by code)."""
    proposals: list[Proposal] = []
    excluded: list[Exclusion] = []
    for product in sorted(catalog, key=lambda p: p.code):
        result = match(product, facts, on=on, lpr=lpr, ceiling=ceiling)
        (proposals if isinstance(result, Proposal) else excluded).append(result)  # type: ignore[arg-type]
    proposals.sort(key=lambda p: (p.apr, p.code))
    return Proposals(
        offered_on=on,
        grade=facts.grade,
        proposals=tuple(proposals),
        excluded=tuple(excluded),
        lpr=lpr.one_year,
        rate_cap=ceiling.binding_cap(lpr.one_year),
    )


@dataclass(frozen=True)
class ChosenTerms:
    """The terms of a choice checked against its product version: the fees are the product's."""

    amount: Decimal
    term_months: int
    annual_rate: Decimal
    method: RepaymentMethod
    upfront_fee: Decimal
    monthly_fee: Decimal


def check_choice(
    proposal: Proposal,
    *,
    amount: Decimal,
    term_months: int,
    annual_rate: Decimal,
    method: RepaymentMethod,
) -> ChosenTerms:
    """The product manager's terms within ``proposal``'s product version; ValueError naming
    the field (``data.…``) otherwise. Fees are computed from the product, never typed."""
    d = proposal.definition
    label = f"{proposal.code} v{proposal.version}"
    if method not in d.methods:
        raise ValueError(
            f"data.method: {label} allows {', '.join(m.value for m in d.methods)}, not {method.value}"
        )
    if amount < d.min_amount:
        raise ValueError(f"data.amount: {amount} is below {label}'s minimum {d.min_amount}")
    if amount > proposal.max_amount:
        raise ValueError(
            f"data.amount: {amount} is above {proposal.max_amount}, the most this application "
            f"may borrow under {label} (request, borrowing caps, product bounds)"
        )
    if term_months not in d.terms:
        raise ValueError(
            f"data.term_months: {label} allows {', '.join(str(t) for t in d.terms)} months, "
            f"not {term_months}"
        )
    band = proposal.rate_range
    if annual_rate not in band:
        raise ValueError(
            f"data.annual_rate: {annual_rate} is outside {label}'s range for grade "
            f"{proposal.grade}, {band.low}-{band.high}"
        )
    return ChosenTerms(
        amount=amount,
        term_months=term_months,
        annual_rate=annual_rate,
        method=method,
        upfront_fee=d.upfront_fee_for(amount),
        monthly_fee=d.monthly_fee_for(amount),
    )


def proposals_context(p: Proposals, *, round_: int, note: str | None = None) -> dict[str, Any]:
    """What the product manager's task shows (JSON: money and rates as strings)."""
    context: dict[str, Any] = {
        "round": round_,
        "offered_on": p.offered_on.isoformat(),
        "grade": p.grade,
        "rate_cap": None if p.rate_cap is None else str(p.rate_cap),
        "proposals": [
            {
                "product_code": x.code,
                "product_version": x.version,
                "name": x.name,
                "amount": str(x.amount),
                "max_amount": str(x.max_amount),
                "min_amount": str(x.definition.min_amount),
                "term_months": x.term_months,
                "terms_allowed": list(x.definition.terms),
                "annual_rate": str(x.annual_rate),
                "rate_range": [str(x.rate_range.low), str(x.rate_range.high)],
                "method": x.method.value,
                "methods_allowed": [m.value for m in x.definition.methods],
                "upfront_fee": str(x.upfront_fee),
                "upfront_fee_due": x.definition.upfront_fee_due.value,
                "monthly_fee": str(x.monthly_fee),
                "first_payment": str(x.first_payment),
                "total_interest": str(x.total_interest),
                "total_fees": str(x.total_fees),
                "apr": str(x.apr.quantize(RATE_QUANTUM)),
            }
            for x in p.proposals
        ],
        "excluded": [
            {
                "product_code": e.code,
                "product_version": e.version,
                "name": e.name,
                "reasons": list(e.reasons),
            }
            for e in p.excluded
        ],
    }
    if note:
        context["other_terms"] = note
    return context


def choice_data(proposal: dict[str, Any]) -> dict[str, Any]:
    """A decision's ``data`` that takes a proposal from the task's context as proposed."""
    return {
        k: proposal[k]
        for k in (
            "product_code",
            "product_version",
            "amount",
            "term_months",
            "annual_rate",
            "method",
        )
    }


@dataclass(frozen=True)
class OfferedProduct:
    """What an offer records of the product version it was made under (it never changes when
    the product does)."""

    code: str
    version: int
    name: str
    grade: str
    rate_low: Decimal
    rate_high: Decimal
    upfront_fee_due: UpfrontFeeDue
    penalty_multiple: Decimal
    prepayment_fee_rate: Decimal
    monthly_fee_rate: Decimal
    upfront_fee_basis: FeeBasis
    upfront_fee: Decimal
    required_documents: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, p: Proposal) -> "OfferedProduct":
        d = p.definition
        return cls(
            code=p.code,
            version=p.version,
            name=p.name,
            grade=p.grade,
            rate_low=p.rate_range.low,
            rate_high=p.rate_range.high,
            upfront_fee_due=d.upfront_fee_due,
            penalty_multiple=d.penalty_multiple,
            prepayment_fee_rate=d.prepayment_fee_rate,
            monthly_fee_rate=d.monthly_fee_rate,
            upfront_fee_basis=d.upfront_fee_basis,
            upfront_fee=d.upfront_fee,
            required_documents=d.required_documents,
        )


# ---- the seeded catalog ------------------------------------------------------------------------


def _band(low: str, high: str) -> RateRange:
    return RateRange(Decimal(low), Decimal(high))


# Effective from the first loan policy's date; every grade's range sits within the ceiling in
# force (4 × the one-year LPR of 3.00 % since 2025-05-20 = 12 %), fees included at the low end.
SEED_EFFECTIVE_FROM = date(2025, 1, 1)
SEED_CATALOG: tuple[ProductDefinition, ...] = (
    ProductDefinition(
        code="SALARY_CONSUMER",
        name="薪享贷 salaried consumer loan",
        methods=(RepaymentMethod.EQUAL_INSTALLMENT, RepaymentMethod.EQUAL_PRINCIPAL),
        min_amount=Decimal("5000.00"),
        max_amount=Decimal("200000.00"),
        terms=(6, 12, 24, 36),
        rates={
            "A": _band("0.072", "0.100"),
            "B": _band("0.080", "0.105"),
            "C": _band("0.090", "0.110"),
        },
        upfront_fee_basis=FeeBasis.RATE,
        upfront_fee=Decimal("0.005"),
        upfront_fee_due=UpfrontFeeDue.FIRST_INSTALLMENT,
        prepayment_fee_rate=Decimal("0.01"),
        required_documents=("employment_proof",),
        min_age=22,
        max_age=55,
        approval_limit=Decimal("100000.00"),
    ),
    ProductDefinition(
        code="SMB_OPERATING",
        name="经营贷 small-business operating loan",
        methods=(
            RepaymentMethod.EQUAL_INSTALLMENT,
            RepaymentMethod.EQUAL_PRINCIPAL,
            RepaymentMethod.INTEREST_ONLY,
        ),
        min_amount=Decimal("10000.00"),
        max_amount=Decimal("200000.00"),
        terms=(3, 6, 12, 24),
        rates={
            "A": _band("0.072", "0.114"),
            "B": _band("0.078", "0.114"),
            "C": _band("0.090", "0.120"),
            "D": _band("0.096", "0.120"),
        },
        penalty_multiple=Decimal("1.5"),
        # The owner's age is weighed in the risk review; the product sets only the legal minimum.
        min_age=18,
    ),
    ProductDefinition(
        code="SHORT_BULLET",
        name="周转贷 short bullet loan",
        methods=(RepaymentMethod.BULLET,),
        min_amount=Decimal("2000.00"),
        max_amount=Decimal("50000.00"),
        terms=(1, 2, 3),
        rates={"A": _band("0.090", "0.108"), "B": _band("0.096", "0.114")},
        required_documents=("bank_statement",),
        min_age=20,
        max_age=60,
    ),
)
