"""A payment reversal, then settlement with its confirmation and the archive bundle, over HTTP
against a real worker (SQLite and PostgreSQL): the manifest's sha256 of each document is the
sha256 of the bytes the API serves, and the SETTLED loan is read-only."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

from sqlmodel import Session, select

from domain.policy import DEFAULT_POLICY
from loanops.documents import FileSystemDocumentStore
from models.tables import LoanArchive, Payment
from tests.api.test_documents import PNG, upload
from tests.conftest import System
from tests.workflows.driving import confirm_settlement, decide, drive_to, pay, pay_off
from tests.workflows.test_timers import eventually, open_task, stage_of


async def test_reversal_then_settlement_confirmed_and_archived(system: System) -> None:
    app_no = await drive_to(system, "SERVICING")
    r = await upload(system, app_no, PNG, filename="还款凭证.png", kind="other")
    assert r.status_code == 201, r.text

    # A payment bounces: ops asks, ops2 approves; the ledger no longer counts it.
    loan = (await system.call("GET", f"/api/v1/loans/{app_no}", user="ops")).json()
    first = loan["installments"][0]
    paid = await pay(system, app_no, first["outstanding"], "installments", f"b-{app_no}")
    assert paid.status_code == 201, paid.text
    payment_id = paid.json()["payment_id"]
    url = f"/api/v1/loans/{app_no}/payments/{payment_id}/reversal"
    assert (await system.call("POST", url, user="ops", json={})).status_code == 422
    asked = await system.call("POST", url, user="ops", json={"reason": "银行退票"})
    assert asked.status_code == 202, asked.text
    again = await system.call("POST", url, user="ops", json={"reason": "银行退票"})
    assert again.status_code == 200 and again.json()["task_id"] == asked.json()["task_id"]
    await decide(system, "ops2", app_no, "payment_reversal", "approve", comment="已核实退票")

    def reversed_() -> Payment | None:
        with Session(system.engine) as s:
            row = s.exec(select(Payment).where(Payment.external_ref == f"b-{app_no}")).one()
            return row if row.reversed_at is not None else None

    row = await eventually(reversed_, "the payment reversed")
    assert (row.reversal_requested_by, row.reversed_by) == ("ops", "ops2")
    twice = await system.call("POST", url, user="ops", json={"reason": "again"})
    assert twice.status_code == 409 and "already reversed" in twice.json()["detail"]
    loan = (await system.call("GET", f"/api/v1/loans/{app_no}", user="ops")).json()
    assert loan["installments"][0]["status"] != "paid"

    # Paid off: the loan waits for the confirmation, whose task shows the ledger's totals.
    await system.env.sleep(timedelta(days=2))
    done = await pay_off(system, app_no, f"off-{app_no}")
    assert done.status_code == 201, done.text
    assert done.json()["stage"] == "SERVICING"
    task = await eventually(
        lambda: open_task(system, app_no, "settlement_confirmation"), "confirmation task"
    )
    assert task.context is not None
    assert task.context["outstanding"] == "0.00" and task.context["reversal_pending"] is False
    assert Decimal(task.context["principal_paid"]) == Decimal(loan["terms"]["principal"])
    no_archive = await system.call("GET", f"/api/v1/loans/{app_no}/archive", user="ops")
    assert no_archive.status_code == 404
    await confirm_settlement(system, app_no)
    await eventually(lambda: stage_of(system, app_no) == "SETTLED", "SETTLED")

    r = await system.call("GET", f"/api/v1/loans/{app_no}/archive", user="auditor")
    assert r.status_code == 200, r.text
    archive = r.json()
    assert archive["intact"] is True
    settled_on = archive["settled_on"]
    years = DEFAULT_POLICY.archive_retention_years
    assert archive["retain_until"] == f"{int(settled_on[:4]) + years}{settled_on[4:]}"
    docs = archive["documents"]
    kinds = {d["kind"] for d in docs}
    assert {"contract", "settlement_certificate", "other"} <= kinds
    assert archive["document_count"] == len(docs)
    for d in docs:
        got = await system.call(
            "GET", f"/api/v1/applications/{app_no}/documents/{d['document_id']}", user="ops"
        )
        assert got.status_code == 200, got.text
        assert d["sha256"] == hashlib.sha256(got.content).hexdigest() == d["recorded_sha256"]
        assert d["size"] == len(got.content) and d["verified"] is True

    # The bundle: the same files and manifest, its sha256 as recorded.
    with Session(system.engine) as s:
        row_ = s.get(LoanArchive, app_no)
        assert row_ is not None
        key = row_.bundle_key
    bundle = FileSystemDocumentStore(system.settings.document_dir).get(key)
    assert hashlib.sha256(bundle).hexdigest() == archive["bundle_sha256"]
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        manifest = json.loads(z.read("manifest.json"))
        assert [m["sha256"] for m in manifest["documents"]] == [d["sha256"] for d in docs]
        for d in docs:
            assert hashlib.sha256(z.read(d["archived_as"])).hexdigest() == d["sha256"]

    # SETTLED and read-only: each refusal says why.
    refused = [
        await pay(system, app_no, "100.00", "installments", f"late-{app_no}"),
        await upload(system, app_no, PNG, filename="late.png", kind="other"),
        await system.call(
            "POST", f"/api/v1/loans/{app_no}/withdraw", user="officer", json={"reason": "x"}
        ),
        await system.call(
            "POST",
            f"/api/v1/loans/{app_no}/payments/{done.json()['payment_id']}/reversal",
            user="ops",
            json={"reason": "too late"},
        ),
    ]
    for r in refused:
        assert r.status_code == 409, r.text
        assert "SETTLED and archived (read-only)" in r.json()["detail"]
    # Customer service does not read the archive.
    cs = await system.call("GET", f"/api/v1/loans/{app_no}/archive", user="cs")
    assert cs.status_code == 403
