"""The one way anything writes the audit trail: one event per business key, written once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.tables import AuditEvent


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
