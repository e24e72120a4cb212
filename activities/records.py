"""The one way activities write the audit trail and the notice outbox: idempotent by business key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.tables import AuditEvent, Notice


def append_audit(
    session: Session,
    *,
    key: str,
    actor: str,
    action: str,
    occurred_at: datetime,
    application_no: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Append one audit event unless ``key`` was written before; True when it was new."""
    if session.exec(select(AuditEvent.id).where(AuditEvent.event_key == key)).first():
        return False
    session.add(
        AuditEvent(
            event_key=key,
            application_no=application_no,
            actor=actor,
            action=action,
            detail=detail or {},
            occurred_at=occurred_at,
        )
    )
    return True


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
