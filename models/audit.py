"""The one way anything writes the audit trail: one event per business key, written once, each
entry chained to the one before it by its hash (``domain.audit_chain``).

Appends are sealed when the transaction commits (a ``before_commit`` hook): the chain head row is
locked (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite a write to it first takes the database's
write lock — pysqlite begins its transaction at the first write, so the read after it is current),
the pending events get the next sequence numbers and hashes, and the head moves to the last one.
Locking only at commit, after every other row the transaction touches, keeps the serialized part
short and free of lock-order deadlocks. The consequence: an event appended in a transaction is not
visible to queries in that same transaction (``append_audit`` still refuses a key appended twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from domain.audit_chain import GENESIS, entry_hash
from models.tables import AuditChainHead, AuditEvent

_PENDING = "loanops.audit_pending"


@dataclass(frozen=True)
class _Pending:
    key: str
    actor: str
    action: str
    occurred_at: datetime
    application_no: str | None
    detail: dict[str, Any]


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
    """Append one audit event unless ``key`` was written before; True when it was new. The
    event is chained and written when ``session`` commits."""
    pending: list[_Pending] = session.info.setdefault(_PENDING, [])
    if any(p.key == key for p in pending):
        return False
    if session.exec(select(AuditEvent.id).where(AuditEvent.event_key == key)).first():
        return False
    # The detail as it reads back from the JSON column (tuples become lists...), so the hash
    # computed now is the hash recomputed by ``loanops audit verify``.
    normalized = json.loads(json.dumps(detail or {}))
    pending.append(_Pending(key, actor, action, occurred_at, application_no, normalized))
    return True


def _lock_head(session: OrmSession) -> tuple[int, str]:
    """The chain head (last seq, last hash), locked until the transaction ends. A missing head
    row (a fresh or emptied database) is created from the last entry on record."""
    conn = session.connection()
    head = AuditChainHead.__table__  # type: ignore[attr-defined]
    if conn.dialect.name == "sqlite":
        # Take SQLite's write lock before reading the head: nobody can commit in between.
        conn.execute(update(head).where(head.c.id == 1).values(seq=head.c.seq))
    query = select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()
    row = conn.execute(query).first()
    if row is None:
        events = AuditEvent.__table__  # type: ignore[attr-defined]
        last = conn.execute(
            select(events.c.seq, events.c.hash).order_by(events.c.seq.desc()).limit(1)
        ).first()
        start = {"id": 1, "seq": last[0] if last else 0, "hash": last[1] if last else GENESIS}
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(head).values(**start).on_conflict_do_nothing())
        elif conn.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(head).values(**start).on_conflict_do_nothing())
        else:  # pragma: no cover - the two databases we run on are above
            conn.execute(insert(head).values(**start))
        row = conn.execute(query).first()
        assert row is not None
    return int(row[0]), str(row[1])


@event.listens_for(OrmSession, "before_commit")
def _seal_pending(session: OrmSession) -> None:
    """Chain and add the events appended in this transaction (they are flushed by the commit)."""
    pending: list[_Pending] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    # Every other change of the transaction first, so the head is the last lock it takes (two
    # transactions can then never wait for each other's head and rows in opposite orders).
    session.flush()
    seq, prev = _lock_head(session)
    for p in pending:
        seq += 1
        digest = entry_hash(
            prev,
            seq=seq,
            key=p.key,
            actor=p.actor,
            action=p.action,
            object=p.application_no,
            detail=p.detail,
            occurred_at=p.occurred_at,
        )
        session.add(
            AuditEvent(
                event_key=p.key,
                application_no=p.application_no,
                actor=p.actor,
                action=p.action,
                detail=p.detail,
                occurred_at=p.occurred_at,
                seq=seq,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    head = AuditChainHead.__table__  # type: ignore[attr-defined]
    session.connection().execute(update(head).where(head.c.id == 1).values(seq=seq, hash=prev))


@event.listens_for(OrmSession, "after_soft_rollback")
def _drop_pending(session: OrmSession, _previous_transaction: Any) -> None:
    """A rolled-back transaction's events are never written."""
    session.info.pop(_PENDING, None)
