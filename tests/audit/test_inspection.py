"""The auditor's inspection report against counts computed by hand on a small seeded trail (on
SQLite and PostgreSQL), over the API as JSON and CSV; and the attempts the API now records
(failed logins, a disabled user's login and token, the funding requester authorizing their own
movement) appear in it.

The trail (business time Asia/Shanghai; the period is 2026-06-01..2026-06-30):

| category | entries in the period | outside |
|---|---|---|
| four_eyes_violations | 3: MakerChecker by ``ops`` (06-02), Forbidden by ``officer2`` (06-03), MakerChecker by ``ops`` at 06-01 00:00 local (= 05-31 16:00 UTC) | one at 05-31 23:59 local |
| sla_breaches | 4: risk_review escalated level 1 and 2, offer_confirmation handed over, supplement_documents expired | risk_review.opened, application.expired are not breaches |
| pii_reveals | 3: risk ×2, ops ×1 | |
| overrides | 6: classification override; risk approve on decline (A1); risk reject on approve (A2); intake approve with a failed check (A4); risk approve on decline with a failed check (A5, one row, two reasons); bureau proceed_without | A3: risk approve on ``review`` (the decline came after the decision); intake approve with only a warning (A6) |
| failed_logins | 3: ghost ×2 (unknown_user), ops ×1 (wrong_password) | one at 07-01 00:00 local |
| disabled_user_attempts | 2 | |
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from domain.audit_actions import (
    CLASSIFICATION_OVERRIDDEN,
    DISABLED_USER_ATTEMPT,
    FOUR_EYES_REFUSED,
    LOGGED_IN,
    LOGIN_FAILED,
    PII_REVEALED,
)
from loanops.db import session_scope
from loanops.inspection import inspection_report
from loanops.security import create_access_token
from loanops.seed import seed_demo_pool, seed_demo_users
from loanops.settings import Settings
from models.audit import append_audit
from models.tables import Assessment, AuditEvent, User
from tests.conftest import DEMO_PASSWORD, _demo_password_hash

TZ = "Asia/Shanghai"
JUNE = (date(2026, 6, 1), date(2026, 6, 30))
EXPECTED_COUNTS = {
    "four_eyes_violations": 3,
    "sla_breaches": 4,
    "pii_reveals": 3,
    "overrides": 6,
    "failed_logins": 3,
    "disabled_user_attempts": 2,
}


def _utc(month: int, day: int, hour: int = 2, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def _assessment(no: str, seq: int, recommendation: str, at: datetime, *fails: str) -> Assessment:
    checks: list[dict[str, Any]] = [
        {"code": "AGE", "outcome": "pass", "detail": "", "knock_out": False},
        {"code": "DTI", "outcome": "warn", "detail": "", "knock_out": False},
    ]
    checks += [{"code": c, "outcome": "fail", "detail": "", "knock_out": False} for c in fails]
    return Assessment(
        application_no=no,
        seq=seq,
        bureau_status="found",
        checks=checks,
        score={},
        scorecard_version=1,
        grade="C",
        recommendation=recommendation,
        created_at=at,
    )


def seed_trail(engine: Engine) -> None:
    events: list[tuple[str, str, datetime, str | None, dict[str, Any]]] = [
        # four-eyes
        (FOUR_EYES_REFUSED, "ops", _utc(6, 2), "A0", {"refusal": "MakerChecker", "reason": "x"}),
        (FOUR_EYES_REFUSED, "officer2", _utc(6, 3), "A0", {"refusal": "Forbidden", "reason": "y"}),
        (FOUR_EYES_REFUSED, "ops", _utc(5, 31, 16, 0), "A0", {"refusal": "MakerChecker"}),
        (FOUR_EYES_REFUSED, "ops", _utc(5, 31, 15, 59), "A0", {"refusal": "MakerChecker"}),
        # SLA
        ("risk_review.opened", "system", _utc(6, 4), "A1", {}),
        ("risk_review.escalated", "system", _utc(6, 5), "A1", {"level": 1}),
        ("risk_review.escalated", "system", _utc(6, 6), "A1", {"level": 2}),
        ("offer_confirmation.handed_over", "system", _utc(6, 6, 3), "A1", {"level": 3}),
        ("supplement_documents.expired", "system", _utc(6, 7), "A2", {}),
        ("application.expired", "system", _utc(6, 7, 3), "A2", {}),
        # PII reveals
        (PII_REVEALED, "risk", _utc(6, 8), "A1", {"field": "id_number"}),
        (PII_REVEALED, "risk", _utc(6, 8, 3), "A2", {"field": "phone"}),
        (PII_REVEALED, "ops", _utc(6, 9), "A1", {"field": "bank_card"}),
        # overrides
        (CLASSIFICATION_OVERRIDDEN, "risk", _utc(6, 10), "A1", {"category": "substandard"}),
        ("risk_review.approve", "risk", _utc(6, 11), "A1", {}),
        ("risk_review.reject", "risk", _utc(6, 11, 3), "A2", {}),
        ("risk_review.approve", "risk", _utc(6, 11, 4), "A3", {}),
        ("intake_review.approve", "ops", _utc(6, 12), "A4", {}),
        ("risk_review.approve", "risk", _utc(6, 12, 3), "A5", {}),
        ("intake_review.approve", "ops", _utc(6, 12, 4), "A6", {}),
        ("bureau_unavailable.proceed_without", "ops", _utc(6, 13), "A7", {}),
        # logins
        (LOGIN_FAILED, "ghost", _utc(6, 14), None, {"reason": "unknown_user"}),
        (LOGIN_FAILED, "ghost", _utc(6, 14, 3), None, {"reason": "unknown_user"}),
        (LOGIN_FAILED, "ops", _utc(6, 15), None, {"reason": "wrong_password"}),
        (LOGIN_FAILED, "ops", _utc(6, 30, 16, 0), None, {"reason": "wrong_password"}),
        (DISABLED_USER_ATTEMPT, "gone", _utc(6, 16), None, {"via": "login"}),
        (DISABLED_USER_ATTEMPT, "gone", _utc(6, 16, 3), None, {"via": "token"}),
    ]
    with session_scope(engine) as s:
        for i, (action, actor, at, no, detail) in enumerate(events):
            append_audit(
                s,
                key=f"seed/{i}",
                actor=actor,
                action=action,
                occurred_at=at,
                application_no=no,
                detail=detail,
            )
        s.add(_assessment("A1", 1, "decline", _utc(6, 1)))
        s.add(_assessment("A2", 1, "approve", _utc(6, 1)))
        s.add(_assessment("A3", 1, "review", _utc(6, 1)))
        s.add(_assessment("A3", 2, "decline", _utc(6, 20)))
        s.add(_assessment("A4", 1, "review", _utc(6, 1), "PURPOSE"))
        s.add(_assessment("A5", 1, "decline", _utc(6, 1), "BLACKLIST"))
        s.add(_assessment("A6", 1, "approve", _utc(6, 1)))


def test_counts_and_rows_match_the_hand_computed_trail(engine: Engine) -> None:
    seed_trail(engine)
    with Session(engine) as s:
        report = inspection_report(s, *JUNE, TZ)
    assert report.counts == EXPECTED_COUNTS
    assert report.pii_reveals_by_user == {"ops": 1, "risk": 2}
    assert report.failed_logins_by_user == {"ghost": 2, "ops": 1}
    by = {c: [r for r in report.rows if r.category == c] for c in EXPECTED_COUNTS}
    assert [r.actor for r in by["four_eyes_violations"]] == ["ops", "ops", "officer2"]
    assert [r.summary for r in by["sla_breaches"]] == [
        "risk_review task escalated (level 1)",
        "risk_review task escalated (level 2)",
        "offer_confirmation task handed_over (level 3)",
        "supplement_documents task expired",
    ]
    overrides = {(r.action, r.application_no): r.summary for r in by["overrides"]}
    assert overrides == {
        (CLASSIFICATION_OVERRIDDEN, "A1"): "classification set to substandard (was None)",
        ("risk_review.approve", "A1"): "approve against the scorecard's decline",
        ("risk_review.reject", "A2"): "reject against the scorecard's approve",
        ("intake_review.approve", "A4"): "approved with failed checks: PURPOSE",
        ("risk_review.approve", "A5"): (
            "approve against the scorecard's decline; approved with failed checks: BLACKLIST"
        ),
        ("bureau_unavailable.proceed_without", "A7"): "went on without the credit bureau's report",
    }
    # Rows in time order.
    times = [r.occurred_at for r in report.rows]
    assert times == sorted(times)


def test_a_one_day_period(engine: Engine) -> None:
    seed_trail(engine)
    with Session(engine) as s:
        report = inspection_report(s, date(2026, 6, 1), date(2026, 6, 1), TZ)
    assert report.counts == {**dict.fromkeys(EXPECTED_COUNTS, 0), "four_eyes_violations": 1}


def _settings(url: str) -> Settings:
    return Settings(environment="test", database_url=url, temporal_address="127.0.0.1:9")


@pytest.fixture
def http(engine: Engine, database_url: str) -> Iterator[tuple[TestClient, Settings]]:
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_password_hash())
    settings = _settings(database_url)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client, settings


def _auth(settings: Settings, user: str, role: str) -> dict[str, str]:
    token = create_access_token(subject=user, roles=[role], secret=settings.secret_key, minutes=5)
    return {"Authorization": f"Bearer {token}"}


URL = "/api/v1/reports/inspection"


def test_the_report_over_the_api(engine: Engine, http: tuple[TestClient, Settings]) -> None:
    client, settings = http
    seed_trail(engine)
    params = {"from": "2026-06-01", "to": "2026-06-30"}
    r = client.get(URL, params=params, headers=_auth(settings, "auditor", "auditor"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == EXPECTED_COUNTS
    assert body["pii_reveals_by_user"] == {"ops": 1, "risk": 2}
    assert len(body["rows"]) == sum(EXPECTED_COUNTS.values())

    manager = _auth(settings, "manager", "department_manager")
    r = client.get(URL, params={**params, "format": "csv"}, headers=manager)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(r.text)))
    assert len(lines) == sum(EXPECTED_COUNTS.values())
    assert sum(1 for x in lines if x["category"] == "overrides") == 6

    r = client.get(URL, params=params, headers=_auth(settings, "officer", "business_officer"))
    assert r.status_code == 403
    r = client.get(
        URL,
        params={"from": "2026-07-01", "to": "2026-06-30"},
        headers=_auth(settings, "auditor", "auditor"),
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "from"]


def _actions(engine: Engine, action: str) -> list[tuple[str, dict[str, Any]]]:
    with Session(engine) as s:
        rows = s.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        ).all()
        return [(e.actor, e.detail) for e in rows]


def test_logins_failed_logins_and_disabled_users_are_recorded(
    engine: Engine, http: tuple[TestClient, Settings]
) -> None:
    client, settings = http
    login = "/api/v1/auth/token"
    assert client.post(login, data={"username": "ghost", "password": "x"}).status_code == 401
    assert client.post(login, data={"username": "ops", "password": "nope"}).status_code == 401
    r = client.post(login, data={"username": "ops", "password": DEMO_PASSWORD})
    assert r.status_code == 200
    assert [actor for actor, _ in _actions(engine, LOGGED_IN)] == ["ops"]
    token = _auth(settings, "cs", "customer_service")
    assert client.get("/api/v1/auth/me", headers=token).status_code == 200
    with session_scope(engine) as s:
        user = s.exec(select(User).where(User.username == "cs")).one()
        user.is_active = False
        s.add(user)
    r = client.post(login, data={"username": "cs", "password": DEMO_PASSWORD})
    assert r.status_code == 401
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401

    assert [(a, d["reason"]) for a, d in _actions(engine, LOGIN_FAILED)] == [
        ("ghost", "unknown_user"),
        ("ops", "wrong_password"),
    ]
    attempts = _actions(engine, DISABLED_USER_ATTEMPT)
    assert [(a, d.get("via", d.get("reason"))) for a, d in attempts] == [
        ("cs", "disabled"),
        ("cs", "token"),
    ]
    today = datetime.now(UTC).date()  # the business day is today or tomorrow (UTC+8)
    r = client.get(
        URL,
        params={"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))},
        headers=_auth(settings, "auditor", "auditor"),
    )
    body = r.json()
    assert body["counts"]["failed_logins"] == 2
    assert body["counts"]["disabled_user_attempts"] == 2
    assert body["failed_logins_by_user"] == {"ghost": 1, "ops": 1}


def test_the_funding_requester_authorizing_is_recorded(
    engine: Engine, http: tuple[TestClient, Settings]
) -> None:
    client, settings = http
    assert seed_demo_pool(engine, account_no="9558800200100000005")
    manager = _auth(settings, "manager", "department_manager")
    r = client.post(
        "/api/v1/funding/movements",
        json={
            "kind": "top_up",
            "amount": "1000.00",
            "reference": f"T-{uuid.uuid4().hex[:8]}",
            "reason": "capital injection",
        },
        headers=manager,
    )
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/funding/movements/{r.json()['id']}/authorize", headers=manager)
    assert r.status_code == 409
    [(actor, detail)] = _actions(engine, FOUR_EYES_REFUSED)
    assert actor == "manager"
    assert detail["refusal"] == "MakerChecker" and "may not authorize it" in detail["reason"]
