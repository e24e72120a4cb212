"""An application's documents: the business officer attaches the borrower's papers (ID card,
income proof...), staff list them, and those who review them download them.

The file's type is decided by its content (PDF, JPEG, PNG), never by its name; its bytes go to the
document store (content-addressed by sha256) and its metadata to ``documents``, next to the
contract the system renders (whose bytes stay in the row)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile, status
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.deps import (
    ClockDep,
    CurrentUserInfo,
    DocumentStoreDep,
    SessionDep,
    SettingsDep,
    require,
)
from api.errors import unprocessable
from api.loan_views import load_application, refuse_if_settled
from domain.permissions import Action
from loanops.documents import sniff_content_type
from models.audit import append_audit
from models.tables import Application, Document

router = APIRouter(prefix="/applications", tags=["documents"])


class DocumentKind(StrEnum):
    ID_CARD_FRONT = "id_card_front"
    ID_CARD_BACK = "id_card_back"
    INCOME_PROOF = "income_proof"
    BANK_STATEMENT = "bank_statement"
    EMPLOYMENT_PROOF = "employment_proof"
    OTHER = "other"


class DocumentOut(BaseModel):
    id: str
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    # The same file (by sha256) is attached to an application of another borrower.
    duplicate_of_borrower: bool


class DocumentList(BaseModel):
    items: list[DocumentOut]


def document_out(doc: Document) -> DocumentOut:
    return DocumentOut(
        id=str(doc.id),
        kind=doc.kind,
        filename=doc.filename,
        content_type=doc.content_type,
        size=doc.size,
        sha256=doc.sha256,
        uploaded_by=doc.uploaded_by,
        uploaded_at=doc.created_at,
        duplicate_of_borrower=doc.duplicate_of_borrower,
    )


def _application(session: Session, application_no: str, viewer: CurrentUserInfo) -> Application:
    return load_application(session, application_no, viewer)[0]


def inline_document(doc: Document) -> Response:
    """A document the system rendered and keeps in its row (contract, risk report), shown inline."""
    return Response(
        content=doc.content,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": f'inline; filename="{doc.filename}"',
            "X-Content-SHA256": doc.sha256,
        },
    )


def _safe_filename(name: str | None) -> str:
    """The client's file name without any folder part, at most 200 characters."""
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip()
    return (base or "upload")[-200:]


def _attached_to_another_borrower(session: Session, sha256: str, app: Application) -> bool:
    found = session.exec(
        select(Document.id)
        .join(Application, col(Application.application_no) == col(Document.application_no))
        .where(Document.sha256 == sha256, Application.borrower_id != app.borrower_id)
    ).first()
    return found is not None


@router.post(
    "/{application_no}/documents",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
)
def upload_document(
    application_no: str,
    kind: Annotated[DocumentKind, Form()],
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    settings: SettingsDep,
    store: DocumentStoreDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.UPLOAD_DOCUMENT),
) -> DocumentOut:
    """business_officer. Attach a paper to an application: PDF, JPEG or PNG by content (415
    otherwise), not empty (422), at most ``document_max_bytes`` (413). The same file already
    attached to another borrower's application is flagged (``duplicate_of_borrower``) and audited."""
    app = _application(session, application_no, user)
    refuse_if_settled(app, "no document can be added")
    limit = settings.document_max_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"file: larger than the limit of {limit} bytes",
        )
    if not data:
        raise unprocessable("file", "the file is empty")
    content_type = sniff_content_type(data)
    if content_type is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="file: only PDF, JPEG and PNG documents are accepted (by content)",
        )
    digest = hashlib.sha256(data).hexdigest()
    duplicate = _attached_to_another_borrower(session, digest, app)
    # The bytes first: a row never points at a file that is not there (a crash in between
    # leaves an unreferenced file, harmless in a content-addressed store).
    key = store.put(data)
    now = clock()
    doc = Document(
        id=uuid.uuid4(),
        application_no=app.application_no,
        kind=kind.value,
        filename=_safe_filename(file.filename),
        content_type=content_type,
        sha256=digest,
        content=None,
        size=len(data),
        uploaded_by=user.username,
        store_key=key,
        duplicate_of_borrower=duplicate,
        created_at=now,
    )
    session.add(doc)
    append_audit(
        session,
        key=f"document/{doc.id}/uploaded",
        application_no=app.application_no,
        actor=user.username,
        action="document.uploaded",
        occurred_at=now,
        detail={
            "document_id": str(doc.id),
            "kind": doc.kind,
            "sha256": digest,
            "size": doc.size,
            "content_type": content_type,
            "duplicate_of_borrower": duplicate,
        },
    )
    session.commit()
    return document_out(doc)


@router.get("/{application_no}/documents", response_model=DocumentList)
def list_documents(
    application_no: str,
    session: SessionDep,
    viewer: CurrentUserInfo = require(Action.LIST_DOCUMENTS),
) -> DocumentList:
    """Any staff role: the application's documents (uploaded papers and the contract), oldest
    first, without their contents."""
    app = _application(session, application_no, viewer)
    docs = session.exec(
        select(Document)
        .where(Document.application_no == app.application_no)
        .order_by(col(Document.created_at), col(Document.id))
    ).all()
    return DocumentList(items=[document_out(d) for d in docs])


@router.get(
    "/{application_no}/documents/{document_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_document(
    application_no: str,
    document_id: uuid.UUID,
    session: SessionDep,
    store: DocumentStoreDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.DOWNLOAD_DOCUMENT),
) -> Response:
    """business_officer, operations_specialist, risk_manager, department_manager, auditor: one
    document's bytes, served as the type its content showed. Each download is audited."""
    _application(session, application_no, user)
    doc = session.get(Document, document_id)
    if doc is None or doc.application_no != application_no:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such document")
    if doc.content is not None:
        data = doc.content
    else:
        try:
            data = store.get(doc.store_key or "")
        except KeyError:
            raise HTTPException(
                status.HTTP_500_INTERNAL_SERVER_ERROR,
                detail="the document's file is missing from the document store",
            ) from None
    append_audit(
        session,
        key=f"document/{doc.id}/downloaded/{uuid.uuid4()}",
        application_no=doc.application_no,
        actor=user.username,
        action="document.downloaded",
        occurred_at=clock(),
        detail={"document_id": str(doc.id), "kind": doc.kind},
    )
    session.commit()
    return Response(
        content=data,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
            "X-Content-Type-Options": "nosniff",
            "X-Content-SHA256": doc.sha256,
        },
    )
