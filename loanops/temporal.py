"""Connecting to Temporal (dev server or cluster) and making sure our search attributes exist."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import RPCError, RPCStatusCode

from loanops.codec import EncryptionCodec, load_dev_keyring, parse_key
from loanops.settings import VAR_DIR, Settings

log = logging.getLogger(__name__)

# Never put PII here: search attributes are stored unencrypted (the shared FIELD_NOTES.md, outside this repository).
SEARCH_ATTRIBUTES = {"LoanStage": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}


def payload_codec(settings: Settings) -> EncryptionCodec:
    """The payload codec of ``settings``' keyring (a development/test install without one
    uses the key generated under ``var/``)."""
    encoded = settings.temporal_payload_keys or load_dev_keyring(VAR_DIR)
    keys = {key_id: parse_key(key_id, key) for key_id, key in encoded.items()}
    current = settings.temporal_payload_key_id
    if current is None:
        if len(keys) != 1:
            raise ValueError("LOANOPS_TEMPORAL_PAYLOAD_KEY_ID must name the current key")
        [current] = keys
    return EncryptionCodec(keys, current)


def data_converter(settings: Settings) -> DataConverter:
    """The one data converter of every client and worker: pydantic values, every payload
    encrypted (``loanops.codec``), failure messages and stack traces moved into an encrypted
    payload too (they can quote borrower data)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=payload_codec(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings) -> Client:
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    elif settings.temporal_tls or settings.temporal_api_key:
        tls = True
    return await connect_when_ready(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=settings.temporal_api_key,
        data_converter=data_converter(settings),
    )


async def connect_when_ready(address: str, *, within: float = 30.0, **options: Any) -> Client:
    """``Client.connect``, retried while the server is not up yet: a dev server whose port is
    open may still answer "Frontend is not healthy yet" for a while on a busy machine, and a
    cluster may be restarting. Gives up after ``within`` seconds with the last error."""
    deadline = time.monotonic() + within
    delay = 0.1
    while True:
        try:
            return await Client.connect(address, **options)
        except RuntimeError as exc:  # the SDK's "Failed client connect: ..."
            if time.monotonic() + delay > deadline:
                raise
            log.info("Temporal at %s is not ready (%s); retrying in %.1f s", address, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def ensure_search_attributes(client: Client) -> None:
    """Register missing search attributes where the server allows it (dev server, self-hosted).

    Temporal Cloud refuses the operator call; there the attributes are created once in the
    namespace settings, and this logs what is missing instead of failing.
    """
    namespace = client.namespace
    try:
        try:
            existing = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            missing = {
                name: kind
                for name, kind in SEARCH_ATTRIBUTES.items()
                if name not in existing.custom_attributes
            }
        except RPCError as exc:
            if exc.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server
                raise
            missing = dict(SEARCH_ATTRIBUTES)
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(missing))
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return
        log.warning(
            "could not check or register search attributes %s (%s); create them in the "
            "namespace if workflows fail to upsert them",
            ", ".join(SEARCH_ATTRIBUTES),
            exc.message,
        )
