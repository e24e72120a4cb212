"""The Loan Prime Rate (LPR, 贷款市场报价利率) as a dated table, and its packaged default data.

Rates are fractions (0.0300 = 3.00 %); a rate is in force from its effective date until the next.
"""

import csv
import io
import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

LPR_COLUMNS = ("effective_date", "one_year", "five_year", "source")
DEFAULT_CSV = "lpr_1y.csv"


@dataclass(frozen=True)
class LprRate:
    """One LPR announcement: the one-year (and five-year, if known) rate from effective_date."""

    effective_date: date
    one_year: Decimal
    five_year: Decimal | None
    source: str = ""


@dataclass(frozen=True)
class LprTable:
    """LPR announcements in ascending effective_date order (load_lpr_csv sorts and checks)."""

    rates: tuple[LprRate, ...]

    def in_force(self, on: date) -> LprRate:
        """The announcement in force on a date: the latest effective on or before it."""
        candidates = [r for r in self.rates if r.effective_date <= on]
        if not candidates:
            first = min((r.effective_date for r in self.rates), default=None)
            raise LookupError(f"no LPR in force on {on.isoformat()} (table starts {first})")
        return max(candidates, key=lambda r: r.effective_date)


def _rate(text: str, *, column: str, line: int) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"LPR csv line {line}: {column} {text!r} is not a number") from None
    if not value.is_finite() or not 0 < value < 1:
        raise ValueError(f"LPR csv line {line}: {column} {text!r} must be a fraction in (0, 1)")
    return value


def load_lpr_csv(text: str) -> LprTable:
    """Parse CSV text with columns effective_date,one_year,five_year,source (five_year may be
    empty); raises ValueError naming the line on bad rows or duplicate dates."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or tuple(f.strip() for f in reader.fieldnames) != LPR_COLUMNS:
        raise ValueError(f"LPR csv: header must be {','.join(LPR_COLUMNS)}")
    rates: list[LprRate] = []
    for line, row in enumerate(reader, start=2):
        raw = {k.strip(): (v or "") for k, v in row.items() if k is not None}
        try:
            effective = date.fromisoformat(raw["effective_date"].strip())
        except ValueError:
            raise ValueError(
                f"LPR csv line {line}: effective_date {raw['effective_date']!r} is not YYYY-MM-DD"
            ) from None
        five = raw["five_year"].strip()
        rates.append(
            LprRate(
                effective_date=effective,
                one_year=_rate(raw["one_year"], column="one_year", line=line),
                five_year=_rate(five, column="five_year", line=line) if five else None,
                source=raw["source"].strip(),
            )
        )
    rates.sort(key=lambda r: r.effective_date)
    for a, b in itertools.pairwise(rates):
        if a.effective_date == b.effective_date:
            raise ValueError(f"LPR csv: effective_date {a.effective_date} appears twice")
    if not rates:
        raise ValueError("LPR csv: no rates")
    return LprTable(rates=tuple(rates))


@cache
def default_lpr_table() -> LprTable:
    """The LPR table packaged with the code (domain/data/lpr_1y.csv), read once."""
    text = resources.files("domain").joinpath("data", DEFAULT_CSV).read_text(encoding="utf-8")
    return load_lpr_csv(text)
