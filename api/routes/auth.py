"""OAuth2 password flow: a username and password for a bearer JWT."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlmodel import select

from api.audit_events import record_disabled_attempt, record_failed_login, record_login
from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, public, require
from domain.permissions import Action
from loanops.security import create_access_token, verify_password
from models.tables import User

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    roles: list[str]


class MeOut(BaseModel):
    username: str
    full_name: str
    roles: list[str]


@router.post("/token", response_model=TokenOut, dependencies=[public(Action.AUTHENTICATE)])
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TokenOut:
    """Open to all. Wrong username and wrong password get the same answer."""
    user = session.exec(select(User).where(User.username == form.username)).first()
    if user is None or not user.is_active or not verify_password(form.password, user.password_hash):
        # Recorded for the inspection report (never the password tried).
        if user is None:
            record_failed_login(session, username=form.username, reason="unknown_user", at=clock())
        elif not user.is_active:
            record_disabled_attempt(session, username=user.username, via="login", at=clock())
        else:
            record_failed_login(
                session, username=user.username, reason="wrong_password", at=clock()
            )
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    record_login(session, username=user.username, at=clock())
    token = create_access_token(
        subject=user.username,
        roles=list(user.roles),
        secret=settings.secret_key,
        minutes=settings.access_token_minutes,
    )
    return TokenOut(access_token=token, roles=list(user.roles))


@router.get("/me", response_model=MeOut)
def me(user: CurrentUserInfo = require(Action.READ_SELF)) -> MeOut:
    """Any logged-in role."""
    return MeOut(username=user.username, full_name=user.full_name, roles=list(user.roles))
