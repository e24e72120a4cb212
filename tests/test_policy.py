"""The LPR table as data: seeded from the packaged file, extended without a deploy, and used by
the interest ceiling of new offers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from domain.calendar import business_date
from domain.lpr import default_lpr_table
from domain.products import SEED_CATALOG
from loanops.policy import add_lpr, lpr_table, seed_lpr
from tests.api.helpers import drive, submit
from tests.conftest import System
from tests.workflows.driving import MATCH_DATA

SMB_V1 = {
    k: v
    for k, v in next(d for d in SEED_CATALOG if d.code == "SMB_OPERATING").to_json().items()
    if k != "code"
}


def test_migrating_seeds_the_packaged_rates_once(engine: Engine) -> None:
    packaged = default_lpr_table()
    assert lpr_table(engine) == packaged  # the fixture's database was migrated
    assert seed_lpr(engine) == 0


def test_a_new_announcement_is_in_force_from_its_date(engine: Engine) -> None:
    day = date(2026, 10, 20)
    add_lpr(
        engine,
        effective_date=day,
        one_year=Decimal("0.0290"),
        five_year=None,
        source="test announcement",
    )
    table = lpr_table(engine)
    assert table.in_force(day).one_year == Decimal("0.0290")
    assert table.in_force(day - timedelta(days=1)).one_year == Decimal("0.0300")
    with pytest.raises(ValueError, match="effective_date"):
        add_lpr(engine, effective_date=day, one_year=Decimal("0.03"), five_year=None, source="x")
    with pytest.raises(ValueError, match="one_year"):
        add_lpr(
            engine,
            effective_date=date(2026, 11, 20),
            one_year=Decimal("3.1"),
            five_year=None,
            source="x",
        )


async def test_the_ceiling_of_new_offers_follows_the_table(system: System) -> None:
    terms = {**MATCH_DATA, "annual_rate": "0.15"}
    app_no = await submit(system)
    view = await drive(system, app_no, "PRODUCT_MATCHING")
    url = f"/api/v1/tasks/{view['pending_task']['id']}/decision"
    refused = await system.call(
        "POST", url, user="product", json={"decision": "approve", "data": terms}
    )
    assert refused.status_code == 422
    assert "ceiling 12.0000% = 4 × LPR 3.0000%" in refused.json()["detail"][0]["msg"]

    # A higher LPR published today raises the cap to 20 % for offers priced from now on.
    today = business_date(await system.env.get_current_time(), system.settings.business_timezone)
    await system.in_thread(
        add_lpr,
        system.engine,
        effective_date=today - timedelta(days=400),
        one_year=Decimal("0.05"),
        five_year=None,
        source="test",
    )
    # The product's ranges may now reach above 12 %: a new version in force from today.
    wider = {
        **SMB_V1,
        "rates": {g: {"low": "0.090", "high": "0.180"} for g in "ABCD"},
        "note": "LPR up",
    }
    r = await system.call(
        "POST", "/api/v1/products/SMB_OPERATING/versions", user="product", json=wider
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    second = await submit(system)
    view = await drive(system, second, "PRODUCT_MATCHING")
    url = f"/api/v1/tasks/{view['pending_task']['id']}/decision"
    accepted = await system.call(
        "POST",
        url,
        user="product",
        json={"decision": "approve", "data": {**terms, "product_version": 2}},
    )
    assert accepted.status_code == 200, accepted.text
