"""The Temporal Web UI's remote codec (api/routes/codec.py), on SQLite and PostgreSQL: payloads
round-trip for the roles that may read loan internals, others get 403 and anonymous callers 401,
each decode is audited, an old key's payload still decodes, a tampered one is refused, and only
the Web UI's origin is let in by the browser."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.api.common.v1 import Payload

from api.app import create_app
from loanops.codec import ENCODING, KEY_ID_METADATA
from loanops.security import create_access_token
from loanops.seed import DEMO_USERS, seed_demo_users
from loanops.settings import Settings
from loanops.temporal import payload_codec
from models.tables import AuditEvent
from tests.conftest import (
    DEMO_PASSWORD,
    TEST_PAYLOAD_KEY_ID,
    TEST_PAYLOAD_KEYS,
    _demo_password_hash,
)

DECODE = "/api/v1/codec/decode"
ENCODE = "/api/v1/codec/encode"
UI_ORIGIN = "http://127.0.0.1:8233"
ID_NUMBER = "110105198805120026"
ROLE_OF = {username: role.value for username, _, role in DEMO_USERS}


def _settings(database_url: str, *, current: str = TEST_PAYLOAD_KEY_ID) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        temporal_address="127.0.0.1:9",
        temporal_payload_keys=TEST_PAYLOAD_KEYS,
        temporal_payload_key_id=current,
        temporal_ui_origin=UI_ORIGIN,
    )


class Api:
    def __init__(self, http: TestClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    def post(
        self, url: str, user: str | None, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        all_headers = {"X-Namespace": "default", **(headers or {})}
        if user is not None:
            token = create_access_token(
                subject=user,
                roles=[ROLE_OF[user]],
                secret=self.settings.secret_key,
                minutes=5,
            )
            all_headers["Authorization"] = f"Bearer {token}"
        return self.http.post(url, json=body, headers=all_headers)


@pytest.fixture
def api(engine: Engine, database_url: str) -> Iterator[Api]:
    seed_demo_users(engine, password=DEMO_PASSWORD, password_hash=_demo_password_hash())
    settings = _settings(database_url)
    with TestClient(create_app(settings, engine=engine)) as http:
        yield Api(http, settings)


def _json(payload: Payload) -> dict[str, Any]:
    """A payload in protobuf JSON, as the Web UI sends it."""
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


def _payload(doc: dict[str, Any]) -> Payload:
    return Payload(
        metadata={k: base64.b64decode(v) for k, v in doc["metadata"].items()},
        data=base64.b64decode(doc["data"]),
    )


PLAIN = Payload(
    metadata={"encoding": b"json/plain"}, data=json.dumps({"id_number": ID_NUMBER}).encode()
)


def _decode_audits(engine: Engine) -> list[AuditEvent]:
    with Session(engine) as s:
        return list(
            s.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "temporal_payloads.decoded")
                .order_by(col(AuditEvent.recorded_at))
            ).all()
        )


def test_a_payload_round_trips_for_allowed_roles_and_each_decode_is_audited(
    api: Api, engine: Engine
) -> None:
    r = api.post(ENCODE, "ops", {"payloads": [_json(PLAIN)]})
    assert r.status_code == 200, r.text
    [sealed] = r.json()["payloads"]
    assert _payload(sealed).metadata["encoding"] == ENCODING
    assert ID_NUMBER.encode() not in _payload(sealed).SerializeToString()

    for user in ("manager", "auditor", "ops", "risk"):
        r = api.post(DECODE, user, {"payloads": [sealed, _json(PLAIN)]})
        assert r.status_code == 200, (user, r.text)
        assert [_payload(p) for p in r.json()["payloads"]] == [PLAIN, PLAIN]

    audits = _decode_audits(engine)
    assert [a.actor for a in audits] == ["manager", "auditor", "ops", "risk"]
    assert audits[0].detail == {
        "namespace": "default",
        "payloads": 2,
        "encrypted": 1,
        "key_ids": [TEST_PAYLOAD_KEY_ID],
    }
    assert ID_NUMBER not in json.dumps(audits[0].detail)


def test_a_token_from_the_login_route_opens_the_codec(api: Api) -> None:
    r = api.http.post("/api/v1/auth/token", data={"username": "auditor", "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = api.http.post(
        DECODE,
        json={"payloads": [_json(PLAIN)]},
        headers={"Authorization": f"Bearer {token}", "X-Namespace": "default"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("user", ["officer", "cs", "product"])
def test_roles_without_need_to_know_are_refused(api: Api, engine: Engine, user: str) -> None:
    sealed = payload_codec(api.settings).encrypt(PLAIN)
    r = api.post(DECODE, user, {"payloads": [_json(sealed)]})
    assert r.status_code == 403, r.text
    assert r.json()["detail"].startswith("decode_temporal_payloads requires one of:")
    assert _decode_audits(engine) == []


def test_encoding_is_for_those_who_operate_loans(api: Api) -> None:
    for user in ("auditor", "risk", "officer"):
        r = api.post(ENCODE, user, {"payloads": [_json(PLAIN)]})
        assert r.status_code == 403, (user, r.text)


def test_anonymous_and_forged_callers_are_refused(api: Api, engine: Engine) -> None:
    sealed = payload_codec(api.settings).encrypt(PLAIN)
    r = api.post(DECODE, None, {"payloads": [_json(sealed)]})
    assert r.status_code == 401, r.text
    forged = create_access_token(
        subject="manager", roles=["department_manager"], secret="not-the-key" * 4, minutes=5
    )
    r = api.http.post(
        DECODE,
        json={"payloads": [_json(sealed)]},
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert r.status_code == 401, r.text
    assert _decode_audits(engine) == []


def test_a_payload_encrypted_with_an_old_key_still_decodes(api: Api, database_url: str) -> None:
    before_rotation = payload_codec(_settings(database_url, current="test-2026-01"))
    old = before_rotation.encrypt(PLAIN)
    assert old.metadata[KEY_ID_METADATA] == b"test-2026-01"
    r = api.post(DECODE, "auditor", {"payloads": [_json(old)]})
    assert r.status_code == 200, r.text
    assert _payload(r.json()["payloads"][0]) == PLAIN


def test_a_tampered_payload_is_refused_naming_it(api: Api, engine: Engine) -> None:
    sealed = payload_codec(api.settings).encrypt(PLAIN)
    data = bytearray(sealed.data)
    data[-5] ^= 0xFF
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(data))
    r = api.post(DECODE, "auditor", {"payloads": [_json(PLAIN), _json(tampered)]})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "payloads", "1"]
    assert "failed authentication" in error["msg"]
    assert _decode_audits(engine) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {"payloads": [{"metadata": {}, "data": "not base64!"}]},
            ["body", "payloads", "0", "data"],
        ),
        (
            {"payloads": [{"metadata": {"encoding": "%%"}, "data": ""}]},
            ["body", "payloads", "0", "metadata", "encoding"],
        ),
        ({}, ["body", "payloads"]),
    ],
)
def test_a_malformed_body_is_refused_naming_the_field(
    api: Api, body: dict[str, Any], loc: list[str]
) -> None:
    r = api.post(DECODE, "auditor", body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


def test_another_namespace_is_refused(api: Api) -> None:
    r = api.post(DECODE, "auditor", {"payloads": [_json(PLAIN)]}, {"X-Namespace": "other"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["header", "X-Namespace"]


def test_only_the_web_ui_origin_may_call_from_a_browser(api: Api) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-namespace",
    }
    r = api.http.options(DECODE, headers={"Origin": UI_ORIGIN, **preflight})
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert "x-namespace" in r.headers["access-control-allow-headers"].lower()

    r = api.http.options(DECODE, headers={"Origin": "http://evil.example", **preflight})
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers

    r = api.post(DECODE, "auditor", {"payloads": [_json(PLAIN)]}, {"Origin": UI_ORIGIN})
    assert r.headers["access-control-allow-origin"] == UI_ORIGIN
    r = api.post(DECODE, "auditor", {"payloads": [_json(PLAIN)]}, {"Origin": "http://x.example"})
    assert "access-control-allow-origin" not in r.headers

    # No other route is opened to the Web UI's origin.
    r = api.http.options("/api/v1/loans", headers={"Origin": UI_ORIGIN, **preflight})
    assert "access-control-allow-origin" not in r.headers
