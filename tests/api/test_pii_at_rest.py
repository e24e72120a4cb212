"""The whole system after the demo loan (issue 11 §3): the raw database rows hold none of the
borrower's identifiers, the identity number still finds the borrower, and a full reveal is
audited (who, which fields, never the values) while a masked view is not."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import Session, select

from domain.audit_actions import PII_REVEALED
from loanops.demo import DEMO_BORROWER
from models.tables import AuditEvent, borrower_by_id_number
from tests.conftest import System
from tests.test_pii import _raw_dump, leaks

IDENTIFIERS = {k: str(DEMO_BORROWER[k]) for k in ("name", "id_number", "phone", "bank_card")}


def _reveals(system: System) -> list[AuditEvent]:
    with Session(system.engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == PII_REVEALED)).all())


async def test_the_demo_loan_leaves_no_identifier_in_the_rows_and_reveals_are_audited(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app_no = await system.run_demo()
    dump = _raw_dump(system.engine)
    assert leaks(dump, list(IDENTIFIERS.values())) == []
    # Nor do the logs of the API, the worker, the relay and the SDKs (this process holds them
    # all), except the test's own reads of the sandbox handset, which stand in for the phone.
    logged = "\n".join(
        r.getMessage() for r in caplog.records if "/v1/messages?to=" not in r.getMessage()
    )
    assert len(caplog.records) > 50  # the capture saw the run (requests, activities, relay)
    assert leaks(logged.encode(), list(IDENTIFIERS.values())) == []
    with Session(system.engine) as s:
        found = borrower_by_id_number(s, IDENTIFIERS["id_number"])
        assert found is not None and found.name == IDENTIFIERS["name"]

    before = len(_reveals(system))
    masked = await system.call("GET", f"/api/v1/applications/{app_no}", user="cs")
    assert masked.status_code == 200, masked.text
    assert masked.json()["applicant"]["phone"] != IDENTIFIERS["phone"]
    assert len(_reveals(system)) == before  # a masked view reveals nothing

    full = await system.call("GET", f"/api/v1/applications/{app_no}", user="ops")
    assert full.status_code == 200, full.text
    assert full.json()["applicant"]["id_number"] == IDENTIFIERS["id_number"]
    (event,) = _reveals(system)[before:]
    assert event.actor == "ops" and event.application_no == app_no
    assert event.detail == {
        "object": f"application/{app_no}/applicant",
        "fields": ["bank_card", "id_number", "name", "phone"],
    }
    assert not [v for v in IDENTIFIERS.values() if v in repr(event.detail)]
