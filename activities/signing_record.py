"""The signed contract: the signing record rendered as one page (WeasyPrint) and appended to the
contract PDF as its last page (pypdf). Worker side only: the API never imports this."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from pypdf import PdfReader, PdfWriter

from activities.rendering import render_pdf
from domain.signing import DISCLOSURE_ITEMS

SIGNING_RECORD_TEMPLATE = "signing_record.html"


@dataclass(frozen=True)
class SigningRecord:
    """What the signing page states (never the one-time code)."""

    contract_no: str
    signer_name: str
    signed_at: datetime
    code_issued_at: datetime
    client_address: str
    user_agent: str
    document_sha256: str
    confirmed: tuple[str, ...]


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def render_signing_record_pdf(record: SigningRecord) -> bytes:
    """The signing record as a one-page PDF. Blocking (WeasyPrint)."""
    confirmed = set(record.confirmed)
    return render_pdf(
        SIGNING_RECORD_TEMPLATE,
        {
            "contract_no": record.contract_no,
            "signer_name": record.signer_name,
            "signed_at": _stamp(record.signed_at),
            "code_issued_at": _stamp(record.code_issued_at),
            "client_address": record.client_address,
            "user_agent": record.user_agent,
            "document_sha256": record.document_sha256,
            "confirmed": [item for item in DISCLOSURE_ITEMS if item.id in confirmed],
        },
    )


def append_pages(document: bytes, pages: bytes) -> bytes:
    """``document`` with every page of ``pages`` appended after its last page."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(document)))
    writer.append(PdfReader(io.BytesIO(pages)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
