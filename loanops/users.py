"""Staff accounts: add, disable, enable, change roles, reset a password, list. One module for
the CLI (``loanops user …``) and the department manager's API (``/api/v1/users``).

Decisions (issue 11):
- Usernames are 2–64 characters of lower-case letters, digits, ``.``, ``_`` and ``-``.
- Every change is audited (``user.created``, ``user.disabled``, ``user.enabled``,
  ``user.roles_changed``, ``user.password_reset``) with the actor and before/after — never a
  password or its hash.
- Disabling a user or resetting their password bumps their token version and revokes their
  sessions: their access and refresh tokens stop working at once. A role change takes effect at
  the next request (roles are read from the database on each one), so sessions stay.
- The last active department manager can be neither disabled nor stripped of that role (nobody
  could administer users any more); a 409 says so.
- Enabling a user or resetting their password clears a login lock on their username.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, select

from domain.lifecycle import Role
from domain.passwords import password_problem
from loanops.auth import revoke_sessions, throttle_key
from loanops.security import hash_password
from models.audit import append_audit
from models.tables import LoginThrottle, User

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
ADMIN_ROLE = Role.DEPARTMENT_MANAGER.value


class UserInputError(ValueError):
    """A refused value: the field and the reason (422)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UserConflict(Exception):
    """A change that contradicts the accounts as they are (409)."""


class UnknownUser(LookupError):
    """No such username (404)."""


def check_roles(roles: Iterable[str]) -> list[str]:
    known = {r.value for r in Role}
    chosen = sorted(set(roles))
    if not chosen:
        raise UserInputError("roles", "at least one role is needed")
    unknown = [r for r in chosen if r not in known]
    if unknown:
        raise UserInputError(
            "roles", f"unknown role {', '.join(unknown)}; one of {', '.join(sorted(known))}"
        )
    return chosen


def check_password(password: str, username: str) -> None:
    problem = password_problem(password, username=username)
    if problem:
        raise UserInputError("password", problem)


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise UnknownUser(f"user {username} does not exist")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.username)).all())


def _audit(
    session: Session, user: User, *, action: str, actor: str, at: datetime, **detail: object
) -> None:
    append_audit(
        session,
        key=f"user/{user.username}/{action}/{uuid.uuid4().hex}",
        actor=actor,
        action=action,
        occurred_at=at,
        detail={"username": user.username, **detail},
    )


def _clear_lock(session: Session, username: str) -> None:
    throttle = session.get(LoginThrottle, throttle_key(username))
    if throttle is not None:
        throttle.failures = 0
        throttle.locked_until = None
        session.add(throttle)


def _other_active_admins(session: Session, username: str) -> int:
    return sum(
        1
        for u in session.exec(select(User).where(User.is_active == True)).all()  # noqa: E712
        if u.username != username and ADMIN_ROLE in u.roles
    )


def create_user(
    session: Session,
    *,
    username: str,
    full_name: str,
    roles: Iterable[str],
    password: str,
    actor: str,
    at: datetime,
) -> User:
    if not USERNAME.match(username):
        raise UserInputError(
            "username", "2-64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    if not full_name.strip() or len(full_name) > 128:
        raise UserInputError("full_name", "must be 1-128 characters")
    chosen = check_roles(roles)
    check_password(password, username)
    if session.exec(select(User.id).where(User.username == username)).first():
        raise UserConflict(f"user {username} already exists")
    user = User(
        username=username,
        full_name=full_name.strip(),
        roles=chosen,
        password_hash=hash_password(password),
        created_at=at,
    )
    session.add(user)
    _audit(session, user, action="user.created", actor=actor, at=at, roles=chosen)
    session.commit()
    return user


def set_active(session: Session, *, username: str, active: bool, actor: str, at: datetime) -> User:
    user = get_user(session, username)
    if user.is_active == active:
        return user
    if not active and ADMIN_ROLE in user.roles and not _other_active_admins(session, username):
        raise UserConflict(f"{username} is the last active {ADMIN_ROLE}: add another one first")
    user.is_active = active
    if active:
        _clear_lock(session, username)
    else:
        user.token_version += 1
        revoke_sessions(session, username, reason="disabled", now=at)
    session.add(user)
    _audit(
        session,
        user,
        action="user.enabled" if active else "user.disabled",
        actor=actor,
        at=at,
        before={"is_active": not active},
        after={"is_active": active},
    )
    session.commit()
    return user


def set_roles(
    session: Session, *, username: str, roles: Iterable[str], actor: str, at: datetime
) -> User:
    user = get_user(session, username)
    chosen = check_roles(roles)
    before = sorted(user.roles)
    if before == chosen:
        return user
    if (
        ADMIN_ROLE in before
        and ADMIN_ROLE not in chosen
        and user.is_active
        and not _other_active_admins(session, username)
    ):
        raise UserConflict(f"{username} is the last active {ADMIN_ROLE}: add another one first")
    user.roles = chosen
    session.add(user)
    _audit(
        session,
        user,
        action="user.roles_changed",
        actor=actor,
        at=at,
        before={"roles": before},
        after={"roles": chosen},
    )
    session.commit()
    return user


def reset_password(
    session: Session, *, username: str, password: str, actor: str, at: datetime
) -> User:
    user = get_user(session, username)
    check_password(password, username)
    user.password_hash = hash_password(password)
    user.token_version += 1
    revoke_sessions(session, username, reason="password reset", now=at)
    _clear_lock(session, username)
    session.add(user)
    _audit(session, user, action="user.password_reset", actor=actor, at=at)
    session.commit()
    return user
