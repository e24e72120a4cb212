"""OAuth2 password flow: a username and password for a short access token and a refresh token;
refresh (rotating) and logout. The rules are ``loanops.auth``'s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, public, require
from api.errors import unprocessable
from domain.permissions import Action
from loanops import auth as auth_rules
from loanops.auth import AuthRefused, Issued

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    roles: list[str]
    # Seconds the access token is valid for; the refresh token gives the next one.
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=200)


class MeOut(BaseModel):
    username: str
    full_name: str
    roles: list[str]


def _out(issued: Issued) -> TokenOut:
    return TokenOut(
        access_token=issued.access_token,
        roles=issued.roles,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        refresh_expires_in=issued.refresh_expires_in,
    )


def _refused(exc: AuthRefused) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return HTTPException(status_code=exc.status, detail=exc.detail, headers=headers)


# A username is at most 64 characters (users.username); a password longer than this is no
# password anyone types, and hashing megabytes would be work for nothing.
MAX_LOGIN_FIELD = 256


@router.post(
    "/token",
    response_model=TokenOut,
    dependencies=[public(Action.AUTHENTICATE)],
    responses={
        401: {"description": "wrong username or password"},
        423: {"description": "the username is locked"},
        429: {"description": "too many failures from this address"},
    },
)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TokenOut:
    """Open to all. Wrong username and wrong password get the same answer in the same time;
    after ``login_max_failures`` failures in a row the username is locked (423, Retry-After),
    after ``login_max_failures_per_address`` the client address is held back (429). A NUL
    byte or an overlong value is a 422 naming the field (nothing is looked up)."""
    for field, value in (("username", form.username), ("password", form.password)):
        if "\x00" in value:
            raise unprocessable(field, "must not contain a NUL byte")
        if len(value) > MAX_LOGIN_FIELD:
            raise unprocessable(field, f"must be at most {MAX_LOGIN_FIELD} characters")
    try:
        issued = auth_rules.login(
            session,
            settings,
            username=form.username,
            password=form.password,
            now=clock(),
            address=request.client.host if request.client else None,
        )
    except AuthRefused as exc:
        raise _refused(exc) from None
    return _out(issued)


@router.post(
    "/refresh",
    response_model=TokenOut,
    dependencies=[public(Action.REFRESH_TOKEN)],
    responses={401: {"description": "unknown, used, expired or revoked refresh token"}},
)
def refresh(
    body: RefreshIn, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> TokenOut:
    """Open to the holder of a refresh token: a new access token and the next refresh token (the
    one given is used up; presenting it again revokes the whole login)."""
    try:
        issued = auth_rules.refresh(session, settings, token=body.refresh_token, now=clock())
    except AuthRefused as exc:
        raise _refused(exc) from None
    return _out(issued)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(
    session: SessionDep, clock: ClockDep, user: CurrentUserInfo = require(Action.LOGOUT)
) -> Response:
    """Any logged-in role: ends the login this access token belongs to — its refresh tokens and
    its access tokens are refused from now on."""
    auth_rules.logout(session, username=user.username, session_id=user.session_id, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeOut)
def me(user: CurrentUserInfo = require(Action.READ_SELF)) -> MeOut:
    """Any logged-in role."""
    return MeOut(username=user.username, full_name=user.full_name, roles=list(user.roles))
