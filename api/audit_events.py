"""The audit events the API itself writes about logins and about attempts that changed nothing:
refused four-eyes decisions, failed logins, disabled users' attempts (read by the inspection
report).

Each is committed on its own, at once: the request is refused right after, and its refusal must
not take the record with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session

from domain.audit_actions import (
    DISABLED_USER_ATTEMPT,
    FOUR_EYES_REFUSED,
    LOGGED_IN,
    LOGIN_FAILED,
    PAYMENT_REFUSED,
    PII_REVEALED,
)
from models.audit import append_audit


def _record(
    session: Session,
    *,
    kind: str,
    actor: str,
    action: str,
    at: datetime,
    application_no: str | None = None,
    detail: dict[str, Any],
) -> None:
    session.rollback()  # nothing of the refused request is written with it
    append_audit(
        session,
        key=f"{kind}/{uuid.uuid4().hex}",
        application_no=application_no,
        actor=actor[:64],
        action=action,
        occurred_at=at,
        detail=detail,
    )
    session.commit()


def record_four_eyes_refusal(
    session: Session,
    *,
    actor: str,
    refusal: str,
    reason: str,
    at: datetime,
    application_no: str | None = None,
    **detail: Any,
) -> None:
    """A decision refused for maker = checker (``MakerChecker``) or a role that may not take it
    (``Forbidden``)."""
    _record(
        session,
        kind="four-eyes",
        actor=actor,
        action=FOUR_EYES_REFUSED,
        at=at,
        application_no=application_no,
        detail={"refusal": refusal, "reason": reason, **detail},
    )


def record_failed_login(session: Session, *, username: str, reason: str, at: datetime) -> None:
    """``reason``: unknown_user or wrong_password. Never the password."""
    _record(
        session,
        kind="login-failed",
        actor=username,
        action=LOGIN_FAILED,
        at=at,
        detail={"reason": reason},
    )


def record_disabled_attempt(session: Session, *, username: str, via: str, at: datetime) -> None:
    """``via``: login (a disabled account tried to log in) or token (it used a token issued
    before it was disabled)."""
    _record(
        session,
        kind="disabled-attempt",
        actor=username,
        action=DISABLED_USER_ATTEMPT,
        at=at,
        detail={"via": via},
    )


def record_login(session: Session, *, username: str, at: datetime) -> None:
    """A successful login (never the token)."""
    _record(session, kind="login", actor=username, action=LOGGED_IN, at=at, detail={})


def record_pii_reveal(
    session: Session,
    *,
    viewer: str,
    application_no: str,
    obj: str,
    fields: list[str],
    at: datetime,
) -> None:
    """A borrower's personal data shown in full (issue 11 §3): who, which fields of which
    object, never the values. Committed at once (the request reads, it changes nothing else).

    What counts as a reveal (a decision where the issue is silent): a response carrying the
    borrower's identity number, phone or bank card in full — the application view's applicant,
    a timeline or notice list whose texts hold them unmasked. The borrower's name alone in a
    work list or the loan view is the file's label, shown to every role that may read PII and
    not audited per view (it would drown the reveals that matter in the inspection report)."""
    append_audit(
        session,
        key=f"pii-revealed/{uuid.uuid4().hex}",
        application_no=application_no,
        actor=viewer[:64],
        action=PII_REVEALED,
        occurred_at=at,
        detail={"object": obj, "fields": sorted(fields)},
    )
    session.commit()


def record_refused_payment(
    session: Session,
    *,
    actor: str,
    application_no: str,
    external_ref: str,
    amount: str,
    reason: str,
    at: datetime,
) -> None:
    """A payment the loan refused as settled (or settling): nothing was booked, the reference is
    free, and the money is on record as to go back to the payer (never silently held)."""
    _record(
        session,
        kind=f"payment-refused/{external_ref}",
        actor=actor,
        action=PAYMENT_REFUSED,
        at=at,
        application_no=application_no,
        detail={
            "external_ref": external_ref,
            "amount": amount,
            "reason": reason,
            "disposition": "return_to_payer",
        },
    )
