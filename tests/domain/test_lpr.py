from datetime import date
from decimal import Decimal

import pytest

from domain.lpr import LprRate, LprTable, default_lpr_table, load_lpr_csv

D = Decimal
HEADER = "effective_date,one_year,five_year,source\n"


def test_default_table_is_packaged_and_complete() -> None:
    table = default_lpr_table()
    one_year = {r.effective_date: r.one_year for r in table.rates}
    assert one_year[date(2019, 8, 20)] == D("0.0425")
    assert one_year[date(2020, 4, 20)] == D("0.0385")
    assert one_year[date(2024, 10, 21)] == D("0.0310")
    assert one_year[date(2025, 5, 20)] == D("0.0300")
    dates = [r.effective_date for r in table.rates]
    assert dates == sorted(dates)
    assert all(r.source for r in table.rates)


@pytest.mark.parametrize(
    ("on", "effective", "one_year"),
    [
        (date(2019, 8, 20), date(2019, 8, 20), "0.0425"),
        (date(2020, 4, 19), date(2020, 2, 20), "0.0405"),
        (date(2021, 6, 1), date(2020, 4, 20), "0.0385"),  # unchanged for 20 months
        (date(2022, 6, 1), date(2022, 5, 20), "0.0370"),
        (date(2024, 10, 20), date(2024, 7, 22), "0.0335"),
        (date(2024, 10, 21), date(2024, 10, 21), "0.0310"),
        (date(2030, 1, 1), date(2025, 5, 20), "0.0300"),
    ],
)
def test_in_force(on: date, effective: date, one_year: str) -> None:
    rate = default_lpr_table().in_force(on)
    assert rate.effective_date == effective
    assert rate.one_year == D(one_year)


def test_before_first_rate_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="2019-08-19"):
        default_lpr_table().in_force(date(2019, 8, 19))


def test_load_sorts_and_allows_missing_five_year() -> None:
    table = load_lpr_csv(HEADER + "2024-07-22,0.0335,,x\n2023-06-20,0.0355,0.0420,y\n")
    assert table == LprTable(
        rates=(
            LprRate(date(2023, 6, 20), D("0.0355"), D("0.0420"), "y"),
            LprRate(date(2024, 7, 22), D("0.0335"), None, "x"),
        )
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("date,rate\n2024-01-01,0.03\n", "header"),
        (HEADER, "no rates"),
        (HEADER + "2024-13-01,0.03,,s\n", "line 2: effective_date"),
        (HEADER + "2024-01-01,3.45,,s\n", "line 2: one_year"),
        (HEADER + "2024-01-01,abc,,s\n", "line 2: one_year"),
        (HEADER + "2024-01-01,0.03,,s\n2024-01-01,0.02,,s\n", "appears twice"),
    ],
)
def test_load_refuses_bad_csv(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_lpr_csv(text)
