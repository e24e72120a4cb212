"""The bank: the ``BankGateway`` interface and its HTTP adapter ``HttpBank``.

The contract (what the payout workflow relies on)
-------------------------------------------------

- **One key per payout.** ``pay(order)`` sends a payment order under ``order.idempotency_key``
  (the loan's business key, e.g. ``payout-{application_no}``). The bank executes one order per
  key: sending the same order again returns the same order and never pays twice; the same key
  with another body is refused (``BankRequestRefused``, 409).
- **Accepted is not paid.** ``pay`` returns the accepted order, normally ``pending``; execution
  is asynchronous. The final outcome comes from ``status(key)`` (poll) or from a signed callback
  (``verify_callback``): ``executed`` with a ``value_date``, or ``rejected`` with a
  ``reason_code``.
- **Errors.** One call is one attempt; retries belong to the caller (a Temporal activity's
  RetryPolicy):

  - ``BankUnavailable`` (retryable): the request did not reach the bank or the bank said it did
    not process it — connection refused or reset before sending, HTTP 5xx, 408, 429.
  - ``BankOutcomeUnknown`` (a ``BankUnavailable``): the request was sent and no answer came in
    time (read timeout, connection dropped mid-answer). The bank may have executed it. Resolve
    it with ``status(key)`` **before sending again**: ``None`` means the bank never accepted the
    key (send it again, same key); otherwise follow that order. (Re-sending with the same key
    is safe too, but asking first keeps the audit trail honest.)
  - ``BankRejected(reason_code)``: a definitive business outcome, never retried — ``pay``
    raises it when the key's order was already rejected; for a pending order the rejection
    arrives through ``status`` (``PaymentStatus.raise_if_rejected()``) or the callback.
  - ``BankRequestRefused`` (4xx other than 408/429): our request is wrong (reused key, bad
    field, wrong URL); not retryable. ``BankBadAnswer``: a 2xx the adapter cannot read.

- **Never pay twice**: send with the loan's key; on ``BankOutcomeUnknown`` ask ``status``; on
  ``BankUnavailable`` send again with the same key; treat ``executed`` as paid (consume the
  funding reservation) and ``rejected`` as a refusal for a person to handle (release it).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Literal, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

DEFAULT_TIMEOUT = 5.0  # seconds, for each of connect, pool wait, send, and each read
CALLBACK_TOLERANCE_SECONDS = 300

PaymentState = Literal["pending", "executed", "rejected"]


class PaymentOrder(BaseModel):
    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    amount: Decimal
    payee_account: str
    payee_name: str
    payer_account: str
    reference: str
    callback_url: str | None = None


class PaymentStatus(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: str
    idempotency_key: str
    status: PaymentState
    amount: Decimal
    payer_account: str
    payee_account: str
    payee_name: str
    reference: str
    value_date: date | None = None
    reason_code: str | None = None
    reason: str | None = None

    def raise_if_rejected(self) -> PaymentStatus:
        if self.status == "rejected":
            raise BankRejected(self.reason_code or "REJECTED", self.reason or "", self)
        return self


class AccountCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    account: str
    result: Literal["belongs", "name_mismatch", "unknown"]
    status: Literal["active", "closed", "frozen"] | None = None


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    seq: int
    order_id: str
    key: str
    direction: Literal["out", "in"]
    amount: Decimal
    payer_account: str
    payee_account: str
    payee_name: str
    reference: str
    value_date: date
    # When the bank executed it (reconciliation's grace period); None from a bank without it.
    executed_at: datetime | None = None


class BankEvent(BaseModel):
    """A callback's body: the order as it is after the change."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str
    type: str
    order: PaymentStatus


class BankError(Exception):
    retryable = False


class BankUnavailable(BankError):
    """Not processed (or not known to be): connection refused, 5xx, 408, 429. Retry, same key."""

    retryable = True


class BankOutcomeUnknown(BankUnavailable):
    """Sent, but no answer in time: ask ``status(key)`` before sending again."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class BankRejected(BankError):
    """The bank definitively refused the order (a business outcome, not a failure)."""

    def __init__(self, reason_code: str, reason: str = "", status: PaymentStatus | None = None):
        super().__init__(f"{reason_code}: {reason}" if reason else reason_code)
        self.reason_code = reason_code
        self.reason = reason
        self.status = status


class BankRequestRefused(BankError):
    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class BankBadAnswer(BankError):
    pass


class CallbackSignatureInvalid(BankError):
    pass


class BankGateway(Protocol):
    def pay(self, order: PaymentOrder) -> PaymentStatus: ...

    def status(self, key: str) -> PaymentStatus | None: ...

    def verify_account(self, account: str, name: str) -> AccountCheck: ...

    def ledger(self, since: int = 0) -> list[LedgerEntry]: ...


class HttpBank:
    """``BankGateway`` over HTTP, one attempt per call; thread-safe (one pooled client)."""

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

    def pay(self, order: PaymentOrder) -> PaymentStatus:
        body = order.model_dump(mode="json", exclude={"idempotency_key"}, exclude_none=True)
        body["amount"] = f"{order.amount.quantize(Decimal('0.01'))}"
        where = f"{self.base_url}/v1/payments"
        try:
            response = self._client.post(
                "/v1/payments",
                json=body,
                headers={"Idempotency-Key": order.idempotency_key},
                timeout=httpx.Timeout(self.timeout),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise BankUnavailable(f"cannot reach {where}: {type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:  # sent (or maybe sent), no answer: read timeout...
            raise BankOutcomeUnknown(
                f"no answer from {where} within {self.timeout:g} s ({type(exc).__name__}); "
                f"ask status({order.idempotency_key!r}) before sending again",
                key=order.idempotency_key,
            ) from exc
        self._check(response, where)
        status = _parse(PaymentStatus, response, where)
        return status.raise_if_rejected()

    def status(self, key: str) -> PaymentStatus | None:
        where = f"{self.base_url}/v1/payments/{key}"
        response = self._get(f"/v1/payments/{key}", where)
        if response.status_code == 404:
            return None
        self._check(response, where)
        return _parse(PaymentStatus, response, where)

    def verify_account(self, account: str, name: str) -> AccountCheck:
        where = f"{self.base_url}/v1/accounts/verify"
        try:
            response = self._client.post(
                "/v1/accounts/verify",
                json={"account": account, "name": name},
                timeout=httpx.Timeout(self.timeout),
            )
        except httpx.TransportError as exc:  # a read: safe to repeat
            raise BankUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc
        self._check(response, where)
        return _parse(AccountCheck, response, where)

    def ledger(self, since: int = 0) -> list[LedgerEntry]:
        where = f"{self.base_url}/v1/ledger"
        response = self._get(f"/v1/ledger?since={since}", where)
        self._check(response, where)
        try:
            return [LedgerEntry.model_validate(e) for e in response.json()["entries"]]
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise BankBadAnswer(f"{where} answered with an invalid ledger: {exc}") from exc

    def _get(self, path: str, where: str) -> httpx.Response:
        try:
            return self._client.get(path, timeout=httpx.Timeout(self.timeout))
        except httpx.TransportError as exc:
            raise BankUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _check(response: httpx.Response, where: str) -> None:
        code = response.status_code
        if code >= 500 or code in (408, 429):
            raise BankUnavailable(f"{where} answered HTTP {code}")
        if code >= 400:
            raise BankRequestRefused(
                f"{where} refused the request: HTTP {code} {response.text[:300]}",
                status_code=code,
            )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpBank:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], response: httpx.Response, where: str) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise BankBadAnswer(f"{where} answered with an invalid body: {exc}") from exc


def callback_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``b"{timestamp}." + body`` (the bank's ``X-Bank-Signature``)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_callback(
    secret: str,
    body: bytes,
    *,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
    tolerance_seconds: float = CALLBACK_TOLERANCE_SECONDS,
) -> BankEvent:
    """The callback's event if its signature is the shared secret's and its timestamp is recent;
    ``CallbackSignatureInvalid`` otherwise. Events can arrive twice, late or out of order:
    dedupe by ``event_id`` and trust ``status(key)`` over an old event."""
    if not timestamp or not signature:
        raise CallbackSignatureInvalid("X-Bank-Timestamp and X-Bank-Signature are required")
    expected = callback_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected, signature):
        raise CallbackSignatureInvalid("X-Bank-Signature does not match the shared secret")
    try:
        sent = float(timestamp)
    except ValueError as exc:
        raise CallbackSignatureInvalid("X-Bank-Timestamp is not a Unix time") from exc
    if abs((time.time() if now is None else now) - sent) > tolerance_seconds:
        raise CallbackSignatureInvalid("X-Bank-Timestamp is too old (a replay?)")
    try:
        return BankEvent.model_validate_json(body)
    except ValidationError as exc:
        raise BankBadAnswer(f"callback body is not a bank event: {exc}") from exc
