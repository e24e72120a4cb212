"""``loanops audit verify``: walk the audit trail in sequence and recompute its hash chain.

It reports the FIRST problem found, in trail order:
- an altered entry (its recomputed hash differs from the one stored, and no other place in the
  trail would make it match);
- a reordered entry (its stored hash matches its fields at another sequence number: it was moved);
- a missing entry (a gap in the sequence numbers, or a trail that ends before the chain head row
  says it does: a deleted tail);
- a broken link (an entry whose ``prev_hash`` is not the hash of the entry before it).

An unkeyed hash chain cannot stop someone who rewrites every entry after the one they change and
the head row too; the verified head hash printed by ``verify`` is what to write down elsewhere
(the inspection file, a ticket) so such a rewrite shows against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.audit_chain import GENESIS, entry_hash
from models.tables import AuditChainHead, AuditEvent

# How far from its place an entry moved is looked for (reordering is reported as such within it;
# further moves are reported as an alteration, which they also are).
REORDER_WINDOW = 64


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head_hash: str
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        if self.problem:
            return self.problem
        return f"{self.entries} entries, chain intact (head {self.head_hash})"


def _hash_at(e: AuditEvent, seq: int) -> str:
    return entry_hash(
        e.prev_hash,
        seq=seq,
        key=e.event_key,
        actor=e.actor,
        action=e.action,
        object=e.application_no,
        detail=e.detail,
        occurred_at=e.occurred_at,
    )


def _moved_from(e: AuditEvent) -> int | None:
    """The sequence number ``e``'s stored hash was computed for, when it is not its own."""
    for seq in range(max(1, e.seq - REORDER_WINDOW), e.seq + REORDER_WINDOW + 1):
        if seq != e.seq and _hash_at(e, seq) == e.hash:
            return seq
    return None


def verify_chain(engine: Engine, *, batch: int = 1000) -> ChainReport:
    """Recompute the whole chain; the first altered, missing or reordered entry, if any."""
    expected, prev, count = 1, GENESIS, 0
    with Session(engine) as session:
        head = session.get(AuditChainHead, 1)
        last_seq = 0
        while True:
            rows = session.exec(
                select(AuditEvent)
                .where(AuditEvent.seq > last_seq)
                .order_by(col(AuditEvent.seq))
                .limit(batch)
            ).all()
            if not rows:
                break
            for e in rows:
                where = f"entry {e.seq} ({e.event_key})"
                if _hash_at(e, e.seq) != e.hash:
                    moved = _moved_from(e)
                    if moved is not None:
                        return ChainReport(
                            count,
                            prev,
                            f"{where} is reordered: it was written as entry {moved}",
                        )
                    return ChainReport(count, prev, f"{where} is altered: its hash does not match")
                if e.seq != expected:
                    gap = (
                        f"entry {expected} is missing"
                        if e.seq == expected + 1
                        else f"entries {expected} to {e.seq - 1} are missing"
                    )
                    return ChainReport(count, prev, f"{gap} (the next entry on record is {e.seq})")
                if e.prev_hash != prev:
                    return ChainReport(
                        count,
                        prev,
                        f"{where} does not follow entry {expected - 1}: the link is broken",
                    )
                prev, expected, count = e.hash, expected + 1, count + 1
                last_seq = e.seq
            session.expunge_all()
    head_seq, head_hash = (head.seq, head.hash) if head else (count, prev)
    if head_seq > count:
        missing = (
            f"entry {head_seq} is missing"
            if head_seq == count + 1
            else f"entries {count + 1} to {head_seq} are missing"
        )
        return ChainReport(count, prev, f"{missing} (the chain head records {head_seq} entries)")
    if head_seq < count or head_hash != prev:
        return ChainReport(
            count,
            prev,
            f"the chain head (entry {head_seq}) does not match the trail's last entry ({count})",
        )
    return ChainReport(count, prev)
