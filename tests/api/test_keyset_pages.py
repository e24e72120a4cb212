"""Keyset pagination of the inbox and the loan list (issue 13): following ``next_cursor`` page
by page gives exactly the rows of the one long offset page, in the same order, ties included;
a cursor that is not ours, or one given with an offset, is a 422 naming ``cursor``; the total is
counted only when asked. The API alone over a database of each kind."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.app import create_app
from loanops.demo import DEMO_BORROWER
from loanops.security import create_access_token, hash_password
from loanops.seed import seed_demo_users
from loanops.settings import Settings
from models.tables import Application, Borrower, Task, User
from tests.conftest import DEMO_PASSWORD

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@functools.cache
def _demo_hash() -> str:
    return hash_password(DEMO_PASSWORD)


def _seed(engine: Engine) -> None:
    """13 applications (some created at the same instant) and, on them, 17 open tasks of the
    business officers with priorities and due times that tie, plus closed and other roles'."""
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_hash())
    with Session(engine) as s:
        b = DEMO_BORROWER
        borrower = Borrower(
            name=b["name"],
            id_number=b["id_number"],
            phone=b["phone"],
            bank_card=b["bank_card"],
            monthly_income=Decimal(b["monthly_income"]),
        )
        s.add(borrower)
        s.flush()
        for i in range(13):
            s.add(
                Application(
                    application_no=f"A20261102-{i:04d}",
                    borrower_id=borrower.id,
                    amount=Decimal("50000.00"),
                    term_months=6,
                    purpose="店铺装修",
                    repayment_source="经营收入",
                    stage="RISK_REVIEW" if i % 3 else "SERVICING",
                    submitted_by="officer",
                    created_at=T0 + timedelta(minutes=i // 2),  # pairs created together
                )
            )
        for i in range(17):
            s.add(
                Task(
                    id=uuid.uuid4(),
                    application_no=f"A20261102-{i % 13:04d}",
                    kind="offer_confirmation",
                    candidate_role="business_officer",
                    priority=(50, 80, 50, 20)[i % 4],
                    due_at=T0 + timedelta(hours=i % 3),
                    created_at=T0 + timedelta(seconds=i % 2),
                )
            )
        for i, (role, status) in enumerate(
            (("risk_manager", "open"), ("business_officer", "done"))
        ):
            s.add(
                Task(
                    id=uuid.uuid4(),
                    application_no="A20261102-0000",
                    kind="offer_confirmation",
                    candidate_role=role,
                    status=status,
                    due_at=T0,
                    created_at=T0 + timedelta(seconds=i),
                )
            )
        s.commit()


class Api:
    def __init__(self, http: TestClient, settings: Settings, engine: Engine) -> None:
        self.http, self.settings, self.engine = http, settings, engine

    def get(self, user: str, url: str, **params: Any) -> Any:
        with Session(self.engine) as s:
            roles = s.exec(select(User).where(User.username == user)).one().roles
        token = create_access_token(
            subject=user, roles=roles, secret=self.settings.secret_key, minutes=15
        )
        return self.http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})

    def walk(self, user: str, url: str, **params: Any) -> list[str]:
        """Every item's key, following next_cursor three at a time (no counts)."""
        keys: list[str] = []
        cursor: str | None = None
        while True:
            extra = {"cursor": cursor} if cursor else {}
            r = self.get(user, url, limit=3, count="false", **params, **extra)
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["total"] is None
            keys += [_key(item) for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return keys
            assert len(page["items"]) == 3


def _key(item: dict[str, Any]) -> str:
    return str(item.get("id") or item["application_no"])


@pytest.fixture
def api(engine: Engine, database_url: str) -> Iterator[Api]:
    _seed(engine)
    settings = Settings(
        environment="test", database_url=database_url, temporal_address="127.0.0.1:9"
    )
    with TestClient(create_app(settings, engine=engine)) as http:
        yield Api(http, settings, engine)


def test_the_inbox_by_cursor_is_the_inbox_by_offset(api: Api) -> None:
    whole = api.get("officer", "/api/v1/tasks", limit=500).json()
    assert whole["total"] == 17 and whole["next_cursor"] is None
    items = whole["items"]
    # Most urgent first: priority descending, then the earliest due.
    assert [(t["priority"], t["due_at"]) for t in items] == sorted(
        ((t["priority"], t["due_at"]) for t in items), key=lambda pd: (-pd[0], pd[1])
    )
    assert api.walk("officer", "/api/v1/tasks") == [t["id"] for t in items]
    # The manager oversees every role's inbox: the risk manager's open task too.
    assert len(api.walk("manager", "/api/v1/tasks")) == 18


def test_the_loan_list_by_cursor_is_the_list_by_offset_with_or_without_a_stage(
    api: Api,
) -> None:
    for params in ({}, {"stage": "RISK_REVIEW"}, {"stage": "SERVICING"}):
        whole = api.get("manager", "/api/v1/loans", limit=500, **params).json()
        expected = [i["application_no"] for i in whole["items"]]
        assert whole["total"] == len(expected) > 0
        assert api.walk("manager", "/api/v1/loans", **params) == expected
    # Newest first; of two created together, the higher number first.
    assert expected == sorted(expected, reverse=True)


def test_a_cursor_that_is_not_ours_or_comes_with_an_offset_is_refused(api: Api) -> None:
    first = api.get("manager", "/api/v1/loans", limit=2).json()
    assert first["next_cursor"]
    for url in ("/api/v1/loans", "/api/v1/tasks"):
        for cursor in ("not-a-cursor", "W10", "WyJ4Il0"):  # garbage, [], ["x"]
            r = api.get("manager", url, cursor=cursor)
            assert r.status_code == 422, r.text
            (problem,) = r.json()["detail"]
            assert problem["loc"] == ["query", "cursor"]
    r = api.get("manager", "/api/v1/loans", cursor=first["next_cursor"], offset=2)
    assert r.status_code == 422
    assert "either a cursor or an offset" in r.json()["detail"][0]["msg"]
