"""The product catalog over HTTP: staff read it, only the product manager adds products and
versions (audited); a bad definition is a 422 naming the field and changes nothing; the version
in force is the newest whose effective date has come. No Temporal is needed here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from domain.products import SEED_CATALOG
from loanops.security import create_access_token
from loanops.seed import DEMO_USERS, seed_demo_users
from loanops.settings import Settings
from models.tables import AuditEvent, ProductVersionRow
from tests.api.helpers import assert_422_names
from tests.conftest import DEMO_PASSWORD, _demo_password_hash

# 2026-11-30 10:00 in Shanghai: "today" for the API in these tests.
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
TODAY = "2026-11-30"


class Api:
    def __init__(self, http: TestClient, tokens: dict[str, str]) -> None:
        self.http = http
        self.tokens = tokens

    def call(self, method: str, url: str, user: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return self.http.request(method, url, headers=headers, **kw)


@pytest.fixture
def api(engine: Engine, database_url: str) -> Iterator[Api]:
    settings = Settings(
        environment="test", database_url=database_url, temporal_address="127.0.0.1:9"
    )
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_password_hash())
    tokens = {
        username: create_access_token(
            subject=username,
            roles=[role.value],
            secret=settings.secret_key,
            minutes=settings.access_token_minutes,
            now=NOW,  # the API's clock judges expiry
        )
        for username, _, role in DEMO_USERS
    }
    with TestClient(create_app(settings, engine=engine, clock=lambda: NOW)) as http:
        yield Api(http, tokens)


def definition(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "GREEN_AUTO",
        "name": "绿色车贷 green car loan",
        "methods": ["equal_installment"],
        "min_amount": "20000.00",
        "max_amount": "150000.00",
        "terms": [12, 24, 36],
        "rates": {"A": {"low": "0.070", "high": "0.095"}, "B": {"low": "0.080", "high": "0.105"}},
        "upfront_fee_basis": "fixed",
        "upfront_fee": "200.00",
        "monthly_fee_rate": "0",
        "penalty_multiple": "1.5",
        "prepayment_fee_rate": "0.01",
        "required_documents": ["employment_proof"],
        "min_age": 22,
        "max_age": 60,
        "approval_limit": "100000.00",
    }
    body.update(changes)
    return body


def _versions(engine: Engine) -> int:
    with Session(engine) as s:
        return len(s.exec(select(ProductVersionRow)).all())


def _audit(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as s:
        return list(
            s.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("product."))).all()
        )


def test_staff_read_the_seeded_catalog(api: Api) -> None:
    for user in ("officer", "cs", "auditor", "product"):
        r = api.call("GET", "/api/v1/products", user)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["as_of"] == TODAY
        assert [p["code"] for p in page["items"]] == sorted(d.code for d in SEED_CATALOG)
        assert all(p["in_force"]["version"] == 1 for p in page["items"])
    r = api.call("GET", "/api/v1/products/SMB_OPERATING", "risk")
    assert r.status_code == 200, r.text
    (v1,) = r.json()["versions"]
    assert v1["definition"]["rates"]["A"] == {"low": "0.072", "high": "0.114"}
    assert api.call("GET", "/api/v1/products/NOPE", "risk").status_code == 404


def test_the_product_manager_creates_a_product_audited(api: Api, engine: Engine) -> None:
    r = api.call("POST", "/api/v1/products", "product", json=definition(note="launch"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["code"], created["version"], created["effective_from"]) == (
        "GREEN_AUTO",
        1,
        TODAY,
    )
    assert created["recorded_by"] == "product"
    assert created["definition"]["rates"]["B"] == {"low": "0.080", "high": "0.105"}
    (event,) = _audit(engine)
    assert (event.action, event.actor) == ("product.created", "product")
    assert event.detail["code"] == "GREEN_AUTO" and event.detail["version"] == 1
    # The same code again: 409, nothing written.
    again = api.call("POST", "/api/v1/products", "product", json=definition())
    assert again.status_code == 409, again.text
    assert len(_audit(engine)) == 1


@pytest.mark.parametrize("user", ["officer", "risk", "manager", "auditor", "ops", "cs"])
def test_only_the_product_manager_writes_the_catalog(api: Api, engine: Engine, user: str) -> None:
    before = _versions(engine)
    assert api.call("POST", "/api/v1/products", user, json=definition()).status_code == 403
    body = {k: v for k, v in definition().items() if k != "code"}
    r = api.call("POST", "/api/v1/products/SMB_OPERATING/versions", user, json=body)
    assert r.status_code == 403
    assert _versions(engine) == before and _audit(engine) == []


BAD: list[tuple[dict[str, Any], str]] = [
    ({"rates": {"A": {"low": "0.10", "high": "0.08"}}}, "rates.A.low"),  # inverted
    ({"rates": {"A": {"low": "0.08", "high": "0.15"}}}, "rates.A.high"),  # above 12 %
    ({"min_amount": "200000.00"}, "min_amount"),  # above max_amount
    ({"terms": [12, 0]}, "terms[1]"),
    ({"methods": ["weekly"]}, "methods.0"),
    ({"rates": {"F": {"low": "0.08", "high": "0.09"}}}, "rates.F.[key]"),
    ({"max_age": 20}, "max_age"),
    ({"approval_limit": "10000.00"}, "approval_limit"),
    ({"upfront_fee": "20000.00"}, "upfront_fee"),
    ({"effective_from": "2026-11-29"}, "effective_from"),  # yesterday: never retroactive
    ({"code": "bad code"}, "code"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[b[1] for b in BAD])
def test_a_bad_definition_is_a_422_naming_the_field(
    api: Api, engine: Engine, change: dict[str, Any], field: str
) -> None:
    before = _versions(engine)
    r = api.call("POST", "/api/v1/products", "product", json=definition(**change))
    assert_422_names(r, field)
    assert _versions(engine) == before and _audit(engine) == []


def test_a_new_version_takes_effect_on_its_date(api: Api, engine: Engine) -> None:
    v1 = api.call("GET", "/api/v1/products/SMB_OPERATING", "product").json()["versions"][0]
    later = {**v1["definition"], "max_amount": "150000.00"}
    del later["code"]
    r = api.call(
        "POST",
        "/api/v1/products/SMB_OPERATING/versions",
        "product",
        json={**later, "effective_from": "2026-12-15", "note": "smaller tickets"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    # Today version 1 is still in force; version 2 is listed as the newest.
    shown = api.call("GET", "/api/v1/products/SMB_OPERATING", "officer").json()
    assert shown["in_force_version"] == 1
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["versions"][1]["definition"]["max_amount"] == "150000.00"
    listed = api.call("GET", "/api/v1/products", "officer").json()["items"]
    smb = next(p for p in listed if p["code"] == "SMB_OPERATING")
    assert (smb["in_force"]["version"], smb["latest_version"]) == (1, 2)
    assert [e.action for e in _audit(engine)] == ["product.version_added"]

    # The same definition again changes nothing; a date before the newest version's is refused;
    # an unknown product is a 404.
    same = api.call(
        "POST",
        "/api/v1/products/SMB_OPERATING/versions",
        "product",
        json={**later, "effective_from": "2026-12-20"},
    )
    assert_422_names(same, "definition")
    earlier = api.call(
        "POST",
        "/api/v1/products/SMB_OPERATING/versions",
        "product",
        json={**later, "max_amount": "120000.00", "effective_from": "2026-12-01"},
    )
    assert_422_names(earlier, "effective_from")
    missing = api.call("POST", "/api/v1/products/NOPE/versions", "product", json=later)
    assert missing.status_code == 404
    assert _versions(engine) == len(SEED_CATALOG) + 1
