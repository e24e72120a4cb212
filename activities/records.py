"""The one way activities write the audit trail (``models.audit``, shared with the API) and the
notice outbox: idempotent by business key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.audit import append_audit
from models.tables import Notice

__all__ = ["append_audit", "enqueue_notice"]


def enqueue_notice(
    session: Session,
    *,
    key: str,
    channel: str,
    recipient: str,
    template: str,
    payload: dict[str, Any],
    created_at: datetime,
    application_no: str | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Put one message in the outbox unless ``key`` was queued before; True when it was new.
    ``not_before`` holds a borrower message until the contact window opens."""
    if session.exec(select(Notice.id).where(Notice.key == key)).first():
        return False
    session.add(
        Notice(
            key=key,
            application_no=application_no,
            channel=channel,
            recipient=recipient,
            template=template,
            payload=payload,
            created_at=created_at,
            not_before=not_before,
        )
    )
    return True
