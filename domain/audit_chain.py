"""The audit trail's hash chain, as pure functions (no database): what an entry's hash covers.

Each entry carries its sequence number, the hash of the entry before it (``prev_hash``; the first
entry's is ``GENESIS``) and its own ``hash`` = sha256 over the previous hash followed by the
canonical JSON of the entry's fields: seq, key, actor, action, object (the application number
the event is about, or null), detail and occurred_at (UTC, ISO 8601 with microseconds). Canonical
JSON: keys sorted, no spaces, UTF-8 (``ensure_ascii=False``).

Changing any of this invalidates every chain on record: it is fixed (migration 0014 carries a
frozen copy for the rows it chains).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def timestamp(at: datetime) -> str:
    """``at`` in UTC, ISO 8601 with microseconds; a naive value is taken as UTC (SQLite)."""
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")


def canonical_entry(
    *,
    seq: int,
    key: str,
    actor: str,
    action: str,
    object: str | None,
    detail: dict[str, Any],
    occurred_at: datetime,
) -> str:
    """The canonical JSON of one entry's fields."""
    return json.dumps(
        {
            "seq": seq,
            "key": key,
            "actor": actor,
            "action": action,
            "object": object,
            "detail": detail,
            "occurred_at": timestamp(occurred_at),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def entry_hash(prev_hash: str, **fields: Any) -> str:
    """sha256 (hex) over the previous entry's hash and this entry's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical_entry(**fields)).encode("utf-8")).hexdigest()
