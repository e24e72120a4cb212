"""Money and records under concurrency (issue 12): a bank reference is one movement of money
across ALL loans, identical concurrent posts answer one 201 and duplicates, claims are atomic.
Against the real API, worker and Temporal test server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from api.routes.loans import payment_ceiling
from domain.signing import CODE_MAX_TRIES
from models.tables import Application, AuditEvent, Payment, PaymentRef, SigningCode
from tests.api.helpers import (
    application_body,
    assert_422_names,
    drive,
    loan_view,
    mint_demo_tokens,
    new_loan,
    request_code,
    rows,
    sign_path,
    signature,
    submit,
    task_row,
)
from tests.conftest import System
from tests.workflows.driving import MATCH_DATA, drive_to


@pytest.fixture(autouse=True)
def _demo_logins(system: System) -> None:
    mint_demo_tokens(system)


def _at_once(
    system: System, calls: list[tuple[str, str, str, dict[str, Any]]]
) -> list[httpx.Response]:
    """Each (method, url, user, json) from its own thread and HTTP connection, released together."""
    barrier = threading.Barrier(len(calls))
    base = str(system.http.base_url)

    def one(method: str, url: str, user: str, body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=base, timeout=60) as http:
            headers = system.auth(user) if user else {}
            barrier.wait()
            return http.request(method, url, headers=headers, json=body)

    out: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        out[i] = one(*calls[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


async def _concurrently(
    system: System, fn: Callable[[], list[httpx.Response]]
) -> list[httpx.Response]:
    await system.server_clock.sync(system.env)
    result: list[httpx.Response] = await asyncio.to_thread(fn)
    return result


def _paid(view: dict[str, Any]) -> Decimal:
    return sum((Decimal(i["paid"]) for i in view["installments"]), Decimal("0"))


async def test_one_reference_posted_to_two_loans_at_once_books_once(system: System) -> None:
    first, second = await submit(system), await submit(system)
    await asyncio.gather(
        drive(system, first, "SERVICING", MATCH_DATA),
        drive(system, second, "SERVICING", MATCH_DATA),
    )
    now = (await system.env.get_current_time()).isoformat()
    body = {"amount": "100.00", "paid_at": now, "external_ref": "bank-shared-1"}
    answers = await _concurrently(
        system,
        lambda: _at_once(
            system,
            [
                ("POST", f"/api/v1/loans/{first}/payments", "ops", body),
                ("POST", f"/api/v1/loans/{second}/payments", "ops2", body),
            ],
        ),
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409], [r.text for r in answers]
    won = next(r for r in answers if r.status_code == 201)
    lost = next(r for r in answers if r.status_code == 409)
    winner = first if f"/loans/{first}/" in str(won.request.url) else second
    loser = second if winner == first else first
    assert f"loan {winner}" in lost.json()["detail"]

    # One payment row, one claim, and only the winner's ledger booked the money.
    (payment,) = rows(system, Payment, Payment.external_ref == "bank-shared-1")
    assert payment.application_no == winner
    assert [c.application_no for c in rows(system, PaymentRef)] == [winner]
    assert _paid(await loan_view(system, winner)) == Decimal("100.00")
    assert _paid(await loan_view(system, loser)) == Decimal("0")

    # Later: the loser again → 409 naming the winner; the winner again → 200, the first answer.
    r = await system.call("POST", f"/api/v1/loans/{loser}/payments", user="ops", json=body)
    assert r.status_code == 409 and f"loan {winner}" in r.json()["detail"]
    r = await system.call("POST", f"/api/v1/loans/{winner}/payments", user="ops", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is True
    assert r.json()["allocation"] == won.json()["allocation"]
    assert _paid(await loan_view(system, loser)) == Decimal("0")

    # Twenty identical posts to one loan at once: one 201, nineteen 200 with duplicate: true.
    body = {"amount": "50.00", "paid_at": now, "external_ref": "bank-retry-20"}
    answers = await _concurrently(
        system,
        lambda: _at_once(system, [("POST", f"/api/v1/loans/{winner}/payments", "ops", body)] * 20),
    )
    assert sorted(r.status_code for r in answers) == [200] * 19 + [201], [r.text for r in answers]
    assert [r.json()["duplicate"] for r in answers if r.status_code == 201] == [False]
    assert all(r.json()["duplicate"] for r in answers if r.status_code == 200)
    assert len({str(r.json()["allocation"]) for r in answers}) == 1
    assert len(rows(system, Payment, Payment.external_ref == "bank-retry-20")) == 1
    assert _paid(await loan_view(system, winner)) == Decimal("150.00")


async def test_a_refused_payment_frees_its_reference(system: System) -> None:
    """The loan refuses the payment (nothing booked): the reference may then go to another."""
    first = await drive_to(system, "SERVICING")
    now = (await system.env.get_current_time()).isoformat()
    url = f"/api/v1/loans/{first}/payments"
    r = await system.call(
        "POST",
        url,
        user="ops",
        json={"amount": "100.00", "paid_at": now, "external_ref": "r-1", "mode": "payoff"},
    )
    assert r.status_code == 422, r.text  # a payoff must pay the payoff figure exactly
    assert rows(system, PaymentRef, PaymentRef.external_ref == "r-1") == []
    r = await system.call(
        "POST", url, user="ops", json={"amount": "100.00", "paid_at": now, "external_ref": "r-1"}
    )
    assert r.status_code == 201, r.text


# ---- atomic claims and counters --------------------------------------------------------------


async def test_of_two_concurrent_claims_exactly_one_wins(system: System) -> None:
    application_no, view = await new_loan(system, "INTAKE_REVIEW")
    task_id = view["pending_task"]["id"]
    claim = f"/api/v1/tasks/{task_id}/claim"
    for _ in range(5):
        answers = await _concurrently(
            system,
            lambda: _at_once(system, [("POST", claim, "ops", {}), ("POST", claim, "ops2", {})]),
        )
        assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
        won = next(r for r in answers if r.status_code == 200)
        lost = next(r for r in answers if r.status_code == 409)
        holder = won.json()["assignee"]
        assert task_row(system, task_id).assignee == holder
        assert lost.json()["detail"] == f"claimed by {holder}"
        r = await system.call("POST", f"/api/v1/tasks/{task_id}/unclaim", user=holder)
        assert r.status_code == 200, r.text
    claims = rows(
        system,
        AuditEvent,
        AuditEvent.application_no == application_no,
        AuditEvent.action == "intake_review.claimed",
    )
    assert len(claims) == 5


async def test_concurrent_wrong_codes_lock_the_code_after_five(system: System) -> None:
    application_no, _ = await new_loan(system, "CONTRACT_SIGNING")
    path = await sign_path(system, application_no)
    code = await request_code(system, application_no)
    wrong = "000000" if code != "000000" else "111111"
    answers = await _concurrently(
        system, lambda: _at_once(system, [("POST", path, "", signature(wrong))] * 12)
    )
    assert [r.status_code for r in answers] == [422] * 12, [r.text for r in answers]
    texts = [r.json()["detail"][0]["msg"] for r in answers]
    compared = [t for t in texts if t.startswith("wrong code")]
    assert len(compared) == CODE_MAX_TRIES, texts
    assert sum("it is now locked" in t for t in compared) == 1
    (row,) = rows(system, SigningCode, SigningCode.application_no == application_no)
    assert (row.tries, row.status) == (CODE_MAX_TRIES, "locked")
    # The right code, now, is refused too: the code is locked.
    r = await system.call("POST", path, json=signature(code))
    assert r.status_code == 422 and "locked" in r.text
    assert (await loan_view(system, application_no))["stage"] == "CONTRACT_SIGNING"


async def test_a_payment_above_what_the_loan_could_owe_is_refused_naming_the_figure(
    system: System,
) -> None:
    application_no = await drive_to(system, "SERVICING")
    now = (await system.env.get_current_time()).isoformat()
    url = f"/api/v1/loans/{application_no}/payments"
    huge = {"amount": "999999999999.99", "paid_at": now, "external_ref": "huge-1"}
    r = await system.call("POST", url, user="ops", json=huge)
    assert_422_names(r, "amount")
    owed, margin = payment_ceiling_of(system, application_no)
    assert f"¥{owed + margin:.2f}" in r.text and f"¥{owed:.2f}" in r.text
    r = await system.call("POST", url, user="ops", json={**huge, "amount": "１００.00"})
    assert_422_names(r, "amount")
    assert rows(system, Payment) == [] and rows(system, PaymentRef) == []
    # Up to the margin above what is owed is still a payment (the excess is credit).
    r = await system.call("POST", url, user="ops", json={**huge, "amount": f"{owed + margin:.2f}"})
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["credit"]) == margin


def payment_ceiling_of(system: System, application_no: str) -> tuple[Decimal, Decimal]:
    with Session(system.engine) as s:
        bound = payment_ceiling(s, application_no)
    assert bound is not None
    return bound


async def test_concurrent_first_applications_of_one_borrower_never_answer_5xx(
    system: System,
) -> None:
    """Ten first applications for a borrower not yet on record, at once: each is recorded or
    told to retry (409), none is a 500."""
    answers = await _concurrently(
        system,
        lambda: _at_once(
            system, [("POST", "/api/v1/applications", "officer", application_body())] * 10
        ),
    )
    codes = [r.status_code for r in answers]
    assert all(c in (201, 409) for c in codes), [r.text for r in answers]
    assert codes.count(201) >= 1
    assert len(rows(system, Application)) == codes.count(201)
