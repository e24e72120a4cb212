"""The SMS gateway: the ``SmsGateway`` interface and its HTTP adapter.

One call is one attempt. Retries belong to the notice relay (``loanops.notice_relay``): it backs
off and tries again on ``SmsUnavailable`` (timeout, refused connection, 5xx, 408, 429 — with the
gateway's ``Retry-After`` when given) with the same idempotency key, so a message the gateway
took but whose answer was lost is never sent twice; ``SmsRejected`` (another 4xx: a bad number,
a key reused for another message) and ``SmsBadAnswer`` are not worth retrying.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import httpx

DEFAULT_TIMEOUT = 5.0  # seconds, for each of connect, pool wait, send, and each read


class SmsError(Exception):
    """A send that the gateway did not accept."""

    retryable = False


class SmsUnavailable(SmsError):
    """The gateway did not answer in time or could not take the message now. ``retry_after``
    is the wait it asked for (seconds), when it named one."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SmsRejected(SmsError):
    """The gateway refused the message itself (a 4xx other than 408/429)."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class SmsBadAnswer(SmsError):
    """The gateway answered 2xx without a message id."""


@dataclass(frozen=True)
class SmsAccepted:
    message_id: str
    status: str


@dataclass(frozen=True)
class ReceivedSms:
    """One message on a sandbox handset."""

    message_id: str
    text: str
    received_at: str


class SmsGateway(Protocol):
    def send(
        self, to: str, text: str, *, idempotency_key: str, callback_url: str | None = None
    ) -> SmsAccepted:
        """Hand one message to the gateway. The same ``idempotency_key`` returns the same
        message id and never sends twice, so retries must reuse it. Raises ``SmsError``."""
        ...


class HttpSmsGateway:
    """``SmsGateway`` over HTTP (``POST {base_url}/v1/messages``), one attempt per call.

    Thread-safe (one pooled ``httpx.Client``). Close it when done, or use it as a context
    manager.
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

    def send(
        self, to: str, text: str, *, idempotency_key: str, callback_url: str | None = None
    ) -> SmsAccepted:
        payload: dict[str, Any] = {"to": to, "text": text}
        if callback_url:
            payload["callback_url"] = callback_url
        where = f"{self.base_url}/v1/messages"
        try:
            response = self._client.post(
                "/v1/messages",
                json=payload,
                headers={"Idempotency-Key": idempotency_key},
                timeout=httpx.Timeout(self.timeout),
            )
        except httpx.TimeoutException as exc:
            raise SmsUnavailable(
                f"no answer from {where} within {self.timeout:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise SmsUnavailable(f"cannot reach {where}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise SmsUnavailable(
                f"{where} answered HTTP {status}",
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise SmsRejected(
                f"{where} refused the message: HTTP {status} {response.text[:200]}",
                status_code=status,
            )
        try:
            body = response.json()
            return SmsAccepted(message_id=str(body["message_id"]), status=str(body["status"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SmsBadAnswer(f"{where} answered without a message id: {exc}") from exc

    def received(self, phone: str) -> list[ReceivedSms]:
        """The sandbox handset of ``phone``, newest first (demo and tests: one-time codes)."""
        response = self._client.get(
            "/v1/messages", params={"to": phone}, timeout=httpx.Timeout(self.timeout)
        )
        response.raise_for_status()
        return [
            ReceivedSms(m["message_id"], m["text"], m["received_at"])
            for m in response.json()["messages"]
        ]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSmsGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delay form; an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


SIGNATURE_HEADER = "X-Sms-Signature"


def receipt_signature(body: bytes, secret: str) -> str:
    """The value of the gateway's ``X-Sms-Signature`` header for a receipt ``body``:
    ``sha256=`` and the hex HMAC-SHA256 of the raw body under the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_receipt(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether ``signature`` is the receipt's (compared in constant time)."""
    return signature is not None and hmac.compare_digest(
        receipt_signature(body, secret).encode(), signature.encode()
    )
