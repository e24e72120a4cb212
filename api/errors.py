"""One shape for a 422 raised by our own checks: the same ``detail`` list FastAPI gives for
request validation, so clients read every field error the same way."""

from __future__ import annotations

from fastapi import HTTPException, status


def unprocessable(field: str, reason: str, *, where: str = "body") -> HTTPException:
    """A 422 naming ``field`` (dotted path inside ``where``) and the reason."""
    loc = [where, *field.split(".")] if field else [where]
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"type": "value_error", "loc": loc, "msg": reason}],
    )


def unprocessable_from(message: str, *, where: str = "body") -> HTTPException:
    """A 422 from a domain message written ``"field: reason"`` (the convention of ``domain/``
    and of the workflow's validators)."""
    field, sep, reason = message.partition(": ")
    if not sep or " " in field:
        return unprocessable("", message, where=where)
    return unprocessable(field, reason, where=where)


# Seconds a client is told to wait before trying again when a dependency is down.
RETRY_AFTER_SECONDS = 5


class DependencyUnavailable(Exception):
    """A dependency (the database, Temporal, the worker) did not answer: a 503 with
    ``Retry-After``, never a 500. Nothing was changed by the request that met it (or what was
    is idempotent by its business key and a retry finds it)."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency} is unavailable: {reason}")
        self.dependency = dependency
        self.reason = reason


def service_unavailable(detail: str) -> HTTPException:
    """A 503 raised by a route (the same shape as the exception handlers' answers)."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=detail,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
