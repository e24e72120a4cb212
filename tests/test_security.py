"""Passwords (argon2), access tokens (JWT) and the borrower's signing tokens (HMAC)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from loanops.security import (
    create_access_token,
    decode_access_token,
    document_for_signing_token,
    hash_password,
    signing_token,
    verify_password,
)

SECRET = "s" * 40
OTHER_SECRET = "o" * 40


# ---- passwords ------------------------------------------------------------------------------


def test_argon2_hash_verifies_right_password_only() -> None:
    h = hash_password("correct horse 电池")
    assert h.startswith("$argon2")
    assert "correct horse" not in h
    assert verify_password("correct horse 电池", h)
    assert not verify_password("correct horse", h)
    assert not verify_password("", h)


def test_hashes_are_salted() -> None:
    a, b = hash_password("demo1234"), hash_password("demo1234")
    assert a != b
    assert verify_password("demo1234", a) and verify_password("demo1234", b)


@pytest.mark.parametrize("bad_hash", ["", "not-a-hash", "$argon2id$v=19$m=65536,t=3,p=4$xx$yy"])
def test_garbage_hash_does_not_verify_and_does_not_raise(bad_hash: str) -> None:
    assert verify_password("demo1234", bad_hash) is False


# ---- access tokens --------------------------------------------------------------------------


def test_jwt_round_trip() -> None:
    token = create_access_token(
        subject="alice", roles=["risk_officer", "auditor"], secret=SECRET, minutes=30
    )
    claims = decode_access_token(token, secret=SECRET)
    assert claims["sub"] == "alice"
    assert claims["roles"] == ["risk_officer", "auditor"]
    assert claims["exp"] - claims["iat"] == 30 * 60


def test_jwt_issued_at_given_now() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    token = create_access_token(subject="bob", roles=[], secret=SECRET, minutes=10, now=now)
    claims = decode_access_token(token, secret=SECRET)
    assert claims["iat"] == int(now.timestamp())
    assert claims["exp"] == int((now + timedelta(minutes=10)).timestamp())


def test_expired_jwt_is_refused() -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    token = create_access_token(subject="alice", roles=[], secret=SECRET, minutes=60, now=past)
    with pytest.raises(jwt.ExpiredSignatureError):
        decode_access_token(token, secret=SECRET)


def test_jwt_signed_with_another_secret_is_refused() -> None:
    token = create_access_token(subject="alice", roles=[], secret=OTHER_SECRET, minutes=60)
    with pytest.raises(jwt.InvalidSignatureError):
        decode_access_token(token, secret=SECRET)


def test_tampered_jwt_payload_is_refused() -> None:
    token = create_access_token(subject="alice", roles=["teller"], secret=SECRET, minutes=60)
    header, _payload, sig = token.split(".")
    forged = jwt.encode(
        {"sub": "alice", "roles": ["department_manager"], "exp": datetime.now(UTC)},
        "whatever-key-of-sufficient-length-000",
        algorithm="HS256",
    ).split(".")[1]
    with pytest.raises(jwt.PyJWTError):
        decode_access_token(f"{header}.{forged}.{sig}", secret=SECRET)


def test_unsigned_jwt_is_refused() -> None:
    exp = datetime.now(UTC) + timedelta(hours=1)
    # (None is the key of alg "none"; PyJWT's annotations, precise once cryptography is
    # installed, do not list it.)
    token = jwt.encode({"sub": "alice", "roles": [], "exp": exp}, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(jwt.PyJWTError):
        decode_access_token(token, secret=SECRET)


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_jwt_without_required_claim_is_refused(missing: str) -> None:
    claims = {"sub": "alice", "roles": [], "exp": datetime.now(UTC) + timedelta(hours=1)}
    del claims[missing]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(jwt.MissingRequiredClaimError):
        decode_access_token(token, secret=SECRET)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage_jwt_is_refused(garbage: str) -> None:
    with pytest.raises(jwt.PyJWTError):
        decode_access_token(garbage, secret=SECRET)


# ---- signing tokens -------------------------------------------------------------------------


def test_genuine_signing_token_maps_to_its_document() -> None:
    doc = uuid.uuid4()
    token = signing_token(doc, secret=SECRET)
    assert document_for_signing_token(token, secret=SECRET) == doc
    # Deterministic: recomputed on demand, never stored.
    assert signing_token(doc, secret=SECRET) == token
    assert doc.hex in token


def test_signing_tokens_differ_per_document_and_secret() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert signing_token(a, secret=SECRET) != signing_token(b, secret=SECRET)
    assert signing_token(a, secret=SECRET) != signing_token(a, secret=OTHER_SECRET)


def test_tampered_mac_is_refused() -> None:
    doc = uuid.uuid4()
    doc_hex, mac = signing_token(doc, secret=SECRET).split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    assert document_for_signing_token(f"{doc_hex}.{flipped}", secret=SECRET) is None
    assert document_for_signing_token(f"{doc_hex}.{mac[:-1]}", secret=SECRET) is None
    assert document_for_signing_token(f"{doc_hex}.{mac}x", secret=SECRET) is None
    assert document_for_signing_token(f"{doc_hex}.", secret=SECRET) is None
    assert document_for_signing_token(doc_hex, secret=SECRET) is None


def test_mac_of_another_document_is_refused() -> None:
    doc, other = uuid.uuid4(), uuid.uuid4()
    _, mac = signing_token(doc, secret=SECRET).split(".")
    assert document_for_signing_token(f"{other.hex}.{mac}", secret=SECRET) is None


def test_token_made_with_another_secret_is_refused() -> None:
    doc = uuid.uuid4()
    assert (
        document_for_signing_token(signing_token(doc, secret=OTHER_SECRET), secret=SECRET) is None
    )


@pytest.mark.parametrize(
    "garbage",
    ["", ".", "garbage", "not-a-uuid.abc", "x.y.z", "0" * 31 + ".abc", "%00.%00", "../../etc"],
)
def test_garbage_signing_token_is_refused(garbage: str) -> None:
    assert document_for_signing_token(garbage, secret=SECRET) is None


@pytest.mark.parametrize("mac", ["é", "签名", "\u00a0" * 43, "ａｂｃ"])
def test_non_ascii_signing_token_is_refused_not_crashing(mac: str) -> None:
    """A link token is attacker-controlled text: non-ASCII must be a plain refusal (None),
    not a TypeError from ``hmac.compare_digest`` (which would surface as a 500)."""
    doc = uuid.uuid4()
    assert document_for_signing_token(f"{doc.hex}.{mac}", secret=SECRET) is None


# ---- one-time signing codes ------------------------------------------------------------------


def test_signing_codes_are_six_digits_and_vary() -> None:
    from loanops.security import new_signing_code

    codes = {new_signing_code(6) for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # from a CSPRNG: repeats are rare


def test_a_code_is_stored_as_an_hmac_bound_to_its_row_and_the_secret() -> None:
    from loanops.security import signing_code_hash, signing_code_matches

    row, other_row = uuid.uuid4(), uuid.uuid4()
    stored = signing_code_hash("123456", code_id=row, secret=SECRET)
    assert "123456" not in stored and len(stored) == 64
    assert signing_code_matches("123456", stored, code_id=row, secret=SECRET)
    assert not signing_code_matches("123457", stored, code_id=row, secret=SECRET)
    assert not signing_code_matches("123456", stored, code_id=other_row, secret=SECRET)
    assert not signing_code_matches("123456", stored, code_id=row, secret=OTHER_SECRET)
