"""An application's documents (issue 7, item 3): the business officer uploads the borrower's
papers, typed by content (PDF, JPEG, PNG), within the size limit, stored by sha256 in the document
store; the same file under two borrowers is flagged; listing and download by role; a refusal
writes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from loanops.documents import FileSystemDocumentStore, sniff_content_type
from loanops.settings import Settings
from models.tables import AuditEvent, Document
from tests.api.helpers import count, mint_demo_tokens, rows, submit
from tests.conftest import System

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x01" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\x02" * 40
PDF = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" + b"%%EOF\n"
OTHER_BORROWER = {
    "name": "李四",
    "id_number": "110105198001010016",
    "phone": "13700137000",
    "bank_card": "6217009876543213",
    "monthly_income": "12000.00",
}


@pytest.fixture
def store_dir(system: System, tmp_path: Path) -> Path:
    """The document store's folder for this test (settings are read per request)."""
    path = tmp_path / "documents"
    system.settings.document_dir = path
    mint_demo_tokens(system)
    return path


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def upload(
    system: System,
    application_no: str,
    content: bytes,
    *,
    filename: str = "scan.png",
    kind: str = "id_card_front",
    claimed_type: str = "application/octet-stream",
    user: str = "officer",
) -> httpx.Response:
    return await system.call(
        "POST",
        f"/api/v1/applications/{application_no}/documents",
        user=user,
        data={"kind": kind},
        files={"file": (filename, content, claimed_type)},
    )


def _nothing_written(system: System, store_dir: Path, before: tuple[int, list[Path]]) -> None:
    assert (count(system, Document), _files(store_dir)) == before


async def test_type_by_content_empty_too_large_and_unsupported(
    system: System, store_dir: Path
) -> None:
    no = await submit(system)
    limit = system.settings.document_max_bytes
    assert limit == Settings().document_max_bytes == 10 * 1024 * 1024

    # A PNG named .pdf and claimed as a PDF is accepted as what it is: a PNG.
    r = await upload(system, no, PNG, filename="身份证.pdf", claimed_type="application/pdf")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["content_type"] == "image/png"
    assert doc["filename"] == "身份证.pdf"
    assert doc["kind"] == "id_card_front"
    assert doc["size"] == len(PNG)
    assert doc["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert doc["uploaded_by"] == "officer"
    assert doc["duplicate_of_borrower"] is False
    # The bytes are in the store, content-addressed and out of the row.
    assert _files(store_dir) == [store_dir / doc["sha256"][:2] / doc["sha256"]]
    (row,) = rows(system, Document)
    assert row.content is None and row.store_key == doc["sha256"]
    (event,) = rows(system, AuditEvent, AuditEvent.action == "document.uploaded")
    assert event.application_no == no and event.detail["document_id"] == doc["id"]

    before = (count(system, Document), _files(store_dir))
    r = await upload(system, no, b"", filename="empty.png")
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "file"]
    r = await upload(system, no, PNG + b"\x00" * (limit + 1 - len(PNG)), filename="big.png")
    assert r.status_code == 413, r.text
    for content, name in [
        (b"GIF89a" + b"\x00" * 20, "photo.png"),
        (b"just text, not a scan", "proof.pdf"),
        (b"PK\x03\x04" + b"\x00" * 20, "statement.pdf"),
    ]:
        r = await upload(system, no, content, filename=name, claimed_type="image/png")
        assert r.status_code == 415, (name, r.text)
    r = await upload(system, no, PNG, kind="passport")
    assert r.status_code == 422, r.text
    _nothing_written(system, store_dir, before)

    # Exactly at the limit is accepted; JPEG and PDF are recognised too.
    at_limit = PDF + b"\x00" * (limit - len(PDF))
    for content, expected in [(at_limit, "application/pdf"), (JPEG, "image/jpeg")]:
        r = await upload(system, no, content, filename="x.bin", kind="income_proof")
        assert r.status_code == 201, r.text
        assert r.json()["content_type"] == expected
        assert r.json()["size"] == len(content)

    listed = await system.call("GET", f"/api/v1/applications/{no}/documents", user="ops")
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["kind"], i["content_type"]) for i in items] == [
        ("id_card_front", "image/png"),
        ("income_proof", "application/pdf"),
        ("income_proof", "image/jpeg"),
    ]
    assert set(items[0]) == {
        "id",
        "kind",
        "filename",
        "content_type",
        "size",
        "sha256",
        "uploaded_by",
        "uploaded_at",
        "duplicate_of_borrower",
    }

    got = await system.call("GET", f"/api/v1/applications/{no}/documents/{doc['id']}", user="risk")
    assert got.status_code == 200, got.text
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "attachment" in got.headers["content-disposition"]
    # Under another application's number the document is not found.
    other = await submit(system)
    r = await system.call("GET", f"/api/v1/applications/{other}/documents/{doc['id']}", user="risk")
    assert r.status_code == 404
    r = await upload(system, "A20260101-NOSUCH", PNG)
    assert r.status_code == 404


async def test_the_same_file_under_two_borrowers_is_flagged(
    system: System, store_dir: Path
) -> None:
    first = await submit(system)
    again = await submit(system)  # the same borrower
    other = await submit(system, borrower=OTHER_BORROWER)

    r = await upload(system, first, PNG)
    assert r.status_code == 201 and r.json()["duplicate_of_borrower"] is False
    # The same borrower's other application: the same papers, not suspicious.
    r = await upload(system, again, PNG)
    assert r.status_code == 201 and r.json()["duplicate_of_borrower"] is False
    # Another borrower presenting the same file is.
    r = await upload(system, other, PNG, filename="mine.png")
    assert r.status_code == 201, r.text
    assert r.json()["duplicate_of_borrower"] is True
    listed = await system.call("GET", f"/api/v1/applications/{other}/documents", user="manager")
    assert [i["duplicate_of_borrower"] for i in listed.json()["items"]] == [True]
    flagged = [
        e.detail["duplicate_of_borrower"]
        for e in rows(system, AuditEvent, AuditEvent.application_no == other)
        if e.action == "document.uploaded"
    ]
    assert flagged == [True]
    # Stored once: the store is content-addressed.
    assert len(_files(store_dir)) == 1


async def test_roles_and_refusals(system: System, store_dir: Path) -> None:
    no = await submit(system)
    r = await upload(system, no, PNG)
    assert r.status_code == 201, r.text
    doc_id = r.json()["id"]
    before = (count(system, Document), _files(store_dir))

    # Only the business officer uploads; a refusal writes nothing (no row, no file).
    for user in ["ops", "risk", "product", "cs", "manager", "auditor"]:
        r = await upload(system, no, JPEG, user=user)
        assert r.status_code == 403, (user, r.text)
        assert r.json()["detail"].startswith("upload_document requires one of: business_officer")
    r = await system.call(
        "POST",
        f"/api/v1/applications/{no}/documents",
        data={"kind": "other"},
        files={"file": ("a.jpg", JPEG, "image/jpeg")},
    )
    assert r.status_code == 401
    _nothing_written(system, store_dir, before)

    expected: dict[str, Any] = {
        # user: (may list, may download)
        "officer": (True, True),
        "ops": (True, True),
        "risk": (True, True),
        "manager": (True, True),
        "auditor": (True, True),
        "product": (True, False),
        "cs": (True, False),  # customer service never gets ID card images
    }
    observed = {}
    for user in expected:
        listed = await system.call("GET", f"/api/v1/applications/{no}/documents", user=user)
        got = await system.call("GET", f"/api/v1/applications/{no}/documents/{doc_id}", user=user)
        assert listed.status_code in (200, 403) and got.status_code in (200, 403)
        observed[user] = (listed.status_code == 200, got.status_code == 200)
        if got.status_code == 200:
            assert got.content == PNG
    assert observed == expected
    downloads = rows(system, AuditEvent, AuditEvent.action == "document.downloaded")
    assert sorted(e.actor for e in downloads) == sorted(u for u, (_, d) in expected.items() if d)


def test_store_is_content_addressed_and_sniffs_by_content(tmp_path: Path) -> None:
    store = FileSystemDocumentStore(tmp_path)
    key = store.put(PNG)
    assert key == hashlib.sha256(PNG).hexdigest()
    assert store.put(PNG) == key and store.get(key) == PNG
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [key]  # no temp files left
    with pytest.raises(KeyError):
        store.get("0" * 64)
    with pytest.raises(KeyError):
        store.get("../../etc/passwd")
    assert sniff_content_type(PNG) == "image/png"
    assert sniff_content_type(JPEG) == "image/jpeg"
    assert sniff_content_type(PDF) == "application/pdf"
    assert sniff_content_type(b"%PD") is None
