"""Shared API dependencies: settings, database session, Temporal client, current user, and the
action each route declares (checked against ``domain.permissions.MATRIX``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import anyio.from_thread
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from temporalio.client import Client

from api.audit_events import record_disabled_attempt
from api.errors import DependencyUnavailable
from domain.permissions import (
    BANK,
    BORROWER,
    PUBLIC,
    SMS_GATEWAY,
    Action,
    allowed_principals,
    is_allowed,
    refusal,
    sees_only_own,
)
from loanops.auth import active_user
from loanops.documents import DocumentStore, FileSystemDocumentStore
from loanops.security import decode_access_token
from loanops.settings import Settings
from models.tables import User

T = TypeVar("T")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token")

# How long the API waits for Temporal to accept a connection, and for a query (a read of a
# loan's live state) to be answered by a worker, before answering 503.
CONNECT_TIMEOUT = timedelta(seconds=5)
QUERY_TIMEOUT = timedelta(seconds=5)


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        # Closing rolls back what the handler left open; when the database went away after the
        # handler's work (stopped, restarted), that rollback fails on a dead connection, which
        # the pool then discards. Nothing is left to undo, and the handler's answer (or its own
        # error) stands: raised here, the error would drop the connection without one.
        with contextlib.suppress(DBAPIError):
            session.close()


class TemporalGateway:
    """Calls into Temporal from sync route handlers, on the app's event loop.

    Route handlers are plain ``def`` (they run in the threadpool and use sync sessions); the
    Temporal client is async and bound to the loop that created it in the lifespan.

    At most ``max_calls`` threads wait on Temporal at once (``settings.api_temporal_calls``):
    a call beyond them is refused at once (503, Retry-After) instead of taking a thread that
    the database-only routes need, however slow Temporal or its workers are.
    """

    def __init__(
        self,
        client: Client | None,
        connect: Callable[[], Awaitable[Client]],
        *,
        max_calls: int = 32,
    ) -> None:
        self._client = client
        self._connect = connect
        # Concurrent first calls wait for one connection instead of each opening its own.
        self._connecting = asyncio.Lock()
        self.max_calls = max_calls
        self._slots = threading.BoundedSemaphore(max_calls)
        self._lock = threading.Lock()
        self.in_flight = 0  # calls under way (read by tests and by nothing else)

    async def client(self) -> Client:
        """The client, connected on first use within ``CONNECT_TIMEOUT`` (a Temporal that does
        not answer is a 503 for the caller, not a request hanging)."""
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    try:
                        self._client = await asyncio.wait_for(
                            self._connect(), CONNECT_TIMEOUT.total_seconds()
                        )
                    except (TimeoutError, RuntimeError, OSError) as exc:
                        raise DependencyUnavailable(
                            "Temporal", f"cannot connect ({type(exc).__name__})"
                        ) from exc
        return self._client

    def run(self, fn: Callable[[Client], Awaitable[T]]) -> T:
        async def call() -> T:
            return await fn(await self.client())

        if not self._slots.acquire(blocking=False):
            raise DependencyUnavailable(
                "Temporal", f"all {self.max_calls} calls the API allows are under way"
            )
        try:
            with self._lock:
                self.in_flight += 1
            return anyio.from_thread.run(call)
        finally:
            with self._lock:
                self.in_flight -= 1
            self._slots.release()


Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def get_clock(request: Request) -> Clock:
    """The API's notion of now (the wall clock; tests align it with the Temporal test server)."""
    clock: Clock = request.app.state.clock
    return clock


def get_document_store(request: Request) -> DocumentStore:
    """The store given to ``create_app``, else the folder of ``settings.document_dir``."""
    store: DocumentStore | None = getattr(request.app.state, "document_store", None)
    if store is None:
        settings: Settings = request.app.state.settings
        store = FileSystemDocumentStore(settings.document_dir)
    return store


def get_temporal(request: Request) -> TemporalGateway:
    gateway: TemporalGateway = request.app.state.temporal
    return gateway


@dataclass(frozen=True)
class CurrentUserInfo:
    username: str
    full_name: str
    roles: tuple[str, ...]
    # The login the access token belongs to (None for tokens minted without one).
    session_id: str | None = None

    def can(self, action: Action) -> bool:
        """Whether the matrix lets any of this user's roles do ``action``."""
        return is_allowed(self.roles, action)

    def sees_only_own(self) -> bool:
        """Whether the object rules limit this user to their own applications and loans."""
        return sees_only_own(self.roles)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
TemporalDep = Annotated[TemporalGateway, Depends(get_temporal)]
ClockDep = Annotated[Clock, Depends(get_clock)]
DocumentStoreDep = Annotated[DocumentStore, Depends(get_document_store)]


def get_current_user(
    token: Annotated[str, Depends(oauth2_scheme)],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> CurrentUserInfo:
    unauthorized = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="invalid or expired token",
        headers={"WWW-Authenticate": "Bearer"},
    )
    try:
        claims = decode_access_token(token, secret=settings.secret_key, now=clock())
    except jwt.PyJWTError:
        raise unauthorized from None
    user = active_user(session, claims)
    if user is None:  # disabled, password reset, logged out: refused at once
        known = session.exec(select(User).where(User.username == claims["sub"])).first()
        if known is not None and not known.is_active:
            record_disabled_attempt(session, username=known.username, via="token", at=clock())
        raise unauthorized
    return CurrentUserInfo(
        user.username, user.full_name, tuple(user.roles), session_id=claims.get("sid")
    )


CurrentUser = Annotated[CurrentUserInfo, Depends(get_current_user)]


# Every gate dependency made below, with the action it declares (read by ``declared_actions``).
_DECLARED: dict[Callable[..., Any], Action] = {}


def _declare(action: Action, gate: Callable[..., Any]) -> Any:
    _DECLARED[gate] = action
    return Depends(gate)


def require(action: Action) -> Any:
    """A logged-in user whose roles may do ``action`` (403 with ``refusal(action)`` otherwise)."""
    if PUBLIC in allowed_principals(action):
        raise ValueError(f"{action.value} is public in the matrix: declare it with public()")

    def check(user: CurrentUser) -> CurrentUserInfo:
        if not user.can(action):
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=refusal(action))
        return user

    return _declare(action, check)


def _marker(action: Action, principal: str) -> Any:
    if principal not in allowed_principals(action):
        raise ValueError(f"{action.value} is not open to {principal} in the matrix")

    async def declared() -> None:
        """Checks nothing: the route authenticates by other means (none, or a signing token).
        ``async``: FastAPI calls it on the event loop, so /healthz needs no thread."""

    return _declare(action, declared)


def public(action: Action) -> Any:
    """Declares a route open to anyone; ``action`` must be PUBLIC in the matrix."""
    return _marker(action, PUBLIC)


def borrower(action: Action) -> Any:
    """Declares a borrower's route, authenticated by the signing token in its path; ``action``
    must be open to BORROWER in the matrix."""
    return _marker(action, BORROWER)


def sms_gateway(action: Action) -> Any:
    """Declares the SMS gateway's route, authenticated by the HMAC signature of its body;
    ``action`` must be open to SMS_GATEWAY in the matrix."""
    return _marker(action, SMS_GATEWAY)


def bank(action: Action) -> Any:
    """Declares the bank's callback route, authenticated by the HMAC signature of its body;
    ``action`` must be open to BANK in the matrix."""
    return _marker(action, BANK)


def declared_actions(dependant: Dependant) -> list[Action]:
    """The actions declared anywhere in a route's dependency tree (exactly one is expected)."""
    found = [_DECLARED[dependant.call]] if dependant.call in _DECLARED else []
    for sub in dependant.dependencies:
        found.extend(declared_actions(sub))
    return found
