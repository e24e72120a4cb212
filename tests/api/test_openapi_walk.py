"""The OpenAPI walk: every operation the API documents is called as every staff role (with a
minimal, usually invalid, body and a path naming nothing) and must answer 403 exactly when the
permission matrix (``domain.permissions.MATRIX``) refuses that role the operation's declared
action — never 401 or 500 for a logged-in role. An operation without a declared action fails the
walk, so a new route cannot be added without its rule. The auditor reads everything and
changes nothing: every GET admits them, every operation that writes refuses them."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.deps import declared_actions, require
from domain.lifecycle import Role
from domain.permissions import MATRIX, NOT_STAFF, Action, refusal
from loanops.db import make_engine
from loanops.security import create_access_token, hash_password
from loanops.seed import DEMO_USERS, seed_demo_users
from loanops.settings import Settings
from tests.api.test_permissions import _routes
from tests.conftest import DEMO_PASSWORD

USERS = {role.value: username for username, _, role in DEMO_USERS if username != "ops2"}
NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"
NO_SUCH_NAME = "A20260101-NOSUCH"
WRITES = {"post", "put", "patch", "delete"}
# Operations that write nothing of the business's (a computation, one's own login).
# POSTs that change nothing (a quote, logging out, decoding a history for the Web UI).
READ_ONLY_WRITES = {
    Action.QUOTE_SCHEDULE,
    Action.QUOTE_PAYOFF,
    Action.LOGOUT,
    Action.DECODE_TEMPORAL_PAYLOADS,
}


@functools.cache
def _demo_hash() -> str:
    return hash_password(DEMO_PASSWORD)


def _declared(app: FastAPI) -> dict[tuple[str, str], list[Action]]:
    found: dict[tuple[str, str], list[Action]] = {}
    for route in _routes(app):
        if route.dependant is None:
            continue
        for method in route.methods:
            found[(method.lower(), route.path)] = declared_actions(route.dependant)
    return found


def _url(path: str, operation: dict[str, Any]) -> str:
    """The path with each parameter naming nothing (a uuid where the parameter is one)."""
    formats = {
        p["name"]: p.get("schema", {}).get("format")
        for p in operation.get("parameters", [])
        if p.get("in") == "path"
    }
    return re.sub(
        r"\{(\w+)\}",
        lambda m: NO_SUCH_ID if formats.get(m.group(1)) == "uuid" else NO_SUCH_NAME,
        path,
    )


def walk(app: FastAPI, http: TestClient, tokens: dict[str, str]) -> list[str]:
    """Every disagreement between what the API answers and what the matrix says."""
    problems: list[str] = []
    declared = _declared(app)
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            actions = declared.get((method, path), [])
            if len(actions) != 1:
                problems.append(f"{method.upper()} {path}: no rule (declares {actions})")
                continue
            (action,) = actions
            if MATRIX[action] & NOT_STAFF:
                continue  # public, the borrower's link, the SMS gateway: no roles to walk
            body: dict[str, Any] | None = {} if method in WRITES else None
            url = _url(path, operation)
            for role, username in USERS.items():
                r = http.request(
                    method,
                    url,
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[username]}"},
                )
                allowed = role in MATRIX[action]
                where = f"{method.upper()} {path} as {role}"
                if r.status_code in (401, 500):
                    problems.append(f"{where}: {r.status_code} {r.text[:200]}")
                elif allowed and r.status_code == 403:
                    problems.append(f"{where}: 403 but the matrix allows {action.value}")
                elif not allowed and r.status_code != 403:
                    problems.append(f"{where}: {r.status_code} but the matrix refuses it")
                elif not allowed and r.json().get("detail") != refusal(action):
                    problems.append(f"{where}: 403 without the matrix's refusal")
            writes = method in WRITES and action not in READ_ONLY_WRITES
            if writes and Role.AUDITOR.value in MATRIX[action]:
                problems.append(f"{method.upper()} {path}: the auditor may write")
            if method == "get" and Role.AUDITOR.value not in MATRIX[action]:
                problems.append(f"GET {path}: the auditor may not read it")
    return problems


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Any) -> Iterator[Any]:
    import shutil

    path = tmp_path_factory.mktemp("walk") / "loanops.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine: Engine = make_engine(url)
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_hash())
    settings = Settings(environment="test", database_url=url, temporal_address="127.0.0.1:9")
    tokens = {
        username: create_access_token(
            subject=username, roles=[role.value], secret=settings.secret_key, minutes=15
        )
        for username, _, role in DEMO_USERS
    }
    yield settings, engine, tokens
    engine.dispose()


def test_every_operation_answers_every_role_as_the_matrix_says(api: Any) -> None:
    settings, engine, tokens = api
    app = create_app(settings, engine=engine)
    with TestClient(app) as http:
        assert walk(app, http, tokens) == []
    walked = [p for p, ops in app.openapi()["paths"].items() for _ in ops]
    assert len(walked) >= 45


def test_the_walk_fails_on_a_route_without_a_rule_or_a_check_the_matrix_does_not_name(
    api: Any,
) -> None:
    settings, engine, tokens = api
    app = create_app(settings, engine=engine)

    @app.post("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    @app.get("/api/v1/stricter", dependencies=[require(Action.LIST_LOANS)])
    def stricter() -> dict[str, str]:
        raise HTTPException(403, detail="only on Tuesdays")

    @app.post("/api/v1/audited-write", dependencies=[require(Action.LIST_LOANS)])
    def audited_write() -> dict[str, str]:
        return {}

    @app.get("/api/v1/hidden-from-audit", dependencies=[require(Action.SUBMIT_APPLICATION)])
    def hidden_from_audit() -> dict[str, str]:
        return {}

    with TestClient(app) as http:
        problems = walk(app, http, tokens)
    assert "POST /api/v1/forgotten: no rule (declares [])" in problems
    assert "GET /api/v1/stricter as auditor: 403 but the matrix allows list_loans" in problems
    assert "POST /api/v1/audited-write: the auditor may write" in problems
    assert "GET /api/v1/hidden-from-audit: the auditor may not read it" in problems
    assert all(
        p.split(":")[0]
        .split(" ")[1]
        .startswith(
            (
                "/api/v1/forgotten",
                "/api/v1/stricter",
                "/api/v1/audited-write",
                "/api/v1/hidden-from-audit",
            )
        )
        for p in problems
    ), problems


def test_the_walk_covers_every_role_and_uuid_paths() -> None:
    assert set(USERS) == {r.value for r in Role}
    op = {"parameters": [{"name": "task_id", "in": "path", "schema": {"format": "uuid"}}]}
    assert _url("/api/v1/tasks/{task_id}/claim", op) == f"/api/v1/tasks/{NO_SUCH_ID}/claim"
    assert uuid.UUID(NO_SUCH_ID)


def test_every_json_body_refuses_fields_it_does_not_name() -> None:
    """``extra="forbid"`` on every request model, nested ones included: a body cannot slip in a
    server-owned field (stage, submitter, approved amount); FastAPI answers 422 naming it."""
    spec = create_app(Settings(environment="test")).openapi()
    schemas = spec["components"]["schemas"]
    lenient: list[str] = []
    seen: set[str] = set()

    def check(schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return
            seen.add(name)
            check(schemas[name], name)
            return
        for key in ("anyOf", "allOf", "oneOf"):
            for sub in schema.get(key, []):
                check(sub, where)
        if "items" in schema:
            check(schema["items"], where)
        if schema.get("type") == "object" and "properties" in schema:
            if schema.get("additionalProperties") is not False:
                lenient.append(where)
            for prop in schema["properties"].values():
                check(prop, where)

    bodies = 0
    for operations in spec["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                bodies += 1
                check(content["application/json"]["schema"], "body")
    assert bodies >= 15 and lenient == []
