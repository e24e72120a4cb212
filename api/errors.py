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
