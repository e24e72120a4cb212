"""The blacklist: identity numbers the department does not lend to (a knock-out at intake).
Entries are added and removed with ``loanops blacklist``; every change is audited. The number
is stored encrypted and found by its blind index (``loanops.pii``); the audit keys name the
blind index, never the number."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from domain.identity import check_resident_id
from loanops.db import session_scope
from loanops.pii import blind_index
from models.audit import append_audit
from models.tables import BlacklistEntry, blacklisted


def add_to_blacklist(engine: Engine, *, id_number: str, reason: str, by: str) -> BlacklistEntry:
    """ValueError naming the field: an invalid identity number, an empty reason, or one
    already on the list."""
    now = datetime.now(UTC)
    number = check_resident_id(id_number, today=now.date()).number
    if not reason.strip() or len(reason) > 200:
        raise ValueError("reason: must be between 1 and 200 characters")
    with session_scope(engine) as s:
        if blacklisted(s, number) is not None:
            raise ValueError(f"id_number: {number[-4:].rjust(18, '*')} is already on the list")
        entry = BlacklistEntry(id_number=number, reason=reason, recorded_by=by, recorded_at=now)
        s.add(entry)
        append_audit(
            s,
            key=f"blacklist/{blind_index(number)}/added/{now.isoformat()}",
            application_no=None,
            actor=by,
            action="blacklist.added",
            occurred_at=now,
            detail={"id_last4": number[-4:], "reason": reason},
        )
    return entry


def remove_from_blacklist(engine: Engine, *, id_number: str, by: str) -> None:
    number = id_number.strip().upper()
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        entry = blacklisted(s, number)
        if entry is None:
            raise ValueError("id_number: is not on the list")
        # By the blind index: the encrypted primary key differs on every encryption.
        s.execute(
            delete(BlacklistEntry).where(
                col(BlacklistEntry.id_number_index) == entry.id_number_index
            )
        )
        append_audit(
            s,
            key=f"blacklist/{blind_index(number)}/removed/{now.isoformat()}",
            application_no=None,
            actor=by,
            action="blacklist.removed",
            occurred_at=now,
            detail={"id_last4": number[-4:]},
        )


def blacklist(engine: Engine) -> list[BlacklistEntry]:
    with Session(engine) as s:
        return list(s.exec(select(BlacklistEntry).order_by(col(BlacklistEntry.recorded_at))))
