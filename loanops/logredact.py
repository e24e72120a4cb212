"""No secret in a log: signing links, tokens, passwords and codes are redacted from every log
record of the API and the worker (uvicorn's access log writes request paths, and the borrower's
signing token is a path segment; httpx logs the URLs it calls).

``install()`` puts ``RedactingFilter`` on the loggers that write URLs (in place on the record,
before any handler sees it) and on the handlers present (the root's included), so records
propagated from other loggers are redacted too. Idempotent.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # The borrower's signing link: /api/v1/sign/<token>[/...]
    (re.compile(r"(/sign/)[^/?#\s\"']+"), rf"\g<1>{REDACTED}"),
    # Secrets passed as query or form parameters.
    (
        re.compile(
            r"((?:^|[?&;\s])(?:access_token|refresh_token|token|code|password|secret|signature)=)"
            r"[^&\s\"']*",
            re.IGNORECASE,
        ),
        rf"\g<1>{REDACTED}",
    ),
    # Authorization headers and bearer tokens written out.
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    # JSON fields carrying secrets.
    (
        re.compile(
            r"(\"(?:access_token|refresh_token|password|code|token)\"\s*:\s*\")[^\"]*",
            re.IGNORECASE,
        ),
        rf"\g<1>{REDACTED}",
    ),
)

# The loggers that write URLs: uvicorn's access and error logs, the HTTP clients.
URL_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "httpx", "httpcore")


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_arg(arg: Any) -> Any:
    """Strings redacted; numbers and None kept (``%d`` needs them); any other object (httpx
    logs its ``URL`` objects) replaced by its redacted text."""
    if isinstance(arg, str):
        return redact(arg)
    if arg is None or isinstance(arg, int | float):
        return arg
    return redact(str(arg))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and string arguments (keeping the argument tuple's shape:
    uvicorn's access formatter unpacks it); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        return True


_FILTER = RedactingFilter()


def _attach(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(_FILTER)


def install() -> None:
    for name in (None, *URL_LOGGERS):
        logger = logging.getLogger(name)
        _attach(logger)
        for handler in logger.handlers:
            _attach(handler)
