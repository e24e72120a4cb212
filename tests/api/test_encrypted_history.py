"""Temporal holds only ciphertext (issue 11 §4): a loan run through the whole system leaves a
history in which none of the borrower's identifiers can be found byte by byte without the
codec, and which the codec decodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from google.protobuf.message import Message
from sqlmodel import Session, select
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from loanops.codec import ENCODING
from loanops.temporal import payload_codec
from models.tables import Application, Borrower
from tests.conftest import System, temporal_target, workflow_runs


def _identifiers(system: System, application_no: str) -> dict[str, str]:
    with Session(system.engine) as s:
        app = s.exec(select(Application).where(Application.application_no == application_no)).one()
        b = s.get(Borrower, app.borrower_id)
        assert b is not None
        return {
            "id_number": b.id_number,
            "phone": b.phone,
            "bank_card": b.bank_card,
            "name": b.name,
        }


def _forms(value: str) -> list[bytes]:
    """The ways a value can sit in serialized bytes: UTF-8 (protobuf strings, pydantic JSON),
    JSON with non-ASCII escaped, and UTF-16 (never expected, searched anyway)."""
    return [
        value.encode(),
        json.dumps(value).strip('"').encode(),
        value.encode("utf-16-le"),
    ]


def _payloads(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside ``message`` (events, failures, maps, repeated fields)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items: Any = value.values()
        elif field.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                yield from _payloads(item)


async def test_a_loans_raw_history_carries_no_borrower_identifier(system: System) -> None:
    application_no = await system.run_demo()
    identifiers = _identifiers(system, application_no)

    # A client without the codec, as anyone reading Temporal's store would see it.
    plain = await Client.connect(temporal_target(system.env), namespace=system.client.namespace)
    histories = await workflow_runs(plain, application_no)
    assert len(histories) >= 2  # origination, then servicing
    raw = b"".join(event.SerializeToString() for history in histories for event in history.events)
    raw += b"".join(history.to_json().encode() for history in histories)
    for what, value in identifiers.items():
        for form in _forms(value):
            assert form not in raw, f"the borrower's {what} is readable in the raw history"

    # Workflow and activity data are encrypted; only the server's own payloads (search
    # attributes, the SDK's patch markers) are not, and they carry no borrower data.
    payloads = [p for h in histories for e in h.events for p in _payloads(e)]
    encrypted = [p for p in payloads if p.metadata.get("encoding") == ENCODING]
    assert len(encrypted) > 20

    # With the codec the history decodes, and the loan's confidential data is there (who
    # submitted it, the amount asked for, the bureau's findings) though not in the raw bytes:
    # the byte search above reads what Temporal stores. (Today's workflows carry the
    # application number, not the borrower's identifiers: activities read those from the
    # database; should they ever travel, the byte search above proves them encrypted.)
    codec = payload_codec(system.settings)
    decoded = b"".join(p.SerializeToString() for p in await codec.decode(encrypted))
    assert b'"requested_term_months"' in decoded
    confidential = [b'"submitted_by":"officer"', b'"requested_amount":"50000.00"', b'"bureau"']
    for fragment in confidential:
        assert fragment in decoded, fragment
        assert fragment not in raw, fragment
