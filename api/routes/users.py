"""Staff accounts, for the department manager (the auditor reads them): create, list, disable,
enable, change roles, reset a password. The rules are ``loanops.users``'; a manager never
changes their own account here (409: another manager, or ``loanops user`` on the server)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentUserInfo, SessionDep, require
from api.errors import unprocessable
from domain.permissions import Action
from loanops import users as accounts
from models.tables import User

router = APIRouter(prefix="/users", tags=["users"])


class UserOut(BaseModel):
    username: str
    full_name: str
    roles: list[str]
    is_active: bool
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserOut]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserIn(_In):
    username: str = Field(max_length=64)
    full_name: str = Field(max_length=128)
    roles: list[str]
    password: str = Field(max_length=256)


class RolesIn(_In):
    roles: list[str]


class PasswordIn(_In):
    password: str = Field(max_length=256)


def _out(u: User) -> UserOut:
    return UserOut(
        username=u.username,
        full_name=u.full_name,
        roles=sorted(u.roles),
        is_active=u.is_active,
        created_at=u.created_at,
    )


def _apply(fn: Callable[[], User]) -> UserOut:
    try:
        return _out(fn())
    except accounts.UserInputError as exc:
        raise unprocessable(exc.field, exc.reason) from None
    except accounts.UnknownUser as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except accounts.UserConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


def _not_self(user: CurrentUserInfo, username: str) -> None:
    if user.username == username:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="you cannot change your own account: another department manager does, "
            "or `loanops user` on the server",
        )


@router.get("", response_model=UserPage)
def list_users(session: SessionDep, _: CurrentUserInfo = require(Action.LIST_USERS)) -> UserPage:
    """department_manager, auditor: every account, active or not (never a password hash)."""
    return UserPage(items=[_out(u) for u in accounts.list_users(session)])


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserIn,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.MANAGE_USERS),
) -> UserOut:
    """department_manager: a new account (password policy: 12+ characters, not the username,
    not a common password; 422 naming ``password``)."""
    return _apply(
        lambda: accounts.create_user(
            session,
            username=body.username,
            full_name=body.full_name,
            roles=body.roles,
            password=body.password,
            actor=user.username,
            at=clock(),
        )
    )


@router.post("/{username}/disable", response_model=UserOut)
def disable_user(
    username: str,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.MANAGE_USERS),
) -> UserOut:
    """department_manager: the account stops working at once, its tokens included."""
    _not_self(user, username)
    return _apply(
        lambda: accounts.set_active(
            session, username=username, active=False, actor=user.username, at=clock()
        )
    )


@router.post("/{username}/enable", response_model=UserOut)
def enable_user(
    username: str,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.MANAGE_USERS),
) -> UserOut:
    """department_manager: a disabled account may log in again (with a new login)."""
    _not_self(user, username)
    return _apply(
        lambda: accounts.set_active(
            session, username=username, active=True, actor=user.username, at=clock()
        )
    )


@router.put("/{username}/roles", response_model=UserOut)
def change_roles(
    username: str,
    body: RolesIn,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.MANAGE_USERS),
) -> UserOut:
    """department_manager: the account's roles (effective at its next request)."""
    _not_self(user, username)
    return _apply(
        lambda: accounts.set_roles(
            session, username=username, roles=body.roles, actor=user.username, at=clock()
        )
    )


@router.post("/{username}/password", response_model=UserOut)
def reset_password(
    username: str,
    body: PasswordIn,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.MANAGE_USERS),
) -> UserOut:
    """department_manager: a new password for the account; its current logins end."""
    _not_self(user, username)
    return _apply(
        lambda: accounts.reset_password(
            session, username=username, password=body.password, actor=user.username, at=clock()
        )
    )
