"""Drive a loan to a given stage through the real API, for workflow tests that start mid-life
(built on the API tests' driver; these tests use a smaller, shorter loan)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from domain.calendar import business_date
from tests.api.helpers import drive, driver
from tests.api.helpers import submit as submit_application
from tests.conftest import System

MATCH_DATA = {
    "product_code": "SMB_OPERATING",
    "product_version": 1,
    "amount": "12000.00",
    "term_months": 3,
    "annual_rate": "0.096",
    "method": "equal_installment",
}


async def submit(system: System) -> str:
    return await submit_application(system)


async def decide(
    system: System, user: str, application_no: str, kind: str, decision: str, **extra: Any
) -> str:
    d = driver(system)
    return str(await system.in_thread(d.decide, user, application_no, kind, decision, **extra))


async def drive_to(system: System, stage: str) -> str:
    """Submit an application and take it along the happy path until it waits in ``stage``."""
    application_no = await submit(system)
    await drive(system, application_no, stage, MATCH_DATA)
    return application_no


async def today(system: System) -> str:
    """The business date (Asia/Shanghai) on the test server's clock."""
    now = await system.env.get_current_time()
    return business_date(now, system.settings.business_timezone).isoformat()


async def pay(
    system: System, application_no: str, amount: Decimal | str, mode: str, ref: str
) -> httpx.Response:
    """Post a payment dated now on the test server's clock."""
    return await system.call(
        "POST",
        f"/api/v1/loans/{application_no}/payments",
        user="ops",
        json={
            "amount": str(amount),
            "paid_at": (await system.env.get_current_time()).isoformat(),
            "external_ref": ref,
            "mode": mode,
        },
    )


async def pay_off(system: System, application_no: str, ref: str) -> httpx.Response:
    """Ask for today's payoff quote and pay exactly what it says."""
    quote = await system.call(
        "POST",
        f"/api/v1/loans/{application_no}/payoff-quote",
        user="ops",
        json={"as_of": await today(system)},
    )
    assert quote.status_code == 200, quote.text
    return await pay(system, application_no, quote.json()["amount_to_pay"], "payoff", ref)


async def confirm_settlement(system: System, application_no: str, user: str = "ops") -> None:
    """The last fen is paid: operations confirms the settlement (settlement-confirmation-v1),
    after which the loan settles."""
    await decide(
        system, user, application_no, "settlement_confirmation", "confirm", comment="账务核对无误"
    )
