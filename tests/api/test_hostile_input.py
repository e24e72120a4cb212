"""Hostile or mistaken input (issue 12): a NUL byte anywhere, non-ASCII digits in figures, huge
page offsets and oversized decision data are each a 422 naming the field, and nothing changes —
on SQLite and on PostgreSQL (where a NUL byte was a 500)."""

from __future__ import annotations

import pytest

from api.schemas import MAX_DECISION_DATA_BYTES
from models.tables import Application
from tests.api.helpers import (
    application_body,
    assert_422_names,
    count,
    mint_demo_tokens,
    new_loan,
    task_row,
)
from tests.conftest import DEMO_PASSWORD, System


@pytest.fixture(autouse=True)
def _demo_logins(system: System) -> None:
    mint_demo_tokens(system)


async def test_nul_bytes_are_refused_naming_the_field(system: System) -> None:
    r = await system.call(
        "POST", "/api/v1/auth/token", data={"username": "man\x00ager", "password": DEMO_PASSWORD}
    )
    assert_422_names(r, "username")
    body = application_body()
    body["borrower"] = {**body["borrower"], "name": "张\x00三"}
    r = await system.call("POST", "/api/v1/applications", user="officer", json=body)
    assert_422_names(r, "borrower.name")
    r = await system.call(
        "POST",
        "/api/v1/applications",
        user="officer",
        json={**application_body(), "purpose": "a\x00"},
    )
    assert_422_names(r, "purpose")
    r = await system.call("GET", "/api/v1/loans/A2026%00X", user="manager")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path"], r.text
    r = await system.call("GET", "/api/v1/tasks", user="ops", params={"status": "open\x00"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "status"], r.text
    assert count(system, Application) == 0


async def test_figures_in_non_ascii_digits_and_huge_offsets_are_refused(system: System) -> None:
    r = await system.call(
        "POST",
        "/api/v1/applications",
        user="officer",
        json=application_body(amount="５００００.00"),
    )
    assert_422_names(r, "amount")
    assert count(system, Application) == 0
    for url in ("/api/v1/loans", "/api/v1/tasks"):
        r = await system.call("GET", url, user="manager", params={"offset": str(2**63)})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["query", "offset"]


async def test_oversized_decision_data_is_refused_and_the_task_stays_open(system: System) -> None:
    _, view = await new_loan(system, "INTAKE_REVIEW")
    task_id = view["pending_task"]["id"]
    url = f"/api/v1/tasks/{task_id}/decision"
    big = {"note": "x" * (MAX_DECISION_DATA_BYTES + 1)}
    r = await system.call("POST", url, user="ops", json={"decision": "approve", "data": big})
    assert_422_names(r, "data")
    assert str(MAX_DECISION_DATA_BYTES) in r.text
    deep: dict[str, object] = {}
    node = deep
    for _ in range(10):
        node["k"] = {}
        node = node["k"]  # type: ignore[assignment]
    r = await system.call("POST", url, user="ops", json={"decision": "approve", "data": deep})
    assert_422_names(r, "data")
    row = task_row(system, task_id)
    assert (row.status, row.decided_by) == ("open", None)


async def test_decision_data_is_typed_per_kind_and_the_task_stays_open(system: System) -> None:
    """Data a decision does not take, or a key its kind's shape does not name, is a 422 naming
    it before anything is written; the shapes are listed for clients to build the forms."""
    _, view = await new_loan(system, "INTAKE_REVIEW")
    task_id = view["pending_task"]["id"]
    url = f"/api/v1/tasks/{task_id}/decision"
    r = await system.call("POST", url, user="ops", json={"decision": "approve", "data": {"a": 1}})
    assert_422_names(r, "data")
    assert r.json()["detail"][0]["msg"] == "intake_review approve takes no data"
    r = await system.call(
        "POST",
        url,
        user="ops",
        json={"decision": "return", "data": {"items": ["income_proof"], "colour": "red"}},
    )
    assert_422_names(r, "data.colour")
    assert r.json()["detail"][0]["msg"] == "is not a field of intake_review return"
    row = task_row(system, task_id)
    assert (row.status, row.decided_by) == ("open", None)

    r = await system.call("GET", "/api/v1/tasks/kinds", user="auditor")
    assert r.status_code == 200, r.text
    kinds = {k["kind"]: k for k in r.json()["items"]}
    intake = {d["decision"]: d["data_schema"] for d in kinds["intake_review"]["decisions"]}
    assert intake["approve"] is None
    assert intake["return"]["additionalProperties"] is False
    assert set(intake["return"]["properties"]) == {"items"}
    risk = {d["decision"]: d["data_schema"] for d in kinds["risk_review"]["decisions"]}
    assert risk["reject"]["required"] == ["reason_codes"]
