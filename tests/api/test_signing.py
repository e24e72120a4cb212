"""The borrower's e-signature over HTTP with a real worker and real PDFs: the link reaches the
borrower by SMS only, a one-time code proves the signer holds the phone, every disclosure is
confirmed, the signed PDF carries the signing record as its last page, and the lender's seal
comes before the money."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

from pypdf import PdfReader
from sqlmodel import Session, col

from activities.contracts import ContractActivities
from activities.rendering import Lender
from domain.notices import REDACTED
from domain.signing import CODE_MAX_TRIES
from models.shapes import SignatureInput
from models.tables import AuditEvent, ContractSignature, Document, Notice, SigningCode
from tests.api.helpers import (
    DISCLOSURE_IDS,
    assert_422_names,
    contract_row,
    count,
    latest_signing_code,
    loan_view,
    new_loan,
    request_code,
    rows,
    sign_path,
    signature,
    signing_link,
)
from tests.conftest import System
from tests.workflows.test_timers import eventually, stage_of

LENDER = Lender("示范小额贷款有限公司", "91310000MA1EXAMPLE", "上海市示例路 8 号", "400-123-4567")


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _events(system: System, application_no: str, action: str) -> list[AuditEvent]:
    return rows(
        system, AuditEvent, AuditEvent.application_no == application_no, AuditEvent.action == action
    )


def _codes(system: System, application_no: str) -> list[SigningCode]:
    found = rows(system, SigningCode, SigningCode.application_no == application_no)
    return sorted(found, key=lambda c: c.issued_at)


async def _sign_ready(system: System) -> tuple[str, str]:
    application_no, _ = await new_loan(system, "CONTRACT_SIGNING")
    return application_no, await sign_path(system, application_no)


# ---- the link goes to the borrower only ----------------------------------------------------


async def test_the_link_is_sent_by_sms_and_no_staff_response_shows_it(system: System) -> None:
    application_no, path = await _sign_ready(system)
    token = path.rsplit("/", 1)[1]
    mac = token.split(".", 1)[1]
    (link,) = rows(
        system,
        Notice,
        Notice.application_no == application_no,
        Notice.template == "contract_signing_link",
    )
    assert (link.channel, link.recipient) == ("sms", "borrower")
    # The borrower's phone got the link (read from the sandbox gateway's handset); the outbox
    # forgot it once the gateway took it.
    received = await signing_link(system, application_no)
    assert received.rsplit("/", 1)[1] == token
    assert set(link.payload) == {"url", "contract_no", "sign_by"}
    assert set(link.payload.values()) == {REDACTED}
    code = await request_code(system, application_no)

    view = await loan_view(system, application_no)
    assert "signing_url" not in view
    assert view["signing"]["link_sent_at"] is not None
    assert view["signing"]["link_status"] in {"sent", "delivered"}  # through the gateway
    assert view["signing"]["signed_at"] is None

    task_kinds = ["", "?status=completed", "?kind=lender_seal"]
    for user in ("officer", "ops", "ops2", "risk", "product", "cs", "manager", "auditor"):
        responses = [
            await system.call("GET", f"/api/v1/loans/{application_no}", user=user),
            await system.call("GET", "/api/v1/loans", user=user),
            await system.call("GET", f"/api/v1/loans/{application_no}/timeline", user=user),
            await system.call("GET", f"/api/v1/applications/{application_no}", user=user),
            await system.call("GET", f"/api/v1/applications/{application_no}/documents", user=user),
            *[await system.call("GET", f"/api/v1/tasks{q}", user=user) for q in task_kinds],
        ]
        for r in responses:
            assert r.status_code == 200, (user, r.url, r.text)
            assert mac not in r.text and token not in r.text, (user, r.url)
            assert "/api/v1/sign/" not in r.text, (user, r.url)
            assert f'"{code}"' not in r.text, (user, r.url)


# ---- codes ---------------------------------------------------------------------------------


async def test_signing_needs_the_code_and_every_disclosure(system: System) -> None:
    application_no, path = await _sign_ready(system)

    info = (await system.call("GET", path)).json()
    assert [d["id"] for d in info["disclosures"]] == DISCLOSURE_IDS
    assert all(d["text"] and d["text_en"] for d in info["disclosures"])
    assert info["signed"] is False and info["superseded"] is False

    # The name and ID digits (printed on the PDF the link serves) never sign alone.
    alone = signature()
    del alone["code"]
    assert_422_names(await system.call("POST", path, json=alone), "code")
    r = await system.call("POST", path, json=signature("123456"))
    assert_422_names(r, "code")
    assert "request a code first" in r.text

    r = await system.call("POST", f"{path}/code")
    assert r.status_code == 202, r.text
    sent = r.json()
    assert sent["sent_to"] == "138****8000"
    assert sent["max_tries"] == CODE_MAX_TRIES
    expires = datetime.fromisoformat(sent["expires_at"])
    assert expires - datetime.fromisoformat(sent["issued_at"]) == timedelta(minutes=5)
    code = await latest_signing_code(system, application_no)
    assert re.fullmatch(r"\d{6}", code)
    (notice,) = rows(
        system, Notice, Notice.application_no == application_no, Notice.template == "signing_code"
    )
    # The code reached the phone; the outbox row keeps only what was sent, not the code.
    assert (notice.channel, notice.recipient, notice.payload) == (
        "sms",
        "borrower",
        {"code": REDACTED, "minutes": REDACTED},
    )
    (stored,) = _codes(system, application_no)
    assert code not in stored.code_hash and len(stored.code_hash) == 64

    # Each disclosure must be confirmed: a missing one is named.
    r = await system.call(
        "POST", path, json=signature(code, confirmed=[i for i in DISCLOSURE_IDS if i != "penalty"])
    )
    assert_422_names(r, "confirmed.penalty")
    r = await system.call("POST", path, json=signature(code, confirmed=[*DISCLOSURE_IDS, "x"]))
    assert_422_names(r, "confirmed")
    # A wrong code counts a try and says how many are left.
    r = await system.call("POST", path, json=signature(_wrong(code)))
    assert_422_names(r, "code")
    assert f"{CODE_MAX_TRIES - 1} tries left" in r.text
    assert _codes(system, application_no)[0].tries == 1
    doc = contract_row(system, application_no)
    assert doc.signed_at is None and doc.sign_failures == 0
    assert (await loan_view(system, application_no))["stage"] == "CONTRACT_SIGNING"

    r = await system.call("POST", path, json=signature(code))
    assert r.status_code == 200, r.text
    # Signed by the borrower; the contract waits for the lender's seal.
    assert r.json()["stage"] == "CONTRACT_SIGNING"
    signed_at = contract_row(system, application_no).signed_at
    assert signed_at is not None
    assert _codes(system, application_no)[0].status == "used"

    r = await system.call("POST", path, json=signature(code))
    assert r.status_code == 409
    assert contract_row(system, application_no).signed_at == signed_at
    r = await system.call("POST", f"{path}/code")
    assert r.status_code == 409  # no code for a signed contract


async def test_five_wrong_codes_lock_the_code_and_a_new_one_is_rate_limited(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    application_no, path = await _sign_ready(system)
    code = await request_code(system, application_no)
    for attempt in range(1, CODE_MAX_TRIES):
        r = await system.call("POST", path, json=signature(_wrong(code)))
        assert_422_names(r, "code")
        assert f"{CODE_MAX_TRIES - attempt} tr" in r.text
    r = await system.call("POST", path, json=signature(_wrong(code)))
    assert_422_names(r, "code")
    assert "locked" in r.text
    # The right code no longer works: a new one is needed.
    r = await system.call("POST", path, json=signature(code))
    assert_422_names(r, "code")
    assert "locked" in r.text
    assert contract_row(system, application_no).signed_at is None
    (locked,) = _codes(system, application_no)
    assert (locked.status, locked.tries) == ("locked", CODE_MAX_TRIES)
    assert len(_events(system, application_no, "contract.code_failed")) == CODE_MAX_TRIES - 1
    assert len(_events(system, application_no, "contract.code_locked")) == 1

    # One code a minute.
    r = await system.call("POST", f"{path}/code")
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) <= 60
    assert len(_codes(system, application_no)) == 1
    await system.env.sleep(timedelta(seconds=61))
    fresh = await request_code(system, application_no)
    r = await system.call("POST", path, json=signature(fresh))
    assert r.status_code == 200, r.text
    assert contract_row(system, application_no).signed_at is not None


async def test_an_expired_code_is_refused(sqlite_system: System) -> None:
    system = sqlite_system
    application_no, path = await _sign_ready(system)
    first = await request_code(system, application_no)
    await system.env.sleep(timedelta(seconds=61))
    code = await request_code(system, application_no)
    # A new code replaces the one before.
    r = await system.call("POST", path, json=signature(first))
    assert_422_names(r, "code")
    await system.env.sleep(timedelta(minutes=5, seconds=1))
    r = await system.call("POST", path, json=signature(code))
    assert_422_names(r, "code")
    assert "expired" in r.text
    assert contract_row(system, application_no).signed_at is None
    assert [c.status for c in _codes(system, application_no)] == ["replaced", "active"]


async def test_five_failed_identity_attempts_lock_the_link(system: System) -> None:
    application_no, path = await _sign_ready(system)
    code = await request_code(system, application_no)
    for attempt in range(5):
        wrong = (
            signature(code, signer_name="李四") if attempt % 2 else signature(code, id_last4="0000")
        )
        r = await system.call("POST", path, json=wrong)
        assert r.status_code == 422, (attempt, r.text)
    r = await system.call("POST", path, json=signature(code))
    assert r.status_code == 423
    assert (await system.call("POST", f"{path}/code")).status_code == 423
    doc = contract_row(system, application_no)
    assert doc.signed_at is None and doc.sign_failures == 5
    assert (await loan_view(system, application_no))["stage"] == "CONTRACT_SIGNING"
    assert (await system.call("GET", path)).json()["signed"] is False


async def test_forged_links_are_not_found(sqlite_system: System) -> None:
    system = sqlite_system
    _, path = await _sign_ready(system)
    doc_hex = path.rsplit("/", 1)[1].split(".")[0]
    for forged in (f"{doc_hex}.{'A' * 43}", f"{uuid.uuid4().hex}.{path.rsplit('.', 1)[1]}", "nope"):
        assert (
            await system.call("POST", f"/api/v1/sign/{forged}", json=signature())
        ).status_code == 404
        assert (await system.call("POST", f"/api/v1/sign/{forged}/code")).status_code == 404
        assert (await system.call("GET", f"/api/v1/sign/{forged}")).status_code == 404


# ---- what cannot be signed -----------------------------------------------------------------


async def test_a_contract_changed_after_issue_cannot_be_signed(system: System) -> None:
    application_no, path = await _sign_ready(system)
    code = await request_code(system, application_no)
    original = contract_row(system, application_no)
    assert original.content is not None
    with Session(system.engine) as s:
        doc = s.get(Document, original.id)
        assert doc is not None
        doc.content = original.content.replace(b"%%EOF", b"% changed\n%%EOF")
        s.add(doc)
        s.commit()
    r = await system.call("POST", path, json=signature(code))
    assert r.status_code == 409 and "changed after it was issued" in r.text
    assert (await system.call("POST", f"{path}/code")).status_code == 409
    assert contract_row(system, application_no).signed_at is None
    assert _codes(system, application_no)[0].status == "active"  # not used up

    # The worker refuses it too (the API's check raced): a business refusal, nothing signed.
    activities = ContractActivities(system.engine, lender=LENDER, settings=system.settings)
    try:
        await asyncio.to_thread(
            activities.record_signature,
            SignatureInput(application_no, str(original.id), original.sha256, datetime.now(UTC)),
        )
    except Exception as exc:  # ApplicationError of type BusinessRefusal
        assert getattr(exc, "type", None) == "BusinessRefusal", exc
    else:
        raise AssertionError("a changed contract was signed")
    assert contract_row(system, application_no).signed_at is None
    assert (await loan_view(system, application_no))["stage"] == "CONTRACT_SIGNING"


async def test_a_superseded_contract_cannot_be_signed(sqlite_system: System) -> None:
    system = sqlite_system
    application_no, path = await _sign_ready(system)
    code = await request_code(system, application_no)
    old = contract_row(system, application_no)
    assert old.content is not None
    with Session(system.engine) as s:
        s.add(
            Document(
                id=uuid.uuid4(),
                application_no=application_no,
                kind="contract",
                filename="newer.pdf",
                content_type="application/pdf",
                sha256=hashlib.sha256(old.content + b"v2").hexdigest(),
                content=old.content + b"v2",
                size=len(old.content) + 2,
                created_at=old.created_at + timedelta(minutes=1),
            )
        )
        s.commit()
    assert (await system.call("GET", path)).json()["superseded"] is True
    r = await system.call("POST", path, json=signature(code))
    assert r.status_code == 409 and "superseded" in r.text
    assert (await system.call("POST", f"{path}/code")).status_code == 409
    assert count(system, Document, Document.kind == "contract_signed") == 0
    assert (await loan_view(system, application_no))["stage"] == "CONTRACT_SIGNING"


async def test_a_double_submit_signs_once(system: System) -> None:
    application_no, path = await _sign_ready(system)
    code = await request_code(system, application_no)
    first, second = await asyncio.gather(
        system.call("POST", path, json=signature(code)),
        system.call("POST", path, json=signature(code)),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    assert count(system, Document, Document.application_no == application_no) >= 2
    assert (
        count(
            system,
            Document,
            Document.application_no == application_no,
            Document.kind == "contract_signed",
        )
        == 1
    )
    assert len(_events(system, application_no, "contract.signed")) == 1


# ---- the signed PDF and the seal -----------------------------------------------------------


def _text(page: object) -> str:
    return str(page.extract_text())  # type: ignore[attr-defined]


async def test_the_signed_pdf_ends_with_the_signing_record_and_the_manager_seals(
    system: System,
) -> None:
    application_no, path = await _sign_ready(system)
    code = await request_code(system, application_no)
    unsigned = contract_row(system, application_no)
    assert unsigned.content is not None
    r = await system.call(
        "POST", path, json=signature(code), headers={"User-Agent": "BorrowerPhone/1.0 (test)"}
    )
    assert r.status_code == 200, r.text

    (evidence,) = rows(
        system, ContractSignature, ContractSignature.application_no == application_no
    )
    assert evidence.signed_document_id is not None and evidence.signed_at is not None
    signed = rows(system, Document, Document.id == evidence.signed_document_id)[0]
    assert signed.kind == "contract_signed" and signed.content is not None
    assert signed.sha256 == hashlib.sha256(signed.content).hexdigest() == evidence.signed_sha256
    assert signed.sha256 != unsigned.sha256
    before = PdfReader(io.BytesIO(unsigned.content))
    after = PdfReader(io.BytesIO(signed.content))
    assert len(after.pages) == len(before.pages) + 1
    last = _text(after.pages[-1])
    flat = re.sub(r"\s+", "", last)
    assert f"HT{application_no}" in last
    assert unsigned.sha256 in flat  # the document's sha256 as issued
    assert "127.0.0.1" in last
    assert "BorrowerPhone/1.0(test)" in flat
    assert all(f"[{item}]" in last for item in DISCLOSURE_IDS)
    assert evidence.signed_at.strftime("%Y-%m-%d %H:%M:%S") in last
    assert evidence.code_issued_at.strftime("%Y-%m-%d %H:%M:%S") in last
    assert code not in flat
    assert evidence.confirmed == DISCLOSURE_IDS
    assert evidence.user_agent == "BorrowerPhone/1.0 (test)"

    # Staff read the signed PDF; the loan view shows the signature, not yet in force.
    pdf = await system.call("GET", f"/api/v1/loans/{application_no}/contract.pdf", user="ops")
    assert pdf.headers["X-Content-SHA256"] == signed.sha256
    await _task_opens(system, application_no, "lender_seal", "manager")
    view = await loan_view(system, application_no)
    assert view["signing"]["signed_sha256"] == signed.sha256
    assert view["signing"]["sealed_by"] is None
    assert view["stage"] == "CONTRACT_SIGNING"
    assert view["pending_task"]["kind"] == "lender_seal"
    assert view["pending_task"]["candidate_role"] == "department_manager"
    assert await system.call("GET", "/api/v1/tasks?kind=disbursement", user="ops2") is not None
    assert (await system.call("GET", "/api/v1/tasks?kind=disbursement", user="ops2")).json()[
        "total"
    ] == 0

    # Only the department manager seals; a refusal needs a reason.
    seal = view["pending_task"]["id"]
    r = await system.call(
        "POST", f"/api/v1/tasks/{seal}/decision", user="ops", json={"decision": "seal"}
    )
    assert r.status_code == 403
    r = await system.call(
        "POST", f"/api/v1/tasks/{seal}/decision", user="manager", json={"decision": "refuse"}
    )
    assert_422_names(r, "data.reason")
    r = await system.call(
        "POST", f"/api/v1/tasks/{seal}/decision", user="manager", json={"decision": "seal"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "DISBURSEMENT"
    # The answer comes once the task is closed; the seal on the contract is recorded next.
    await eventually(lambda: stage_of(system, application_no) == "DISBURSEMENT", "DISBURSEMENT")
    (evidence,) = rows(
        system, ContractSignature, ContractSignature.application_no == application_no
    )
    assert evidence.sealed_by == "manager" and evidence.sealed_at is not None
    (sealed,) = _events(system, application_no, "contract.sealed")
    assert sealed.actor == "manager"
    assert sealed.detail["signed_sha256"] == signed.sha256
    await _task_opens(system, application_no, "disbursement", "ops2")
    view = await loan_view(system, application_no)
    assert view["signing"]["sealed_by"] == "manager"
    assert view["pending_task"]["kind"] == "disbursement"


async def _task_opens(system: System, application_no: str, kind: str, user: str) -> None:
    """Once the task of ``kind`` is open (the inbox's long-poll: a decision answers first)."""
    r = await system.call(
        "GET",
        "/api/v1/tasks",
        user=user,
        params={"kind": kind, "application_no": application_no, "wait": 20},
    )
    assert r.status_code == 200 and r.json()["items"], r.text


async def test_a_refused_seal_rejects_the_application(sqlite_system: System) -> None:
    system = sqlite_system
    application_no, path = await _sign_ready(system)
    code = await request_code(system, application_no)
    assert (await system.call("POST", path, json=signature(code))).status_code == 200
    seal = (await loan_view(system, application_no))["pending_task"]["id"]
    r = await system.call(
        "POST",
        f"/api/v1/tasks/{seal}/decision",
        user="manager",
        json={"decision": "refuse", "data": {"reason": "借款人身份存疑"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "REJECTED"
    await eventually(lambda: stage_of(system, application_no) == "REJECTED", "REJECTED")
    (evidence,) = rows(
        system, ContractSignature, ContractSignature.application_no == application_no
    )
    assert (evidence.seal_refused_by, evidence.seal_refused_reason) == ("manager", "借款人身份存疑")
    assert evidence.sealed_at is None
    assert len(_events(system, application_no, "contract.seal_refused")) == 1
    assert count(system, Notice, col(Notice.template) == "application_rejected") >= 1
