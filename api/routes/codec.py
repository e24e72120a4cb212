"""The remote codec of the Temporal Web UI (issue 11 §4): ``POST /codec/decode`` and
``/codec/encode`` speak Temporal's codec server protocol, so authorized staff read decrypted
histories in the Web UI while Temporal itself stores only ciphertext (``loanops.codec``).

The protocol: the body is a ``Payloads`` message in protobuf JSON (``{"payloads": [{"metadata":
{"encoding": "<base64>"}, "data": "<base64>"}]}``), the answer the same shape; the UI names the
namespace in the ``X-Namespace`` header.

Decisions:

- Staff authenticate with the bearer token of ``POST /auth/token``, in the ``Authorization``
  header, like every staff route: the Web UI sends it when its codec setting "pass the user
  access token" is on and the UI's login issues a LoanOps token; any other client (scripts, the
  CLI's ``--codec-auth "Bearer …"`` where available) sends it itself. No token → 401; a role
  without ``DECODE_TEMPORAL_PAYLOADS`` / ``ENCODE_TEMPORAL_PAYLOADS`` → 403.
- Every successful decode is written to the audit trail (``temporal_payloads.decoded``: who,
  when, the namespace, how many payloads, how many were encrypted and under which key ids).
  A refused request decodes nothing and records nothing.
- A namespace other than ours is refused (422 on the header): our keys are not its keys.
- All or nothing: one payload that fails (unknown key id, altered) refuses the whole request
  with 422 naming it; the UI then shows the payloads as they are stored.
- Browsers may call these routes only from the Web UI's origin (``settings.temporal_ui_origin``;
  ``codec_cors`` answers the preflight); no other route of the API is opened to it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.common.v1 import Payload

from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, require
from api.errors import unprocessable
from domain.permissions import Action
from loanops.codec import EncryptionCodec, PayloadDecryptionError
from loanops.settings import Settings
from loanops.temporal import payload_codec
from models.audit import append_audit

router = APIRouter(prefix="/codec", tags=["codec"])

CODEC_PATH_PREFIX = "/api/v1/codec/"
DECODED = "temporal_payloads.decoded"


class PayloadJson(BaseModel):
    """One ``temporal.api.common.v1.Payload`` in protobuf JSON: bytes as base64."""

    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class PayloadsJson(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payloads: list[PayloadJson]


def get_payload_codec(request: Request) -> EncryptionCodec:
    """The app's codec, built once from its settings' keyring."""
    codec: EncryptionCodec | None = getattr(request.app.state, "payload_codec", None)
    if codec is None:
        settings: Settings = request.app.state.settings
        codec = payload_codec(settings)
        request.app.state.payload_codec = codec
    return codec


def _b64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise unprocessable(field, "not valid base64") from None


def _from_json(body: PayloadsJson) -> list[Payload]:
    payloads = []
    for i, p in enumerate(body.payloads):
        metadata = {k: _b64(f"payloads.{i}.metadata.{k}", v) for k, v in p.metadata.items()}
        payloads.append(Payload(metadata=metadata, data=_b64(f"payloads.{i}.data", p.data)))
    return payloads


def _to_json(payloads: list[Payload]) -> PayloadsJson:
    return PayloadsJson(
        payloads=[
            PayloadJson(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


def _check_namespace(namespace: str | None, settings: Settings) -> None:
    if namespace is not None and namespace != settings.temporal_namespace:
        raise unprocessable(
            "X-Namespace",
            f"this codec serves namespace {settings.temporal_namespace!r} only",
            where="header",
        )


XNamespace = Annotated[str | None, Header(alias="X-Namespace")]


@router.post("/decode", response_model=PayloadsJson)
def decode(
    body: PayloadsJson,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    x_namespace: XNamespace = None,
    user: CurrentUserInfo = require(Action.DECODE_TEMPORAL_PAYLOADS),
) -> PayloadsJson:
    """Department manager, auditor, operations specialist, risk manager. The payloads
    decrypted (unencrypted ones as they are); each call audited."""
    _check_namespace(x_namespace, settings)
    codec = get_payload_codec(request)
    stored = _from_json(body)
    decoded = []
    for i, payload in enumerate(stored):
        try:
            decoded.append(codec.decrypt(payload))
        except PayloadDecryptionError as exc:
            raise unprocessable(f"payloads.{i}", str(exc)) from None
    key_ids = sorted({k for p in stored if (k := EncryptionCodec.key_id_of(p)) is not None})
    append_audit(
        session,
        key=f"{DECODED}:{uuid.uuid4()}",
        actor=user.username,
        action=DECODED,
        occurred_at=clock(),
        detail={
            "namespace": x_namespace or settings.temporal_namespace,
            "payloads": len(stored),
            "encrypted": sum(1 for p in stored if EncryptionCodec.key_id_of(p) is not None),
            "key_ids": key_ids,
        },
    )
    session.commit()
    return _to_json(decoded)


@router.post("/encode", response_model=PayloadsJson)
def encode(
    body: PayloadsJson,
    request: Request,
    settings: SettingsDep,
    x_namespace: XNamespace = None,
    user: CurrentUserInfo = require(Action.ENCODE_TEMPORAL_PAYLOADS),
) -> PayloadsJson:
    """Department manager, operations specialist. The payloads encrypted with the current key."""
    _check_namespace(x_namespace, settings)
    codec = get_payload_codec(request)
    return _to_json([codec.encrypt(p) for p in _from_json(body)])


def codec_cors(
    ui_origin: str,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """An HTTP middleware opening the codec routes, and only them, to the Web UI's origin:
    the browser's preflight is answered here; another origin gets no CORS headers (the browser
    then refuses to hand it the answer)."""
    allowed = ui_origin.rstrip("/")

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith(CODEC_PATH_PREFIX):
            return await call_next(request)
        origin = request.headers.get("origin")
        preflight = (
            request.method == "OPTIONS" and "access-control-request-method" in request.headers
        )
        if preflight:
            if origin != allowed:
                return Response(status_code=403, content="origin not allowed")
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": allowed,
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await call_next(request)
        if origin == allowed:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Vary"] = "Origin"
        return response

    return middleware
