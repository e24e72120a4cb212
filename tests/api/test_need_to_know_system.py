"""Need to know on a real loan (API, worker, Temporal): a second business officer can neither
see, nor accept the offer of, nor withdraw another officer's application — each answered as a
missing one, and the loan goes on untouched; its own officer then accepts."""

from __future__ import annotations

from sqlmodel import Session

from loanops.security import create_access_token, hash_password
from models.tables import User
from tests.api.helpers import loan_view, new_loan
from tests.conftest import System


async def test_a_second_officer_cannot_touch_another_officers_loan(sqlite_system: System) -> None:
    system = sqlite_system
    no, _ = await new_loan(system, until="OFFER_CONFIRMATION")
    with Session(system.engine) as s:
        s.add(
            User(
                username="officer2",
                full_name="钱业务",
                roles=["business_officer"],
                password_hash=hash_password("another officer's passphrase"),
            )
        )
        s.commit()
    system.tokens["officer2"] = create_access_token(
        subject="officer2",
        roles=["business_officer"],
        secret=system.settings.secret_key,
        minutes=15,
    )
    offer = await system.call(
        "GET", f"/api/v1/tasks?kind=offer_confirmation&application_no={no}", user="officer"
    )
    (task,) = offer.json()["items"]

    r = await system.call("GET", f"/api/v1/loans/{no}", user="officer2")
    assert r.status_code == 404 and r.json()["detail"] == f"application {no} does not exist"
    listed = await system.call("GET", "/api/v1/tasks", user="officer2")
    assert listed.json()["items"] == []
    r = await system.call(
        "POST", f"/api/v1/tasks/{task['id']}/decision", user="officer2", json={"decision": "accept"}
    )
    assert r.status_code == 404, r.text
    r = await system.call(
        "POST", f"/api/v1/loans/{no}/withdraw", user="officer2", json={"reason": "not mine"}
    )
    assert r.status_code == 404, r.text
    assert (await loan_view(system, no))["stage"] == "OFFER_CONFIRMATION"

    r = await system.call(
        "POST", f"/api/v1/tasks/{task['id']}/decision", user="officer", json={"decision": "accept"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] != "OFFER_CONFIRMATION"
