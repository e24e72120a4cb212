"""The reports and the classification over HTTP (the API alone: nothing here reaches Temporal),
on SQLite and PostgreSQL: the hand-computed figures as JSON and as CSV, sorting and paging,
who may see them, the risk manager's override, and the field named in each 422."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.app import create_app
from domain.lifecycle import Role
from domain.permissions import MATRIX, Action, refusal
from loanops.security import create_access_token
from loanops.seed import DEMO_USERS, seed_demo_users
from loanops.settings import Settings
from models.tables import AuditEvent
from tests.conftest import DEMO_PASSWORD, _demo_password_hash
from tests.portfolio import DPD, DPD_BUCKETS, OVERDUE, PAR, TOTAL, build_portfolio, no

# 01:00 on 2026-06-15 in Shanghai, still the 14th in UTC: the default as_of is the business day.
NOW = datetime(2026, 6, 14, 17, 0, tzinfo=UTC)
USERS = {role.value: username for username, _, role in DEMO_USERS if username != "ops2"}


class Api:
    def __init__(self, http: TestClient, tokens: dict[str, str]) -> None:
        self.http = http
        self.tokens = tokens

    def call(self, method: str, url: str, role: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[USERS[role]]}", **kw.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kw)


@pytest.fixture
def api(engine: Engine, database_url: str) -> Iterator[Api]:
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_password_hash())
    build_portfolio(engine)
    settings = Settings(
        environment="test", database_url=database_url, temporal_address="127.0.0.1:9"
    )
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


MANAGER = Role.DEPARTMENT_MANAGER.value
RISK = Role.RISK_MANAGER.value


def test_portfolio_json_on_the_business_day(api: Api) -> None:
    r = api.call("GET", "/api/v1/reports/portfolio", MANAGER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["as_of"] == "2026-06-15"
    assert body["totals"]["outstanding_principal"] == TOTAL
    assert {
        p["key"]: (p["loan_count"], p["principal_at_risk"], p["share"]) for p in body["par"]
    } == PAR


@pytest.mark.parametrize("how", ["query", "accept"])
def test_portfolio_csv_has_the_same_figures(api: Api, how: str) -> None:
    kw: dict[str, Any] = (
        {"params": {"format": "csv"}} if how == "query" else {"headers": {"Accept": "text/csv"}}
    )
    r = api.call("GET", "/api/v1/reports/portfolio", MANAGER, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="portfolio-2026-06-15.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    by = {(row["section"], row["key"]): row for row in rows}
    assert by[("total", "outstanding")]["amount"] == TOTAL
    assert by[("total", "outstanding")]["loan_count"] == "7"
    for key, (count, amount) in DPD_BUCKETS.items():
        assert (int(by[("dpd", key)]["loan_count"]), by[("dpd", key)]["amount"]) == (count, amount)
    for key, (count, amount, share) in PAR.items():
        row = by[("par", key)]
        assert (int(row["loan_count"]), row["amount"], row["share"]) == (count, amount, share)
    assert by[("classification", "doubtful")]["label"] == "可疑"
    assert by[("write_offs", "written_off")]["amount"] == "1500.00"
    assert {row["as_of"] for row in rows} == {"2026-06-15"}


def test_overdue_sorted_and_paged(api: Api) -> None:
    r = api.call(
        "GET",
        "/api/v1/reports/overdue",
        Role.BUSINESS_OFFICER.value,
        params={"sort": "amount", "order": "asc", "limit": 2, "offset": 1},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total"], body["limit"], body["offset"]) == (6, 2, 1)
    # amounts ascending: R6 210, R2 521.25, R3 545, R7 707, R4 3187, R5 3190
    assert [i["application_no"] for i in body["items"]] == [no(2), no(3)]
    assert body["items"][0]["overdue_amount"] == "521.25"
    assert body["items"][0]["borrower_name"] == "李*"
    default = api.call("GET", "/api/v1/reports/overdue", MANAGER).json()
    assert default["limit"] == 50 and (default["sort"], default["order"]) == ("dpd", "desc")
    assert [i["days_past_due"] for i in default["items"]] == [200, 91, 90, 60, 30, 5]


def test_overdue_csv_has_every_row(api: Api) -> None:
    r = api.call("GET", "/api/v1/reports/overdue", Role.OPERATIONS_SPECIALIST.value,
                 params={"format": "csv", "as_of": "2026-06-15"})  # fmt: skip
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 6
    for row in rows:
        n = int(row["application_no"][-4:])
        assert int(row["days_past_due"]) == DPD[n]
        assert (row["overdue_principal"], row["overdue_interest"], row["overdue_fee"],
                row["penalty"], row["overdue_amount"]) == OVERDUE[n]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/reports/portfolio", {"as_of": "2026-13-01"}, "as_of"),
        ("/api/v1/reports/portfolio", {"format": "xml"}, "format"),
        ("/api/v1/reports/overdue", {"sort": "name"}, "sort"),
        ("/api/v1/reports/overdue", {"order": "up"}, "order"),
        ("/api/v1/reports/overdue", {"limit": 0}, "limit"),
        ("/api/v1/reports/overdue", {"limit": 501}, "limit"),
        ("/api/v1/reports/overdue", {"offset": -1}, "offset"),
    ],
)
def test_bad_parameters_name_the_field(
    api: Api, url: str, params: dict[str, Any], field: str
) -> None:
    r = api.call("GET", url, MANAGER, params=params)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["query", field]]


@pytest.mark.parametrize(
    ("action", "method", "url"),
    [
        (Action.READ_PORTFOLIO_REPORT, "GET", "/api/v1/reports/portfolio"),
        (Action.READ_OVERDUE_REPORT, "GET", "/api/v1/reports/overdue"),
        (Action.READ_CLASSIFICATION, "GET", f"/api/v1/loans/{no(4)}/classification"),
    ],
)
def test_only_roles_with_need_to_know(api: Api, action: Action, method: str, url: str) -> None:
    for role in USERS:
        r = api.call(method, url, role)
        if role in MATRIX[action]:
            assert r.status_code == 200, (role, r.text)
        else:
            assert r.status_code == 403, role
            assert r.json()["detail"] == refusal(action)
    assert Role.CUSTOMER_SERVICE.value not in MATRIX[Action.READ_OVERDUE_REPORT]
    assert Role.BUSINESS_OFFICER.value not in MATRIX[Action.READ_PORTFOLIO_REPORT]


# ---- classification ---------------------------------------------------------------------


def test_classification_history_and_rules(api: Api) -> None:
    r = api.call("GET", f"/api/v1/loans/{no(4)}/classification", Role.AUDITOR.value)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(h["seq"], h["category"]) for h in body["history"]] == [
        (1, "special_mention"),
        (2, "substandard"),
    ]
    assert body["current"]["category"] == "substandard" and body["current"]["label"] == "次级"
    assert body["rules"] == {
        "category": "substandard",
        "label": "次级",
        "reason": "91 days past due (> 90): 次级 substandard",
        "days_past_due": 91,
        "floor": "substandard",
    }
    # Not a loan on the books: no rules; unknown: 404.
    assert api.call("GET", f"/api/v1/loans/{no(9)}/classification", MANAGER).json()["rules"] is None
    assert (
        api.call("GET", "/api/v1/loans/A20260101-NOSUCH/classification", MANAGER).status_code == 404
    )


def test_the_risk_manager_overrides_with_a_reason(api: Api, engine: Engine) -> None:
    url = f"/api/v1/loans/{no(3)}/classification"
    r = api.call("POST", url, RISK, json={"category": "doubtful", "reason": "借款人失联"})
    assert r.status_code == 201, r.text
    assert {
        k: r.json()[k] for k in ("seq", "category", "source", "recorded_by", "reason", "as_of")
    } == {
        "seq": 1,
        "category": "doubtful",
        "source": "manual",
        "recorded_by": "risk",
        "reason": "借款人失联",
        "as_of": "2026-06-15",
    }
    with Session(engine) as s:
        event = s.exec(
            select(AuditEvent).where(AuditEvent.event_key == f"{no(3)}/classification/1")
        ).one()
    assert (event.actor, event.action, event.detail["reason"]) == (
        "risk",
        "loan.classification_overridden",
        "借款人失联",
    )
    current = api.call("GET", url, MANAGER).json()["current"]
    assert current["category"] == "doubtful"


@pytest.mark.parametrize(
    ("loan", "body", "status", "loc"),
    [
        # R5 is 200 days past due: 正常 is better than the rules allow.
        (5, {"category": "normal", "reason": "x"}, 422, ["body", "category"]),
        (5, {"category": "worst", "reason": "x"}, 422, ["body", "category"]),
        (5, {"category": "loss", "reason": ""}, 422, ["body", "reason"]),
        (5, {"category": "loss"}, 422, ["body", "reason"]),
        (9, {"category": "loss", "reason": "x"}, 409, None),  # not disbursed
    ],
)
def test_override_refusals(
    api: Api, loan: int, body: dict[str, Any], status: int, loc: list[str] | None
) -> None:
    r = api.call("POST", f"/api/v1/loans/{no(loan)}/classification", RISK, json=body)
    assert r.status_code == status, r.text
    if loc:
        assert [e["loc"] for e in r.json()["detail"]] == [loc]
    history = api.call("GET", f"/api/v1/loans/{no(loan)}/classification", RISK).json()["history"]
    assert [h["source"] for h in history] == (["manual"] if loan == 5 else [])


def test_only_the_risk_manager_overrides(api: Api) -> None:
    for role in USERS:
        if role == RISK:
            continue
        r = api.call(
            "POST",
            f"/api/v1/loans/{no(3)}/classification",
            role,
            json={"category": "loss", "reason": "x"},
        )
        assert r.status_code == 403, role
        assert r.json()["detail"] == refusal(Action.CLASSIFY_LOAN)
