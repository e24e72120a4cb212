"""The funding pool over the API, on SQLite and PostgreSQL: manual movements under maker-checker
(the requester may not authorize), refusals that name the rule or the amount and change
nothing, idempotency by reference, and the liquidity report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from loanops.security import create_access_token
from loanops.seed import seed_demo_pool, seed_demo_users
from loanops.settings import Settings
from models.funding import reserve
from models.tables import AuditEvent, FundingMovement, FundingPool, User
from tests.conftest import DEMO_PASSWORD, _demo_password_hash

MOVEMENTS = "/api/v1/funding/movements"
LIQUIDITY = "/api/v1/reports/liquidity"


class Api:
    def __init__(self, http: TestClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    def call(self, method: str, url: str, user: str, **kw: Any) -> httpx.Response:
        role = {
            "manager": "department_manager",
            "manager2": "department_manager",
            "risk": "risk_manager",
            "ops": "operations_specialist",
            "officer": "business_officer",
            "auditor": "auditor",
        }[user]
        token = create_access_token(
            subject=user, roles=[role], secret=self.settings.secret_key, minutes=5
        )
        return self.http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw)


@pytest.fixture
def api(engine: Engine, database_url: str) -> Iterator[Api]:
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_password_hash())
    with Session(engine) as s:
        s.add(
            User(
                username="manager2",
                full_name="钱经理 (department manager)",
                roles=["department_manager"],
                password_hash=_demo_password_hash(),
            )
        )
        s.commit()
    assert seed_demo_pool(engine, account_no="9558800200100000005")
    settings = Settings(
        environment="test", database_url=database_url, temporal_address="127.0.0.1:9"
    )
    with TestClient(create_app(settings, engine=engine)) as http:
        yield Api(http, settings)


def balance(engine: Engine) -> Decimal:
    with Session(engine) as s:
        pool = s.get(FundingPool, "main")
        assert pool is not None
        return pool.balance


def request(api: Api, kind: str, amount: str, reference: str, user: str = "manager") -> Any:
    return api.call(
        "POST",
        MOVEMENTS,
        user,
        json={"kind": kind, "amount": amount, "reference": reference, "reason": "资金调拨"},
    )


def test_demo_pool_opens_with_five_million(api: Api, engine: Engine) -> None:
    assert balance(engine) == Decimal("5000000.00")
    r = api.call("GET", LIQUIDITY, "manager")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["balance"], body["reserved"], body["available"]) == (
        "5000000.00",
        "0.00",
        "5000000.00",
    )
    assert body["low_liquidity"] is False and body["warnings"] == []
    assert body["committed_by_stage"]["DISBURSEMENT"] == {"count": 0, "amount": "0.00"}


def test_top_up_requested_then_authorized_by_a_second_person(api: Api, engine: Engine) -> None:
    r = request(api, "top_up", "250000.00", "V-2026-001")
    assert r.status_code == 201, r.text
    movement = r.json()
    assert (movement["status"], movement["requested_by"]) == ("pending", "manager")
    assert balance(engine) == Decimal("5000000.00")  # nothing moves before authorization

    again = request(api, "top_up", "250000.00", "V-2026-001")  # the same reference
    assert again.status_code == 200 and again.json()["id"] == movement["id"]

    r = api.call("POST", f"{MOVEMENTS}/{movement['id']}/authorize", "manager2")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["authorized_by"], r.json()["balance_after"]) == (
        "authorized",
        "manager2",
        "5250000.00",
    )
    assert balance(engine) == Decimal("5250000.00")
    with Session(engine) as s:
        actions = s.exec(
            select(AuditEvent.action, AuditEvent.actor).where(
                col(AuditEvent.action).startswith("funding_movement")
            )
        ).all()
    assert sorted(actions) == [
        ("funding_movement_authorized", "manager2"),
        ("funding_movement_requested", "manager"),
    ]
    listed = api.call("GET", f"{MOVEMENTS}?status=authorized", "auditor").json()
    assert [m["reference"] for m in listed["items"]] == ["V-2026-001", "opening-balance"]


def test_the_requester_may_not_authorize(api: Api, engine: Engine) -> None:
    movement = request(api, "withdrawal", "100000.00", "V-2026-002").json()
    r = api.call("POST", f"{MOVEMENTS}/{movement['id']}/authorize", "manager")
    assert r.status_code == 409
    assert "maker-checker" in r.json()["detail"]
    assert "manager requested this movement and may not authorize it" in r.json()["detail"]
    assert balance(engine) == Decimal("5000000.00")
    with Session(engine) as s:
        row = s.exec(select(FundingMovement).where(FundingMovement.reference == "V-2026-002")).one()
        assert (row.status, row.authorized_by) == ("pending", None)
    # the risk manager, a second person, may
    r = api.call("POST", f"{MOVEMENTS}/{movement['id']}/authorize", "risk")
    assert r.status_code == 200 and r.json()["balance_after"] == "4900000.00"
    # and a third cannot authorize it again
    r = api.call("POST", f"{MOVEMENTS}/{movement['id']}/authorize", "manager2")
    assert r.status_code == 409 and "already authorized by risk" in r.json()["detail"]
    assert balance(engine) == Decimal("4900000.00")


def test_roles_outside_the_matrix_are_refused(api: Api) -> None:
    assert request(api, "top_up", "1.00", "V-x", user="risk").status_code == 403
    assert request(api, "top_up", "1.00", "V-x", user="ops").status_code == 403
    movement = request(api, "top_up", "1.00", "V-y").json()
    r = api.call("POST", f"{MOVEMENTS}/{movement['id']}/authorize", "ops")
    assert r.status_code == 403
    assert api.call("GET", LIQUIDITY, "officer").status_code == 403
    for user in ("manager", "ops", "risk"):
        assert api.call("GET", LIQUIDITY, user).status_code == 200


def test_withdrawal_above_available_is_refused_naming_the_amount(api: Api, engine: Engine) -> None:
    with Session(engine) as s:
        reserve(
            s,
            key="payout-A1",
            application_no="A1",
            amount=Decimal("1000000.00"),
            actor="worker",
            at=datetime.now(UTC),
        )
    r = request(api, "withdrawal", "4000000.01", "V-2026-003")
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "amount"]
    assert error["msg"] == "4000000.01 exceeds the pool's available funds 4000000.00"
    with Session(engine) as s:
        assert (
            s.exec(select(FundingMovement).where(FundingMovement.kind == "withdrawal")).all() == []
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "top_up", "amount": "-5.00", "reference": "V", "reason": "r"}, "amount"),
        ({"kind": "top_up", "amount": "1.001", "reference": "V", "reason": "r"}, "amount"),
        ({"kind": "payout", "amount": "1.00", "reference": "V", "reason": "r"}, "kind"),
        ({"kind": "top_up", "amount": "1.00", "reference": "", "reason": "r"}, "reference"),
        ({"kind": "top_up", "amount": "1.00", "reference": "V"}, "reason"),
    ],
)
def test_bad_movement_requests_name_the_field(
    api: Api, engine: Engine, body: dict[str, str], field: str
) -> None:
    r = api.call("POST", MOVEMENTS, "manager", json=body)
    assert r.status_code == 422
    assert [e["loc"][-1] for e in r.json()["detail"]] == [field]
    assert balance(engine) == Decimal("5000000.00")


def test_the_same_reference_for_another_movement_is_409(api: Api) -> None:
    assert request(api, "top_up", "10.00", "V-2026-004").status_code == 201
    r = request(api, "top_up", "11.00", "V-2026-004")
    assert r.status_code == 409 and "already used for a top_up of 10.00" in r.json()["detail"]


def test_unknown_movement_is_404(api: Api) -> None:
    r = api.call("POST", f"{MOVEMENTS}/00000000-0000-4000-8000-000000000000/authorize", "risk")
    assert r.status_code == 404


def test_liquidity_report_shows_commitments_and_coverage(api: Api, engine: Engine) -> None:
    from models.tables import Application, Borrower

    with Session(engine) as s:
        b = Borrower(
            name="张三丰",
            id_number="11010519491231002X",
            phone="13800138000",
            bank_card="6222020200112233446",
            monthly_income=Decimal("18000.00"),
        )
        s.add(b)
        s.flush()
        for no, stage, amount in (
            ("A-1", "CONTRACT_SIGNING", "600000.00"),
            ("A-2", "DISBURSEMENT", "400000.00"),
        ):
            s.add(
                Application(
                    application_no=no,
                    borrower_id=b.id,
                    amount=Decimal(amount),
                    term_months=12,
                    purpose="p",
                    repayment_source="r",
                    stage=stage,
                    submitted_by="officer",
                )
            )
        s.commit()
        reserve(
            s,
            key="payout-A-2",
            application_no="A-2",
            amount=Decimal("400000.00"),
            actor="worker",
            at=datetime.now(UTC),
        )
    body = api.call("GET", LIQUIDITY, "risk").json()
    # available 5,000,000 − 400,000; outflows not yet reserved 600,000; 600,000 / 4,600,000
    assert (body["available"], body["committed_count"], body["committed_amount"]) == (
        "4600000.00",
        2,
        "1000000.00",
    )
    assert body["committed_by_stage"]["CONTRACT_SIGNING"] == {"count": 1, "amount": "600000.00"}
    assert (body["expected_outflows"], body["coverage_ratio"]) == ("600000.00", "0.1304")
    assert body["low_liquidity"] is False
