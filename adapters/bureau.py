"""The credit bureau: the ``CreditBureau`` interface and its HTTP adapter.

One call is one attempt. Retries belong to the Temporal activity that wraps the adapter: its
RetryPolicy retries ``BureauUnavailable`` and lists ``BureauBadAnswer`` and
``BureauRequestRefused`` in ``non_retryable_error_types`` (they are our bug or the bureau's,
and a retry would not change the answer). When the bureau stays down, the workflow opens a task
for the specialist; nothing here fails a loan.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

import httpx
from pydantic import TypeAdapter, ValidationError

from domain.bureau import BureauReport

PURPOSE = "loan_application"
DEFAULT_TIMEOUT = 3.0  # seconds, for each of connect, pool wait, send, and each read

_REPORT = TypeAdapter(BureauReport)


class BureauError(Exception):
    """A bureau call that returned neither a report nor "no record"."""

    retryable = False


class BureauUnavailable(BureauError):
    """The bureau did not answer in time or could not: timeout, connection refused or reset,
    HTTP 5xx, 408 or 429. Worth retrying later with the same ``request_id``."""

    retryable = True


class BureauBadAnswer(BureauError):
    """The bureau answered 2xx with something that is not a valid report or "no record"
    (malformed JSON, missing or impossible fields)."""


class BureauRequestRefused(BureauError):
    """The bureau refused the request itself (a 4xx other than 408/429): a malformed
    identity, a ``request_id`` reused for another identity, or a wrong URL (404)."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class CreditBureau(Protocol):
    def report(self, id_number: str, name: str, request_id: str) -> BureauReport | None:
        """The borrower's report, or None when the bureau has no record of them.

        ``request_id`` is the idempotency key: the same id returns the same report and counts
        one enquiry, so retries must reuse it. Raises ``BureauError`` subclasses.
        """
        ...


class HttpCreditBureau:
    """``CreditBureau`` over HTTP (``POST {base_url}/v1/reports``), one attempt per call.

    Thread-safe (one pooled ``httpx.Client``), for the worker's thread-pool activities. Close it
    when done, or use it as a context manager.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.Client(base_url=self.base_url, transport=transport)

    def report(self, id_number: str, name: str, request_id: str) -> BureauReport | None:
        payload = {
            "id_number": id_number,
            "name": name,
            "purpose": PURPOSE,
            "request_id": request_id,
        }
        where = f"{self.base_url}/v1/reports"
        try:
            # Connect, pool wait, write and every read are each bounded by `timeout`; a bureau that
            # accepts the request and never answers is a ReadTimeout after `timeout` seconds.
            response = self._client.post(
                "/v1/reports", json=payload, timeout=httpx.Timeout(self.timeout)
            )
        except httpx.TimeoutException as exc:
            raise BureauUnavailable(
                f"no answer from {where} within {self.timeout:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:  # refused, reset, DNS, protocol errors
            raise BureauUnavailable(f"cannot reach {where}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise BureauUnavailable(f"{where} answered HTTP {status}")
        if status >= 400:
            raise BureauRequestRefused(
                f"{where} refused the request: HTTP {status} {response.text[:200]}",
                status_code=status,
            )
        if status != 200:
            raise BureauBadAnswer(f"{where} answered HTTP {status}, expected 200")
        return _parse(response, where)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpCreditBureau:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _parse(response: httpx.Response, where: str) -> BureauReport | None:
    try:
        body = response.json()
    except ValueError as exc:
        raise BureauBadAnswer(f"{where} answered with invalid JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("found"), bool):
        raise BureauBadAnswer(f'{where} answered without a boolean "found": {str(body)[:200]}')
    if not body["found"]:
        return None
    try:
        return _REPORT.validate_python(body.get("report"))
    except ValidationError as exc:
        raise BureauBadAnswer(f"{where} answered with an invalid report: {exc}") from exc
