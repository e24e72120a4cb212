"""The archive of a settled loan (seed §3.7): every document of the loan in one zip bundle, with a
manifest, kept until the retention date.

Decisions:
- The bundle is a zip (``NN-<kind>-<file name>`` per document, plus ``manifest.json``), stored in
  the document store (content-addressed, as uploads are); the manifest is also kept in the
  ``loan_archives`` row, which the API answers from. The zip's timestamps are the settlement
  date, so a retried activity builds the same bytes.
- Every document is included, superseded contract versions too (the record of what was issued).
- Each document's sha256 is recomputed from the stored bytes and compared with the one recorded
  at upload or issue. A mismatch or a missing file does not stop the settlement (the money is
  settled): the archive is recorded with ``intact`` false, the document marked, and operations
  get an inbox notice to restore it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select
from temporalio import activity

from activities.progress import beat
from activities.records import append_audit, enqueue_notice
from domain.lifecycle import Role
from loanops.db import session_scope
from loanops.documents import DocumentStore
from models.shapes import ArchiveInput
from models.tables import Document, LoanArchive


def _stored_bytes(doc: Document, store: DocumentStore) -> bytes | None:
    if doc.content is not None:
        return doc.content
    if doc.store_key is None:
        return None
    try:
        return store.get(doc.store_key)
    except KeyError:
        return None


class ArchiveActivities:
    def __init__(self, engine: Engine, store: DocumentStore) -> None:
        self.engine = engine
        self.store = store

    @activity.defn
    def archive_loan(self, inp: ArchiveInput) -> str:
        """Archive the loan's documents once (a retry returns the recorded bundle's sha256)."""
        with session_scope(self.engine) as s:
            done = s.get(LoanArchive, inp.application_no)
            if done is not None:
                return done.bundle_sha256
            docs = s.exec(
                select(Document)
                .where(Document.application_no == inp.application_no)
                .order_by(col(Document.created_at), col(Document.id))
            ).all()
            manifest: list[dict[str, Any]] = []
            files: list[tuple[str, bytes]] = []
            for n, doc in enumerate(docs, start=1):
                data = _stored_bytes(doc, self.store)
                digest = hashlib.sha256(data).hexdigest() if data is not None else None
                name = f"{n:02d}-{doc.kind}-{doc.filename}"
                manifest.append(
                    {
                        "document_id": str(doc.id),
                        "kind": doc.kind,
                        "filename": doc.filename,
                        "archived_as": name,
                        "content_type": doc.content_type,
                        "size": len(data) if data is not None else doc.size,
                        "sha256": digest,
                        "recorded_sha256": doc.sha256,
                        "verified": digest == doc.sha256,
                        "superseded": doc.superseded_at is not None,
                    }
                )
                if data is not None:
                    files.append((name, data))
                beat(f"read {n} of {len(docs)} documents")
            intact = all(m["verified"] for m in manifest)
        bundle = _zip(files, manifest, inp)
        beat("bundled")
        key = self.store.put(bundle)
        bundle_sha = hashlib.sha256(bundle).hexdigest()
        with session_scope(self.engine) as s:
            if s.get(LoanArchive, inp.application_no) is not None:
                return bundle_sha
            s.add(
                LoanArchive(
                    application_no=inp.application_no,
                    archived_at=inp.at,
                    settled_on=inp.settled_on,
                    retain_until=inp.retain_until,
                    document_count=len(manifest),
                    intact=intact,
                    manifest=manifest,
                    bundle_key=key,
                    bundle_sha256=bundle_sha,
                    bundle_size=len(bundle),
                )
            )
            if not intact:
                enqueue_notice(
                    s,
                    key=f"{inp.application_no}/archive/integrity",
                    application_no=inp.application_no,
                    channel="inbox",
                    recipient=Role.OPERATIONS_SPECIALIST.value,
                    template="archive_integrity",
                    payload={
                        "documents": ", ".join(m["filename"] for m in manifest if not m["verified"])
                    },
                    created_at=inp.at,
                )
            append_audit(
                s,
                key=f"{inp.application_no}/archived",
                application_no=inp.application_no,
                actor="system",
                action="loan.archived",
                occurred_at=inp.at,
                detail={
                    "documents": len(manifest),
                    "intact": intact,
                    "bundle_sha256": bundle_sha,
                    "retain_until": inp.retain_until.isoformat(),
                },
            )
        return bundle_sha


def _zip(
    files: list[tuple[str, bytes]], manifest: list[dict[str, Any]], inp: ArchiveInput
) -> bytes:
    stamp = datetime(inp.settled_on.year, inp.settled_on.month, inp.settled_on.day).timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
        z.writestr(
            zipfile.ZipInfo("manifest.json", date_time=stamp),
            json.dumps(
                {
                    "application_no": inp.application_no,
                    "settled_on": inp.settled_on.isoformat(),
                    "retain_until": inp.retain_until.isoformat(),
                    "documents": manifest,
                },
                ensure_ascii=False,
                indent=2,
            ),
        )
    return out.getvalue()
