"""Every operation documents the statuses it can answer (issue 12), from what the route is:
a staff route (a login, and a role the matrix allows) may answer 401 and 403; a route naming an
object in its path 404 (unknown, or not the caller's to see); a staff write 409 (the object's state
refuses it); a route reading a body 400 (one that cannot be parsed); every route but liveness 503
with Retry-After (a dependency down). A route's own ``responses=`` descriptions are kept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.deps import declared_actions
from domain.permissions import MATRIX, NOT_STAFF

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Liveness answers whenever the process does: nothing else to document.
ALIVE_ONLY = frozenset({"/healthz"})


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
            }
        },
    }


def document(router: APIRouter) -> APIRouter:
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        add: dict[int, dict[str, Any]] = {}
        actions = declared_actions(route.dependant)
        staff = bool(actions) and not any(MATRIX[a] & NOT_STAFF for a in actions)
        if staff:
            add[401] = _error("not logged in, or the token expired or was revoked")
            add[403] = _error("the caller's roles may not do this")
        if route.body_field is not None:
            # FastAPI's answer to a body it cannot read (bytes that are not UTF-8, a broken
            # multipart form): before any field can be named.
            add[400] = _error("the body could not be parsed (not UTF-8 JSON, or a broken form)")
        if "{" in route.path:
            add[404] = _error("no such object, or not one the caller may see")
        if staff and (route.methods or set()) & WRITES:
            add[409] = _error("the object's state refuses it (named in detail)")
        if route.path not in ALIVE_ONLY:
            add[503] = _error("a dependency (database, Temporal, worker) is down; see Retry-After")
        for code, response in add.items():
            route.responses.setdefault(code, response)
    return router
