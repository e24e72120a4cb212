"""Keyset pagination (issue 13): a page starts after the last row of the previous one, so the
database walks its index from there instead of counting and skipping ``offset`` rows.

The cursor is opaque to clients: the URL-safe base64 of the JSON list of the last row's sort
key. A cursor that does not decode is a 422 naming ``cursor``. Offsets still work (the default,
for compatibility); a request gives one or the other. The total is counted only when asked
(``count=true``, the default for compatibility; a client paging with cursors passes
``count=false`` and skips the full count)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from api.errors import unprocessable

CURSOR_DOC = (
    "continue after the page that returned this next_cursor (keyset pagination); "
    "not together with an offset"
)
COUNT_DOC = "count the matching rows (total); false skips the count"


def encode_cursor(values: list[Any]) -> str:
    """The cursor of a row's sort key (ints, strings, datetimes, UUIDs)."""
    plain = [
        v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v
        for v in values
    ]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...], offset: int) -> list[Any]:
    """The sort key a cursor carries, each value of its kind in ``kinds`` (int, str, datetime,
    uuid.UUID); a 422 naming ``cursor`` when it is not one of ours (or comes with an offset)."""
    if offset:
        raise unprocessable("cursor", "give either a cursor or an offset, not both", where="query")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        plain = json.loads(raw)
        if not isinstance(plain, list) or len(plain) != len(kinds):
            raise ValueError("wrong shape")
        values: list[Any] = []
        for kind, value in zip(kinds, plain, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive time")
                values.append(parsed)
            elif kind is uuid.UUID:
                values.append(uuid.UUID(value))
            elif kind is int:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError("not an int")
                values.append(value)
            else:
                if not isinstance(value, str):
                    raise ValueError("not a string")
                values.append(value)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise unprocessable("cursor", "is not a cursor this list returned", where="query") from None
    return values
