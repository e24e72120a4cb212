"""Drive a loan to a given stage through the real API (for tests that start mid-life)."""

from __future__ import annotations

from typing import Any

from loanops.demo import DEMO_BORROWER, DemoDriver
from tests.conftest import DEMO_PASSWORD, System

ORDER = [
    "INTAKE_REVIEW",
    "RISK_REVIEW",
    "PRODUCT_MATCHING",
    "OFFER_CONFIRMATION",
    "CONTRACT_SIGNING",
    "DISBURSEMENT",
    "SERVICING",
]

MATCH_DATA = {
    "amount": "12000.00",
    "term_months": 3,
    "annual_rate": "0.096",
    "method": "equal_installment",
}


def driver(system: System) -> DemoDriver:
    return DemoDriver(system.http, password=DEMO_PASSWORD, say=lambda _: None)


async def submit(system: System, *, amount: str = "12000.00", term_months: int = 3) -> str:
    r = await system.call(
        "POST",
        "/api/v1/applications",
        user="officer",
        json={
            "borrower": DEMO_BORROWER,
            "amount": amount,
            "term_months": term_months,
            "purpose": "经营周转",
            "repayment_source": "工资收入",
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["application_no"])


async def decide(
    system: System, user: str, application_no: str, kind: str, decision: str, **extra: Any
) -> str:
    d = driver(system)
    return str(await system.in_thread(d.decide, user, application_no, kind, decision, **extra))


async def sign(system: System, application_no: str) -> None:
    d = driver(system)
    loan = await system.in_thread(
        d.wait_loan, application_no, "contract ready", lambda loan: bool(loan["signing_url"])
    )
    path = "/api/v1/sign/" + loan["signing_url"].rsplit("/api/v1/sign/", 1)[1]
    r = await system.call(
        "POST",
        path,
        json={
            "signer_name": DEMO_BORROWER["name"],
            "id_last4": DEMO_BORROWER["id_number"][-4:],
            "accept_terms": True,
        },
    )
    assert r.status_code == 200, r.text


async def drive_to(system: System, stage: str, **submit_kw: Any) -> str:
    """Submit an application and take it through the happy path until ``stage``."""
    app_no = await submit(system, **submit_kw)
    steps = ORDER[: ORDER.index(stage)]
    for current in steps:
        if current == "INTAKE_REVIEW":
            await decide(system, "ops", app_no, "intake_review", "approve")
        elif current == "RISK_REVIEW":
            await decide(system, "risk", app_no, "risk_review", "approve")
        elif current == "PRODUCT_MATCHING":
            await decide(system, "product", app_no, "product_matching", "approve", data=MATCH_DATA)
        elif current == "OFFER_CONFIRMATION":
            await decide(system, "officer", app_no, "offer_confirmation", "accept")
        elif current == "CONTRACT_SIGNING":
            await sign(system, app_no)
        elif current == "DISBURSEMENT":
            await decide(system, "ops2", app_no, "disbursement", "approve")
    d = driver(system)
    await system.in_thread(d.wait_loan, app_no, stage, lambda loan: loan["stage"] == stage)
    return app_no
