"""Who may do what, as the API applies it: every route declares exactly one action of
``domain.permissions``, and for every staff action the API lets in exactly the roles the matrix
names (a 403 carrying ``refusal(action)`` for the others)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api.app import create_app
from api.deps import declared_actions, get_current_user
from domain.lifecycle import Role
from domain.masking import mask_name
from domain.permissions import MATRIX, NOT_STAFF, Action, refusal
from loanops.db import make_engine
from loanops.migrate import upgrade
from loanops.security import create_access_token
from loanops.seed import DEMO_USERS, seed_demo_users
from loanops.settings import Settings
from models.tables import Application, Borrower, Task
from tests.conftest import DEMO_PASSWORD, PG_ADMIN_DSN, _pg_url, _require_pg

# ---- every route declares one action -------------------------------------------------------


def _app() -> FastAPI:
    return create_app(Settings(environment="test"))


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    dependant: Dependant | None  # None for FastAPI's own documentation routes


def _routes(app: FastAPI) -> list[RouteInfo]:
    """Every route the app serves, with its prefixes applied (FastAPI from 0.16x keeps included
    routers whole and gives their effective routes through ``iter_route_contexts``)."""
    contexts: Any = getattr(fastapi.routing, "iter_route_contexts", None)
    found = []
    ctx: Any
    for ctx in contexts(app.routes) if contexts else app.routes:
        original = getattr(ctx, "original_route", ctx)
        dependant = ctx.dependant if isinstance(original, fastapi.routing.APIRoute) else None
        found.append(RouteInfo(ctx.path, frozenset(ctx.methods or ()), dependant))
    return found


def _docs_paths(app: FastAPI) -> set[str | None]:
    return {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}


def undeclared(app: FastAPI) -> list[str]:
    """The routes that do not declare exactly one action, and the OpenAPI operations that no
    declaring route serves."""
    problems = []
    declared: dict[tuple[str, str], Action] = {}
    for route in _routes(app):
        if route.dependant is None:
            if route.path not in _docs_paths(app):
                problems.append(f"{sorted(route.methods)} {route.path}: not an API route")
            continue
        actions = declared_actions(route.dependant)
        if len(actions) != 1:
            problems.append(f"{sorted(route.methods)} {route.path}: declares {actions}")
            continue
        for method in route.methods:
            declared[(method.lower(), route.path)] = actions[0]
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if (method, path) not in declared:
                problems.append(f"{method.upper()} {path}: in OpenAPI without a declared action")
    return problems


def _asks_for_login(dependant: Dependant) -> bool:
    return dependant.call is get_current_user or any(
        _asks_for_login(sub) for sub in dependant.dependencies
    )


def test_every_route_declares_exactly_one_action() -> None:
    app = _app()
    assert undeclared(app) == []
    api_routes = [r for r in _routes(app) if r.dependant is not None]
    served = {(m.lower(), r.path) for r in api_routes for m in r.methods}
    documented = {(m, p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert served == documented and len(served) >= 18

    # A staff action asks for a login; a public, borrower or SMS gateway route does not.
    for route in api_routes:
        assert route.dependant is not None
        (action,) = declared_actions(route.dependant)
        not_staff = bool(MATRIX[action] & NOT_STAFF)
        assert _asks_for_login(route.dependant) is not not_staff, (route.path, action)


def test_a_route_without_a_declared_action_is_reported() -> None:
    """The walk above is not vacuous: a route added with no action (or two) is caught."""
    from api.deps import public, require

    app = _app()

    @app.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    @app.get("/twice", dependencies=[public(Action.HEALTH), require(Action.LIST_LOANS)])
    def twice() -> dict[str, str]:
        return {}

    assert undeclared(app) == [
        "['GET'] /forgotten: declares []",
        "['GET'] /twice: declares [<Action.HEALTH: 'health'>, <Action.LIST_LOANS: 'list_loans'>]",
        "GET /forgotten: in OpenAPI without a declared action",
        "GET /twice: in OpenAPI without a declared action",
    ]


def test_markers_must_agree_with_the_matrix() -> None:
    from api.deps import borrower, public, require, sms_gateway

    with pytest.raises(ValueError, match="not open to public"):
        public(Action.LIST_LOANS)
    with pytest.raises(ValueError, match="not open to borrower"):
        borrower(Action.POST_PAYMENT)
    with pytest.raises(ValueError, match="not open to sms_gateway"):
        sms_gateway(Action.READ_NOTICES)
    with pytest.raises(ValueError, match="declare it with public"):
        require(Action.HEALTH)


# ---- each staff action lets in exactly the matrix's roles ----------------------------------

NO_SUCH_LOAN = "A20260101-NOSUCH"
NO_SUCH_TASK = "00000000-0000-4000-8000-000000000000"

# One request per route-gated action. Allowed callers get past the gate and fail later on
# purpose (no such loan or task: 404; an empty body: 422), so no Temporal is needed.
PROBES: dict[Action, tuple[str, str, dict[str, Any] | None]] = {
    Action.READ_SELF: ("GET", "/api/v1/auth/me", None),
    Action.SUBMIT_APPLICATION: ("POST", "/api/v1/applications", {}),
    Action.LIST_LOANS: ("GET", "/api/v1/loans", None),
    Action.READ_LOAN: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}", None),
    Action.READ_APPLICATION: ("GET", f"/api/v1/applications/{NO_SUCH_LOAN}", None),
    Action.READ_TIMELINE: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/timeline", None),
    Action.READ_CONTRACT: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/contract.pdf", None),
    Action.READ_SETTLEMENT_CERTIFICATE: (
        "GET",
        f"/api/v1/loans/{NO_SUCH_LOAN}/settlement-certificate.pdf",
        None,
    ),
    Action.QUOTE_SCHEDULE: ("POST", "/api/v1/quotes/schedule", {}),
    Action.QUOTE_PAYOFF: ("POST", f"/api/v1/loans/{NO_SUCH_LOAN}/payoff-quote", {}),
    Action.POST_PAYMENT: ("POST", f"/api/v1/loans/{NO_SUCH_LOAN}/payments", {}),
    Action.WITHDRAW: ("POST", f"/api/v1/loans/{NO_SUCH_LOAN}/withdraw", {}),
    Action.LIST_TASKS: ("GET", "/api/v1/tasks", None),
    Action.CLAIM_TASK: ("POST", f"/api/v1/tasks/{NO_SUCH_TASK}/claim", None),
    Action.DECIDE_TASK: ("POST", f"/api/v1/tasks/{NO_SUCH_TASK}/decision", {}),
    Action.UPLOAD_DOCUMENT: ("POST", f"/api/v1/applications/{NO_SUCH_LOAN}/documents", {}),
    Action.LIST_DOCUMENTS: ("GET", f"/api/v1/applications/{NO_SUCH_LOAN}/documents", None),
    Action.READ_NOTICES: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/notices", None),
    Action.DOWNLOAD_DOCUMENT: (
        "GET",
        f"/api/v1/applications/{NO_SUCH_LOAN}/documents/{NO_SUCH_TASK}",
        None,
    ),
    Action.READ_CLASSIFICATION: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/classification", None),
    Action.CLASSIFY_LOAN: ("POST", f"/api/v1/loans/{NO_SUCH_LOAN}/classification", {}),
    Action.READ_PORTFOLIO_REPORT: ("GET", "/api/v1/reports/portfolio", None),
    Action.READ_OVERDUE_REPORT: ("GET", "/api/v1/reports/overdue", None),
    Action.READ_PRODUCTS: ("GET", "/api/v1/products/NO_SUCH_PRODUCT", None),
    Action.MANAGE_PRODUCTS: ("POST", "/api/v1/products", {}),
    Action.READ_LIQUIDITY: ("GET", "/api/v1/reports/liquidity", None),
    Action.READ_INSPECTION_REPORT: ("GET", "/api/v1/reports/inspection", None),
    Action.LIST_FUNDING_MOVEMENTS: ("GET", "/api/v1/funding/movements", None),
    Action.REQUEST_FUNDING_MOVEMENT: ("POST", "/api/v1/funding/movements", {}),
    Action.AUTHORIZE_FUNDING_MOVEMENT: (
        "POST",
        f"/api/v1/funding/movements/{NO_SUCH_TASK}/authorize",
        None,
    ),
    Action.DECODE_TEMPORAL_PAYLOADS: ("POST", "/api/v1/codec/decode", {}),
    Action.ENCODE_TEMPORAL_PAYLOADS: ("POST", "/api/v1/codec/encode", {}),
    Action.REQUEST_PAYMENT_REVERSAL: (
        "POST",
        f"/api/v1/loans/{NO_SUCH_LOAN}/payments/{uuid.UUID(int=0)}/reversal",
        {},
    ),
    Action.READ_ARCHIVE: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/archive", None),
    Action.READ_POST_LOAN_REVIEWS: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/reviews", None),
    Action.READ_RISK_FLAGS: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/risk-flags", None),
    Action.READ_COLLECTIONS: ("GET", f"/api/v1/loans/{NO_SUCH_LOAN}/collections", None),
    Action.READ_RECONCILIATION: ("GET", "/api/v1/reconciliation/runs/2000-01-01", None),
    # (a token minted without a login: logging out ends nothing, 204)
    Action.LOGOUT: ("POST", "/api/v1/auth/logout", None),
    Action.LIST_USERS: ("GET", "/api/v1/users", None),
    Action.MANAGE_USERS: ("POST", "/api/v1/users", {}),
    Action.ASSIGN_OFFICER: ("PUT", f"/api/v1/applications/{NO_SUCH_LOAN}/assigned-officer", {}),
}
# Actions checked inside a handler rather than at the gate: what the caller sees changes.
IN_HANDLER = {Action.OVERSEE_TASKS, Action.READ_BORROWER_PII}
# Actions a workflow validator checks on a task decision (through DECIDE_TASK's route).
IN_WORKFLOW = {Action.SEAL_CONTRACT}
STAFF_ACTIONS = sorted(a for a in Action if not MATRIX[a] & NOT_STAFF)
# One demo user per role (ops2 duplicates ops).
USERS = {role.value: username for username, _, role in DEMO_USERS if username != "ops2"}
BORROWER_NAME = "张三丰"


def test_the_probes_cover_every_staff_action_and_every_role() -> None:
    assert set(PROBES) | IN_HANDLER | IN_WORKFLOW == set(STAFF_ACTIONS)
    assert set(USERS) == {r.value for r in Role}
    gated = {
        a
        for r in _routes(_app())
        if r.dependant is not None
        for a in declared_actions(r.dependant)
        if a in STAFF_ACTIONS
    }
    assert gated == set(PROBES)


@dataclass
class StaffApi:
    http: TestClient
    tokens: dict[str, str]

    def call(self, method: str, url: str, role: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[USERS[role]]}"} if role else {}
        return self.http.request(method, url, headers=headers, **kw)


def _seed_rows(engine: Engine) -> None:
    """One open task per role, and one application (for the borrower's name in the list)."""
    now = datetime.now(UTC)
    with Session(engine) as s:
        borrower = Borrower(
            name=BORROWER_NAME,
            id_number="11010519491231002X",
            phone="13800138000",
            bank_card="6222020200112233446",
            monthly_income=Decimal("20000.00"),
        )
        s.add(borrower)
        s.flush()
        s.add(
            Application(
                application_no="A20260101-PERM01",
                borrower_id=borrower.id,
                amount=Decimal("50000.00"),
                term_months=6,
                purpose="店铺装修",
                repayment_source="经营收入",
                stage="INTAKE_REVIEW",
                submitted_by="officer",
            )
        )
        for role in Role:
            s.add(
                Task(
                    id=uuid.uuid4(),
                    application_no="A20260101-PERM01",
                    kind="intake_review",
                    candidate_role=role.value,
                    due_at=now + timedelta(days=1),
                    created_at=now,
                )
            )
        s.commit()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def staff_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StaffApi]:
    """The API alone (no Temporal: nothing probed here reaches it) over a fresh database of
    each kind, with the demo users and their tokens."""
    name = f"loanops_test_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('perm')) / 'loanops.db'}"
    else:
        _require_pg()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _pg_url(name)
    try:
        upgrade(url)
        engine = make_engine(url)
        seed_demo_users(engine, password=DEMO_PASSWORD)
        _seed_rows(engine)
        settings = Settings(environment="test", database_url=url, temporal_address="127.0.0.1:9")
        tokens = {
            username: create_access_token(
                subject=username,
                roles=[role.value],
                secret=settings.secret_key,
                minutes=settings.access_token_minutes,
            )
            for username, _, role in DEMO_USERS
        }
        with TestClient(create_app(settings, engine=engine)) as http:
            yield StaffApi(http, tokens)
        engine.dispose()
    finally:
        if request.param == "postgresql":
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _observed(api: StaffApi, action: Action, role: str) -> bool:
    """Whether the API lets ``role`` do ``action``, as seen from outside."""
    if action == Action.OVERSEE_TASKS:
        r = api.call("GET", "/api/v1/tasks", role)
        assert r.status_code == 200, r.text
        seen = {t["candidate_role"] for t in r.json()["items"]}
        assert seen in ({role}, {x.value for x in Role}), seen
        return seen != {role}
    if action == Action.READ_BORROWER_PII:
        r = api.call("GET", "/api/v1/loans", role)
        assert r.status_code == 200, r.text
        (name,) = {i["borrower_name"] for i in r.json()["items"]}
        assert name in (BORROWER_NAME, mask_name(BORROWER_NAME)), name
        return bool(name == BORROWER_NAME)
    method, url, body = PROBES[action]
    r = api.call(method, url, role, json=body)
    assert r.status_code not in (401, 500), (role, r.text)
    if r.status_code == 403:
        assert r.json()["detail"] == refusal(action), (role, r.text)
        return False
    return True


# (IN_WORKFLOW actions are observed on the workflow: tests/workflows/test_fast_lender_seal.py.)
@pytest.mark.parametrize("action", [a for a in STAFF_ACTIONS if a not in IN_WORKFLOW], ids=str)
def test_each_staff_action_admits_exactly_the_roles_of_the_matrix(
    staff_api: StaffApi, action: Action
) -> None:
    observed = {role: _observed(staff_api, action, role) for role in USERS}
    expected = {role: role in MATRIX[action] for role in USERS}
    assert observed == expected
    if action in PROBES:  # and nobody gets past the gate without logging in
        method, url, body = PROBES[action]
        assert staff_api.call(method, url, None, json=body).status_code == 401
