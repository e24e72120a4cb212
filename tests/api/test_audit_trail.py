"""The audit trail records who claimed and released a task, and every failed signing attempt and
the lock it leads to, with no secret in the detail; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlmodel import col

from models.tables import AuditEvent
from tests.api.helpers import (
    contract_row,
    mint_demo_tokens,
    new_loan,
    request_code,
    rows,
    sign_path,
    signature,
)
from tests.conftest import System


@pytest.fixture(autouse=True)
def _demo_logins(system: System) -> None:
    mint_demo_tokens(system)


def _assignee(task_id: str, before: str | None, after: str | None) -> dict[str, object]:
    """The detail of a claim or release: the task, and its assignee before and after."""
    return {"task_id": task_id, "before": {"assignee": before}, "after": {"assignee": after}}


def _events(system: System, application_no: str, *suffixes: str) -> list[AuditEvent]:
    """The application's audit rows whose action ends in one of ``suffixes``, oldest first."""
    found = rows(system, AuditEvent, AuditEvent.application_no == application_no)
    found.sort(key=lambda e: (e.occurred_at, e.recorded_at))
    return [e for e in found if e.action.endswith(suffixes)]


async def test_claims_and_unclaims_leave_audit_rows(system: System) -> None:
    application_no, view = await new_loan(system)
    task_id = view["pending_task"]["id"]
    url = f"/api/v1/tasks/{task_id}"

    for user, step, status in (
        ("ops", "claim", 200),
        ("ops", "claim", 200),  # already theirs: nothing changes, nothing recorded
        ("ops2", "claim", 409),
        ("ops2", "unclaim", 409),
        ("risk", "claim", 403),
        ("ops", "unclaim", 200),
        ("ops", "unclaim", 409),  # no longer claimed
        ("ops2", "claim", 200),
    ):
        r = await system.call("POST", f"{url}/{step}", user=user)
        assert r.status_code == status, (user, step, r.text)

    events = _events(system, application_no, ".claimed", ".unclaimed")
    assert [(e.action, e.actor, e.detail) for e in events] == [
        ("intake_review.claimed", "ops", _assignee(task_id, None, "ops")),
        ("intake_review.unclaimed", "ops", _assignee(task_id, "ops", None)),
        ("intake_review.claimed", "ops2", _assignee(task_id, None, "ops2")),
    ]
    r = await system.call("GET", f"/api/v1/loans/{application_no}/timeline", user="auditor")
    actions = [e["action"] for e in r.json()["entries"]]
    assert actions.count("intake_review.claimed") == 2
    assert actions.count("intake_review.unclaimed") == 1


async def test_failed_signing_attempts_and_the_lock_leave_audit_rows(system: System) -> None:
    application_no, _ = await new_loan(system, "CONTRACT_SIGNING")
    path = await sign_path(system, application_no)
    token = path.rsplit("/", 1)[1]
    document_id = str(contract_row(system, application_no).id)
    code = await request_code(system, application_no)

    # Refusals that are not identity failures are not counted, nor audited.
    r = await system.call("POST", path, json=signature(code, confirmed=["cost"]))
    assert r.status_code == 422
    assert _events(system, application_no, ".sign_failed", ".signing_locked") == []

    # With the right code (an identity failure does not use it up), the wrong name or ID.
    wrong = [
        (signature(code, id_last4="0000"), ["id_last4"]),
        (signature(code, signer_name="李四"), ["signer_name"]),
        (signature(code, signer_name="李四", id_last4="0000"), ["signer_name", "id_last4"]),
        (signature(code, id_last4="1111"), ["id_last4"]),
    ]
    for body, _ in wrong:
        r = await system.call("POST", path, json=body)
        assert r.status_code == 422, r.text
    assert _events(system, application_no, ".signing_locked") == []

    r = await system.call("POST", path, json=signature(code, signer_name="王五"))
    assert r.status_code == 422, r.text
    wrong.append((signature(code, signer_name="王五"), ["signer_name"]))
    r = await system.call("POST", path, json=signature(code))
    assert r.status_code == 423  # locked: refused before any identity check, so no new row

    failed = _events(system, application_no, ".sign_failed")
    assert [(e.action, e.actor) for e in failed] == [("contract.sign_failed", "borrower")] * 5
    assert [e.detail for e in failed] == [
        {
            "document_id": document_id,
            "failures": n,
            "mismatched": mismatched,
            "client_address": "127.0.0.1",
        }
        for n, (_, mismatched) in enumerate(wrong, start=1)
    ]
    (locked,) = _events(system, application_no, ".signing_locked")
    assert (locked.action, locked.actor) == ("contract.signing_locked", "borrower")
    assert locked.detail == {"document_id": document_id, "failures": 5}
    assert locked.occurred_at == failed[-1].occurred_at

    # Nothing of the link's token, nor what the caller typed, is in any audit row.
    secret_part = token.split(".", 1)[1]
    for event in rows(system, AuditEvent, col(AuditEvent.application_no) == application_no):
        dumped = json.dumps(event.detail, ensure_ascii=False) + event.event_key
        assert token not in dumped and secret_part not in dumped, event.action
        assert "李四" not in dumped and "王五" not in dumped, event.action
        assert code not in dumped, event.action  # nor the one-time code
