"""Passwords (argon2), access tokens (JWT) and the borrower's one-time signing tokens (HMAC)."""

from __future__ import annotations

import base64
import hashlib
import hmac
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


def create_access_token(
    *, subject: str, roles: list[str], secret: str, minutes: int, now: datetime | None = None
) -> str:
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "roles": roles,
        "iat": issued,
        "exp": issued + timedelta(minutes=minutes),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> dict[str, Any]:
    """The token's claims; raises ``jwt.PyJWTError`` when it is invalid or expired."""
    return jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})


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
