"""Logging in, refreshing and logging out; the check every authenticated request passes.

Decisions (issue 11):
- Access tokens are short (``access_token_minutes``, 15) and carry the user's token version and
  their login (session) id; each request re-reads the user: a disabled user, a reset password
  (version bumped) or a revoked session (logout, reuse of a refresh token) is refused at once.
- A refresh token is used once: each refresh marks it used and issues the next one of the same
  session; a used token presented again means a copy exists, so the whole session is revoked.
  A session lasts at most ``refresh_token_minutes`` (12 h) from its login, then log in again.
- Throttling is per username, known or not (the lock must not tell which usernames exist):
  ``login_max_failures`` (5) consecutive failures lock it for ``login_lockout_minutes`` (15);
  while locked even the right password is refused (423 with Retry-After). A success clears the
  count; a reset password or re-enabled account clears the lock. Counts live in the database.
- Rate limiting per client address as well (password spraying across usernames):
  ``login_max_failures_per_address`` (20) consecutive failures from one address hold it back
  for ``login_lockout_minutes`` (429 with Retry-After); a success from it clears its count. Its
  row in ``login_throttles`` is keyed ``@<address>`` (usernames cannot start with ``@``).
- Unknown usernames and disabled accounts cost one argon2 verification, as a wrong password does.
- Every login, failure, lock, refresh-token reuse and logout is audited (never the password).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.audit_actions import DISABLED_USER_ATTEMPT
from loanops.security import (
    burn_password_check,
    create_access_token,
    new_refresh_token,
    refresh_token_hash,
    verify_password,
)
from loanops.settings import Settings
from models.audit import append_audit
from models.tables import AuthSession, LoginThrottle, RefreshToken, User


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    roles: list[str]
    expires_in: int
    refresh_expires_in: int


class AuthRefused(Exception):
    """A refused login or refresh: the HTTP status, the sentence, and when to retry."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


WRONG_CREDENTIALS = "incorrect username or password"


def throttle_key(username: str) -> str:
    return username.strip().casefold()[:64]


def _audit(session: Session, *, actor: str, action: str, at: datetime, **detail: Any) -> None:
    append_audit(
        session,
        key=f"auth/{action}/{uuid.uuid4().hex}",
        actor=actor[:64] or "-",
        action=action,
        occurred_at=at,
        detail=detail,
    )


def _seconds_until(then: datetime, now: datetime) -> int:
    return max(1, math.ceil((then - now).total_seconds()))


def _issue(
    session: Session, settings: Settings, user: User, auth: AuthSession, now: datetime
) -> Issued:
    token = new_refresh_token()
    expires = auth.created_at + timedelta(minutes=settings.refresh_token_minutes)
    session.add(
        RefreshToken(
            token_hash=refresh_token_hash(token),
            session_id=auth.id,
            issued_at=now,
            expires_at=expires,
        )
    )
    access = create_access_token(
        subject=user.username,
        roles=list(user.roles),
        secret=settings.secret_key,
        minutes=settings.access_token_minutes,
        now=now,
        version=user.token_version,
        session_id=auth.id,
    )
    return Issued(
        access_token=access,
        refresh_token=token,
        roles=list(user.roles),
        expires_in=settings.access_token_minutes * 60,
        refresh_expires_in=_seconds_until(expires, now),
    )


def _count_failure(session: Session, key: str, now: datetime) -> int:
    """One more consecutive failure for ``key`` (an atomic increment: concurrent API processes
    do not lose counts); returns the count."""
    for _ in range(3):
        done = session.exec(
            update(LoginThrottle)
            .where(col(LoginThrottle.username) == key)
            .values(failures=col(LoginThrottle.failures) + 1, last_failure_at=now)
        )
        if done.rowcount:
            break
        try:
            with session.begin_nested():
                session.add(LoginThrottle(username=key, failures=1, last_failure_at=now))
            break
        except IntegrityError:
            continue  # another process inserted it first: increment theirs
    row = session.get(LoginThrottle, key, populate_existing=True)
    return row.failures if row else 1


def address_key(address: str | None) -> str | None:
    return f"@{address}"[:64] if address else None


def _lock(session: Session, key: str, until: datetime) -> None:
    session.exec(
        update(LoginThrottle)
        .where(col(LoginThrottle.username) == key)
        .values(failures=0, locked_until=until)
    )


def login(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    now: datetime,
    address: str | None = None,
) -> Issued:
    by_address = address_key(address) if settings.login_max_failures_per_address else None
    if by_address is not None:
        held = session.get(LoginThrottle, by_address)
        if held and held.locked_until and held.locked_until > now:
            _audit(
                session,
                actor=throttle_key(username),
                action="auth.login_refused",
                at=now,
                reason="address held back",
                address=address,
            )
            session.commit()
            raise AuthRefused(
                429,
                "too many failed logins from this address: try again later",
                _seconds_until(held.locked_until, now),
            )
    key = throttle_key(username)
    throttle = session.get(LoginThrottle, key)
    if throttle and throttle.locked_until and throttle.locked_until > now:
        _audit(session, actor=key, action="auth.login_refused", at=now, reason="locked")
        session.commit()
        raise AuthRefused(
            423,
            "too many failed logins: locked for now",
            _seconds_until(throttle.locked_until, now),
        )
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None:
        burn_password_check(password)
        matches, reason = False, "unknown_user"
    else:
        matches = verify_password(password, user.password_hash)
        reason = "wrong_password" if not matches else ("disabled" if not user.is_active else "")
    if user is not None and matches and user.is_active:
        for cleared in (throttle, session.get(LoginThrottle, by_address) if by_address else None):
            if cleared is not None:
                cleared.failures = 0
                cleared.locked_until = None
                session.add(cleared)
        auth = AuthSession(username=user.username, created_at=now)
        session.add(auth)
        session.flush()
        issued = _issue(session, settings, user, auth, now)
        _audit(session, actor=user.username, action="auth.login", at=now, login_id=str(auth.id))
        session.commit()
        return issued
    failures = _count_failure(session, key, now)
    _audit(
        session,
        actor=key,
        # A disabled account's attempt is its own line in the inspection report.
        action=DISABLED_USER_ATTEMPT if reason == "disabled" else "auth.login_failed",
        at=now,
        reason=reason,
        failures=failures,
        address=address,
    )
    until = now + timedelta(minutes=settings.login_lockout_minutes)
    if by_address is not None:
        from_address = _count_failure(session, by_address, now)
        if from_address >= settings.login_max_failures_per_address:
            _lock(session, by_address, until)
            _audit(
                session,
                actor=key,
                action="auth.address_held_back",
                at=now,
                address=address,
                until=until.isoformat(),
            )
    if failures >= settings.login_max_failures:
        _lock(session, key, until)
        _audit(session, actor=key, action="auth.locked", at=now, until=until.isoformat())
        session.commit()
        raise AuthRefused(
            423,
            f"{failures} failed logins in a row: locked for "
            f"{settings.login_lockout_minutes} minutes",
            _seconds_until(until, now),
        )
    session.commit()
    raise AuthRefused(401, WRONG_CREDENTIALS)


def revoke_sessions(session: Session, username: str, *, reason: str, now: datetime) -> int:
    """Revoke every open session of ``username`` (their refresh tokens and access tokens)."""
    done = session.exec(
        update(AuthSession)
        .where(col(AuthSession.username) == username, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(done.rowcount or 0)


def refresh(session: Session, settings: Settings, *, token: str, now: datetime) -> Issued:
    refused = AuthRefused(401, "invalid or expired refresh token")
    row = session.get(RefreshToken, refresh_token_hash(token))
    if row is None:
        raise refused
    auth = session.get(AuthSession, row.session_id)
    if auth is None or auth.revoked_at is not None:
        raise refused
    user = session.exec(select(User).where(User.username == auth.username)).first()
    if user is None or not user.is_active:
        raise refused
    # Mark it used, only if nobody did (two refreshes racing: one wins, the other is a reuse).
    claimed = session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.token_hash) == row.token_hash, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    if not claimed.rowcount:
        auth.revoked_at, auth.revoked_reason = now, "refresh token reused"
        session.add(auth)
        _audit(
            session,
            actor=auth.username,
            action="auth.refresh_reused",
            at=now,
            login_id=str(auth.id),
        )
        session.commit()
        raise refused
    if row.expires_at <= now:
        session.commit()
        raise refused
    issued = _issue(session, settings, user, auth, now)
    session.commit()
    return issued


def logout(session: Session, *, username: str, session_id: str | None, now: datetime) -> bool:
    """End the login the access token belongs to; True when one was open."""
    if not session_id:
        return False
    try:
        auth = session.get(AuthSession, uuid.UUID(session_id))
    except ValueError:
        return False
    if auth is None or auth.username != username or auth.revoked_at is not None:
        return False
    auth.revoked_at, auth.revoked_reason = now, "logout"
    session.add(auth)
    _audit(session, actor=username, action="auth.logout", at=now, login_id=str(auth.id))
    session.commit()
    return True


def active_user(session: Session, claims: dict[str, Any]) -> User | None:
    """The user an access token's claims stand for, if the token still holds: the user exists
    and is active, the token was minted under their current token version, and its login
    (``sid``, when it names one) has not been revoked."""
    user = session.exec(select(User).where(User.username == claims["sub"])).first()
    if user is None or not user.is_active:
        return None
    if claims.get("ver", 0) != user.token_version:
        return None
    sid = claims.get("sid")
    if sid is not None:
        try:
            auth = session.get(AuthSession, uuid.UUID(str(sid)))
        except ValueError:
            return None
        if auth is None or auth.revoked_at is not None or auth.username != user.username:
            return None
    return user
