"""A NUL byte in the URL path or the query string is a 422 naming where it is, before any route
runs (PostgreSQL cannot store or compare one: it was a 500). Request bodies are checked by the
request models (``api.schemas.Strict``); the login form by its route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response, status
from fastapi.responses import JSONResponse


def _refused(loc: list[str]) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"type": "value_error", "loc": loc, "msg": "must not contain a NUL byte"}]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def refuse_nul_bytes(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if "\x00" in request.url.path or "\x00" in request.scope.get("path", ""):
        return _refused(["path"])
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            return _refused(["query", name.replace("\x00", "")])
    return await call_next(request)
