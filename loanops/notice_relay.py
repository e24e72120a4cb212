"""The notice relay: delivers the ``notices`` outbox. The worker process runs it beside the
Temporal worker (``worker.run_worker``; the tests' whole-system fixture too).

Each poll it takes the due notices — queued, ``next_attempt_at`` passed, ``not_before`` (the
borrower's contact window) passed — and for each:

- claims it with a conditional UPDATE on its attempt count (``attempts = seen``), which also
  leases it until ``now + lease``: several relays (workers) never work on one notice at once, and
  a relay that dies mid-send leaves it to be taken again when the lease ends;
- inbox notices (staff, read in the app) are delivered at once;
- SMS: the borrower's mobile from the application's own borrower data, the text from
  ``templates/sms/<template>.txt``, sent through the ``SmsGateway`` with the notice's key as the
  idempotency key (a retry after a lost answer is not a second message); accepted → ``sent``
  (a secret template's payload is redacted then), retryable failure → back-off, permanently
  refused or out of attempts → ``failed`` with the error. The gateway's receipt
  (``POST /api/v1/sms/receipts``) makes it ``delivered`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from adapters.sms import SmsError, SmsGateway, SmsUnavailable
from domain.notices import (
    BORROWER_RECIPIENT,
    Channel,
    NoticeStatus,
    is_secret,
    normalize_mobile,
    redacted,
    retry_delay,
)
from loanops.db import session_scope
from loanops.notice_text import NoticeTemplateError, render_notice
from models.tables import Application, Notice, borrower_data_of

log = logging.getLogger("loanops.notice_relay")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RelayConfig:
    max_attempts: int = 6
    retry_base: timedelta = timedelta(seconds=5)
    retry_cap: timedelta = timedelta(minutes=10)
    # Longer than one gateway call can take (its timeout): a claim is not taken over mid-send.
    lease: timedelta = timedelta(seconds=60)
    batch: int = 50
    poll_seconds: float = 1.0


class PermanentNoticeError(Exception):
    """The notice cannot be sent as it stands (no phone, no template): retrying will not help."""


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class NoticeRelay:
    def __init__(
        self,
        engine: Engine,
        gateway: SmsGateway,
        *,
        callback_url: Callable[[], str | None],
        clock: Clock = utcnow,
        config: RelayConfig | None = None,
    ) -> None:
        self.engine = engine
        self.gateway = gateway
        self.callback_url = callback_url
        self.clock = clock
        self.config = config or RelayConfig()

    # -- one poll ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Deliver what is due now; the number of notices this relay handled."""
        now = self.clock()
        handled = self._deliver_inbox(now)
        for notice_id, attempts in self._due_sms(now):
            if self._claim(notice_id, attempts, now):
                self._send(notice_id, attempts + 1)
                handled += 1
        return handled

    async def run(
        self,
        stop: asyncio.Event,
        *,
        before_poll: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Poll until ``stop`` is set; the database and gateway work runs in a thread, and a
        poll under way is finished before this returns (never abandoned mid-send). A failing
        poll is logged and retried at the next one."""
        while not stop.is_set():
            try:
                if before_poll is not None:
                    await before_poll()
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("notice relay poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.poll_seconds)

    @staticmethod
    def _due(now: datetime) -> list[Any]:
        return [
            Notice.status == NoticeStatus.QUEUED.value,
            or_(col(Notice.next_attempt_at).is_(None), col(Notice.next_attempt_at) <= now),
            or_(col(Notice.not_before).is_(None), col(Notice.not_before) <= now),
        ]

    def _deliver_inbox(self, now: datetime) -> int:
        with session_scope(self.engine) as s:
            result = s.connection().execute(
                update(Notice)
                .where(col(Notice.channel) == Channel.INBOX.value, *self._due(now))
                .values(status=NoticeStatus.DELIVERED.value, delivered_at=now)
            )
            return int(result.rowcount or 0)

    def _due_sms(self, now: datetime) -> list[tuple[uuid.UUID, int]]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(Notice.id, Notice.attempts)
                .where(col(Notice.channel) == Channel.SMS.value, *self._due(now))
                .order_by(col(Notice.created_at))
                .limit(self.config.batch)
            ).all()
        return [(r[0], r[1]) for r in rows]

    def _claim(self, notice_id: uuid.UUID, seen_attempts: int, now: datetime) -> bool:
        """Take the notice for one attempt (leased until ``now + lease``); False when another
        relay took it first."""
        with session_scope(self.engine) as s:
            result = s.connection().execute(
                update(Notice)
                .where(
                    col(Notice.id) == notice_id,
                    col(Notice.status) == NoticeStatus.QUEUED.value,
                    col(Notice.attempts) == seen_attempts,
                )
                .values(attempts=seen_attempts + 1, next_attempt_at=now + self.config.lease)
            )
            return result.rowcount == 1

    # -- one notice -------------------------------------------------------------------------

    def _send(self, notice_id: uuid.UUID, attempt: int) -> None:
        try:
            to, text, key = self._message(notice_id)
        except PermanentNoticeError as exc:
            self._finish(notice_id, attempt, failed=_error_text(exc))
            return
        try:
            accepted = self.gateway.send(
                to, text, idempotency_key=key, callback_url=self.callback_url()
            )
        except SmsError as exc:
            if not exc.retryable:
                self._finish(notice_id, attempt, failed=_error_text(exc))
                return
            retry_after = exc.retry_after if isinstance(exc, SmsUnavailable) else None
            self._retry_or_fail(notice_id, attempt, exc, retry_after)
            return
        except Exception as exc:  # an adapter bug or the unforeseen: retried, within the limit
            log.exception("sending notice %s failed unexpectedly", notice_id)
            self._retry_or_fail(notice_id, attempt, exc, None)
            return
        self._finish(notice_id, attempt, provider_message_id=accepted.message_id)

    def _retry_or_fail(
        self, notice_id: uuid.UUID, attempt: int, exc: Exception, retry_after: float | None
    ) -> None:
        """Back off exponentially (at least the gateway's ``Retry-After``), or fail the notice
        once its attempts are spent."""
        if attempt >= self.config.max_attempts:
            self._finish(notice_id, attempt, failed=_error_text(exc))
            return
        wait = retry_delay(attempt, base=self.config.retry_base, cap=self.config.retry_cap)
        if retry_after is not None:
            wait = max(wait, timedelta(seconds=retry_after))
        self._finish(notice_id, attempt, retry_at=self.clock() + wait, error=_error_text(exc))

    def _message(self, notice_id: uuid.UUID) -> tuple[str, str, str]:
        """The number, the text and the idempotency key of an SMS notice."""
        with Session(self.engine) as s:
            notice = s.get(Notice, notice_id)
            if notice is None:
                raise PermanentNoticeError("the notice is gone")
            if notice.recipient == BORROWER_RECIPIENT:
                app = s.exec(
                    select(Application).where(Application.application_no == notice.application_no)
                ).first()
                data = borrower_data_of(s, app) if app is not None else None
                if data is None:
                    raise PermanentNoticeError(
                        f"no borrower data for application {notice.application_no}"
                    )
                raw_phone = data.phone
            else:
                raw_phone = notice.recipient
            phone = normalize_mobile(raw_phone)
            if phone is None:
                raise PermanentNoticeError("the recipient has no valid mobile number")
            try:
                text = render_notice(
                    Channel.SMS.value,
                    notice.template,
                    dict(notice.payload),
                    application_no=notice.application_no,
                )
            except NoticeTemplateError as exc:
                raise PermanentNoticeError(str(exc)) from exc
            return phone, text, notice.key

    def _finish(
        self,
        notice_id: uuid.UUID,
        attempt: int,
        *,
        provider_message_id: str | None = None,
        retry_at: datetime | None = None,
        error: str | None = None,
        failed: str | None = None,
    ) -> None:
        """Record the attempt's outcome, only while the claim is still ours."""
        with session_scope(self.engine) as s:
            notice = s.get(Notice, notice_id)
            if (
                notice is None
                or notice.status != NoticeStatus.QUEUED.value
                or notice.attempts != attempt
            ):
                return
            if provider_message_id is not None:
                notice.status = NoticeStatus.SENT.value
                notice.provider_message_id = provider_message_id
                notice.sent_at = self.clock()
                notice.next_attempt_at = None
                notice.last_error = None
                if is_secret(notice.template):
                    notice.payload = redacted(notice.payload)
            elif failed is not None:
                notice.status = NoticeStatus.FAILED.value
                notice.next_attempt_at = None
                notice.last_error = failed
                log.warning("notice %s failed: %s", notice.key, failed)
            else:
                notice.next_attempt_at = retry_at
                notice.last_error = error
