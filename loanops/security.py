"""Passwords (argon2), access tokens (JWT), the borrower's one-time signing tokens (HMAC) and
the one-time codes that prove the signer holds the borrower's phone."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password with the same parameters as the real ones."""
    return _hasher.hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """The work of one password verification, for a username that does not exist (or cannot
    log in): known and unknown usernames then take the same time (bench/login_timing.py)."""
    verify_password(password, _dummy_hash())


def create_access_token(
    *,
    subject: str,
    roles: list[str],
    secret: str,
    minutes: int,
    now: datetime | None = None,
    version: int = 0,
    session_id: uuid.UUID | None = None,
) -> str:
    """A signed access token. ``version`` is the user's token version when minted (a disabled
    user's or a reset password's bump refuses it); ``session_id`` the login it belongs to (its
    logout refuses it)."""
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "roles": roles,
        "iat": issued,
        "exp": issued + timedelta(minutes=minutes),
        "ver": version,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def new_refresh_token() -> str:
    """An opaque refresh token: 32 random bytes."""
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    """What is stored of a refresh token (its SHA-256: the token has 256 bits of entropy, so a
    plain hash cannot be searched)."""
    return hashlib.sha256(token.encode()).hexdigest()


def decode_access_token(token: str, *, secret: str, now: datetime | None = None) -> dict[str, Any]:
    """The token's claims; raises ``jwt.PyJWTError`` when it is invalid or expired.

    Expiry is judged by ``now``, the API's clock (the wall clock unless given): the same clock
    that issued the token, so a token is never "from the future" for the API that minted it."""
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "exp"], "verify_exp": False, "verify_iat": False},
    )
    at = (now or datetime.now(UTC)).timestamp()
    if not isinstance(claims["exp"], int | float) or claims["exp"] <= at:
        raise jwt.ExpiredSignatureError("Signature has expired")
    return claims


def _mac(secret: str, document_id: uuid.UUID) -> str:
    digest = hmac.new(
        secret.encode(), f"sign-contract:{document_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signing_token(document_id: uuid.UUID, *, secret: str) -> str:
    """The borrower's link token for one contract: unforgeable without the secret, and never
    stored anywhere (not in the database, not in workflow history); it is recomputed on demand."""
    return f"{document_id.hex}.{_mac(secret, document_id)}"


def document_for_signing_token(token: str, *, secret: str) -> uuid.UUID | None:
    """The contract's document id if ``token`` is genuine, else None."""
    doc_hex, _, mac = token.partition(".")
    try:
        document_id = uuid.UUID(hex=doc_hex)
    except ValueError:
        return None
    expected = _mac(secret, document_id).encode()
    return document_id if hmac.compare_digest(mac.encode(), expected) else None


def new_signing_code(digits: int) -> str:
    """A one-time code of ``digits`` decimal digits from the system's CSPRNG."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def signing_code_hash(code: str, *, code_id: uuid.UUID, secret: str) -> str:
    """What is stored of a code: an HMAC keyed by the server secret and bound to the code's
    row, so a copy of the table alone cannot be searched for the six digits."""
    return hmac.new(
        secret.encode(), f"signing-code:{code_id}:{code}".encode(), hashlib.sha256
    ).hexdigest()


def signing_code_matches(code: str, stored_hash: str, *, code_id: uuid.UUID, secret: str) -> bool:
    expected = signing_code_hash(code, code_id=code_id, secret=secret)
    return hmac.compare_digest(expected.encode(), stored_hash.encode())


def signing_link(document_id: uuid.UUID, *, secret: str, base_url: str) -> str:
    """The borrower's signing link for one contract (sent to the borrower's phone only)."""
    return f"{base_url.rstrip('/')}/api/v1/sign/{signing_token(document_id, secret=secret)}"
