"""Logins, lockout, refresh rotation, logout, disabled users and the department manager's user
administration — the API alone (no Temporal) over a migrated database of each kind."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from loanops.security import create_access_token, hash_password
from loanops.seed import seed_demo_users
from loanops.settings import Settings
from models.tables import AuditEvent, LoginThrottle, User
from tests.conftest import DEMO_PASSWORD

NEW_PASSWORD = "correct horse battery staple"


class Clock:
    """The API's clock, moved by hand (the lock's 15 minutes pass without waiting)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@functools.cache
def _demo_hash() -> str:
    return hash_password(DEMO_PASSWORD)


@dataclass
class Api:
    http: TestClient
    engine: Engine
    settings: Settings
    clock: Clock

    def login(self, username: str, password: str = DEMO_PASSWORD) -> httpx.Response:
        return self.http.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )

    def tokens(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
        r = self.login(username, password)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def as_(self, token: str, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw)

    def audit(self, action: str) -> list[AuditEvent]:
        with Session(self.engine) as s:
            return list(
                s.exec(
                    select(AuditEvent)
                    .where(AuditEvent.action == action)
                    .order_by(col(AuditEvent.recorded_at))
                ).all()
            )


def _app(engine: Engine, database_url: str, clock: Clock) -> tuple[TestClient, Settings]:
    settings = Settings(
        environment="test", database_url=database_url, temporal_address="127.0.0.1:9"
    )
    return TestClient(create_app(settings, engine=engine, clock=clock)), settings


@pytest.fixture
def api(engine: Engine, database_url: str) -> Iterator[Api]:
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_hash())
    clock = Clock()
    http, settings = _app(engine, database_url, clock)
    with http:
        yield Api(http, engine, settings, clock)


def test_login_gives_a_short_access_token_and_a_refresh_token(api: Api) -> None:
    t = api.tokens("officer")
    assert t["token_type"] == "bearer" and t["roles"] == ["business_officer"]
    assert t["expires_in"] == 15 * 60 and t["refresh_expires_in"] == 12 * 3600
    assert api.as_(t["access_token"], "GET", "/api/v1/auth/me").json()["username"] == "officer"
    (event,) = api.audit("auth.login")
    assert event.actor == "officer" and DEMO_PASSWORD not in str(event.detail)


def test_lockout_after_five_failures_holds_for_known_and_unknown_names(api: Api) -> None:
    for username in ("officer", "nobody-at-all"):
        answers = [api.login(username, "wrong password!") for _ in range(5)]
        assert [r.status_code for r in answers] == [401, 401, 401, 401, 423]
        assert answers[0].json()["detail"] == "incorrect username or password"
        assert int(answers[-1].headers["Retry-After"]) == 15 * 60
        # Locked: even the right password is refused, with the time left.
        api.clock.now += timedelta(minutes=5)
        r = api.login(username)
        assert r.status_code == 423 and int(r.headers["Retry-After"]) == 10 * 60
    assert [e.actor for e in api.audit("auth.locked")] == ["officer", "nobody-at-all"]
    assert len(api.audit("auth.login_failed")) == 10
    # The lock passes; a success clears the count.
    api.clock.now += timedelta(minutes=10, seconds=1)
    assert api.login("officer").status_code == 200
    with Session(api.engine) as s:
        row = s.get(LoginThrottle, "officer")
        assert row is not None and row.failures == 0 and row.locked_until is None


def test_failures_are_counted_in_the_database_across_api_processes(
    api: Api, engine: Engine, database_url: str
) -> None:
    other, _ = _app(engine, database_url, api.clock)
    with other:
        codes = []
        for i in range(5):
            client = api.http if i % 2 else other  # alternate between two API instances
            codes.append(
                client.post(
                    "/api/v1/auth/token", data={"username": "ops", "password": "nope nope"}
                ).status_code
            )
    assert codes == [401, 401, 401, 401, 423]


def test_one_address_failing_on_many_usernames_is_held_back(
    api: Api, engine: Engine, database_url: str
) -> None:
    """Password spraying: one failure on each of 20 usernames from one address holds the
    address back (429) — not the usernames, nor the other addresses."""
    for i in range(20):
        assert api.login(f"guess{i}", "Summer2026!").status_code == 401
    r = api.login("officer")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 15 * 60
    (held,) = api.audit("auth.address_held_back")
    assert held.detail["address"] == "testclient"
    elsewhere = TestClient(
        create_app(api.settings, engine=engine, clock=api.clock), client=("10.0.0.2", 50000)
    )
    with elsewhere:
        r = elsewhere.post(
            "/api/v1/auth/token", data={"username": "officer", "password": DEMO_PASSWORD}
        )
        assert r.status_code == 200
    api.clock.now += timedelta(minutes=15, seconds=1)
    assert api.login("officer").status_code == 200


def test_a_success_resets_the_count_of_consecutive_failures(api: Api) -> None:
    for _ in range(4):
        assert api.login("risk", "wrong").status_code == 401
    assert api.login("risk").status_code == 200
    for _ in range(4):
        assert api.login("risk", "wrong").status_code == 401
    assert api.login("risk").status_code == 200


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_login(api: Api) -> None:
    first = api.tokens("ops")
    r = api.http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.as_(second["access_token"], "GET", "/api/v1/auth/me").status_code == 200
    # The first refresh token was used up: presented again (a stolen copy), it is refused and
    # the whole login ends — the newest tokens too.
    again = api.http.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401
    assert api.as_(second["access_token"], "GET", "/api/v1/auth/me").status_code == 401
    assert (
        api.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
        ).status_code
        == 401
    )
    assert len(api.audit("auth.refresh_reused")) == 1
    # Another login of the same user is not affected.
    assert api.as_(api.tokens("ops")["access_token"], "GET", "/api/v1/auth/me").status_code == 200


def test_refresh_refuses_unknown_and_expired_tokens_and_extra_fields(api: Api) -> None:
    assert (
        api.http.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"}).status_code == 401
    )
    t = api.tokens("risk")
    r = api.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"], "username": "manager"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "username"]
    api.clock.now += timedelta(hours=12, seconds=1)
    r = api.http.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})
    assert r.status_code == 401


def test_logout_revokes_the_refresh_and_the_access_token(api: Api) -> None:
    t = api.tokens("cs")
    assert api.as_(t["access_token"], "POST", "/api/v1/auth/logout").status_code == 204
    assert api.as_(t["access_token"], "GET", "/api/v1/auth/me").status_code == 401
    r = api.http.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]})
    assert r.status_code == 401
    assert len(api.audit("auth.logout")) == 1


def test_a_disabled_users_tokens_are_refused_at_once_even_after_enabling(api: Api) -> None:
    manager = api.tokens("manager")["access_token"]
    mine = api.tokens("officer")
    minted = create_access_token(
        subject="officer",
        roles=["business_officer"],
        secret=api.settings.secret_key,
        minutes=15,
    )
    assert api.as_(minted, "GET", "/api/v1/loans").status_code == 200
    r = api.as_(manager, "POST", "/api/v1/users/officer/disable")
    assert r.status_code == 200 and r.json()["is_active"] is False
    for token in (mine["access_token"], minted):
        assert api.as_(token, "GET", "/api/v1/loans").status_code == 401
    assert (
        api.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]}
        ).status_code
        == 401
    )
    assert api.login("officer").status_code == 401  # same answer as a wrong password
    # A disabled account's attempt is its own action (the inspection report counts it).
    assert api.audit("auth.login_failed") == []
    attempts = api.audit("auth.disabled_user_attempt")
    assert [e.detail.get("reason") for e in attempts if "reason" in e.detail] == ["disabled"]
    # Enabled again: a new login works, the old tokens stay dead.
    assert api.as_(manager, "POST", "/api/v1/users/officer/enable").status_code == 200
    assert api.as_(mine["access_token"], "GET", "/api/v1/loans").status_code == 401
    assert api.as_(api.tokens("officer")["access_token"], "GET", "/api/v1/loans").status_code == 200


def test_the_manager_creates_an_account_under_the_password_policy(api: Api) -> None:
    manager = api.tokens("manager")["access_token"]
    body = {"username": "zhang.wei", "full_name": "张伟", "roles": ["risk_manager"]}
    for password, reason in [
        ("short1234", "at least 12 characters"),
        ("xx-zhang.wei-xx", "must not contain the username"),
        ("Password1234", "too common"),
        ("abababababab", "too repetitive"),
    ]:
        r = api.as_(manager, "POST", "/api/v1/users", json={**body, "password": password})
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "password"] and reason in err["msg"]
    r = api.as_(
        manager, "POST", "/api/v1/users", json={**body, "roles": ["root"], "password": NEW_PASSWORD}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "roles"]
    r = api.as_(
        manager,
        "POST",
        "/api/v1/users",
        json={**body, "password": NEW_PASSWORD, "is_active": False},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "is_active"]
    with Session(api.engine) as s:
        assert s.exec(select(User).where(User.username == "zhang.wei")).first() is None

    r = api.as_(manager, "POST", "/api/v1/users", json={**body, "password": NEW_PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["roles"] == ["risk_manager"] and "password" not in r.text
    assert (
        api.as_(
            manager, "POST", "/api/v1/users", json={**body, "password": NEW_PASSWORD}
        ).status_code
        == 409
    )
    assert api.tokens("zhang.wei", NEW_PASSWORD)["roles"] == ["risk_manager"]
    (created,) = api.audit("user.created")
    assert created.actor == "manager" and created.detail["username"] == "zhang.wei"
    assert NEW_PASSWORD not in str(created.detail)


def test_roles_and_password_changes_take_effect_and_are_audited(api: Api) -> None:
    manager = api.tokens("manager")["access_token"]
    product = api.tokens("product")
    r = api.as_(manager, "PUT", "/api/v1/users/product/roles", json={"roles": ["auditor"]})
    assert r.status_code == 200 and r.json()["roles"] == ["auditor"]
    # The next request already has the new roles (they are read from the database).
    assert api.as_(product["access_token"], "GET", "/api/v1/users").status_code == 200
    (changed,) = api.audit("user.roles_changed")
    assert changed.detail["before"] == {"roles": ["product_manager"]}
    assert changed.detail["after"] == {"roles": ["auditor"]}

    r = api.as_(manager, "POST", "/api/v1/users/product/password", json={"password": NEW_PASSWORD})
    assert r.status_code == 200
    assert api.as_(product["access_token"], "GET", "/api/v1/auth/me").status_code == 401
    assert api.login("product").status_code == 401
    assert api.login("product", NEW_PASSWORD).status_code == 200
    assert len(api.audit("user.password_reset")) == 1


def test_never_on_ones_own_account_and_only_the_manager(api: Api) -> None:
    manager = api.tokens("manager")["access_token"]
    for method, url, body in [
        ("POST", "/api/v1/users/manager/disable", None),
        ("PUT", "/api/v1/users/manager/roles", {"roles": ["auditor"]}),
        ("POST", "/api/v1/users/manager/password", {"password": NEW_PASSWORD}),
    ]:
        r = api.as_(manager, method, url, json=body)
        assert r.status_code == 409 and "your own account" in r.json()["detail"], url
    assert api.as_(manager, "POST", "/api/v1/users/nobody/disable").status_code == 404
    auditor = api.tokens("auditor")["access_token"]
    listed = api.as_(auditor, "GET", "/api/v1/users")
    assert listed.status_code == 200
    assert {u["username"] for u in listed.json()["items"]} >= {"manager", "officer"}
    assert "password" not in listed.text
    assert api.as_(auditor, "POST", "/api/v1/users/officer/disable").status_code == 403
    officer = api.tokens("officer")["access_token"]
    assert api.as_(officer, "GET", "/api/v1/users").status_code == 403
    assert api.audit("user.disabled") == []
