"""Borrower data as a dated record: an application is submitted with one version of it, and new
data (a later application, a correction) is a new version, never a change to an old one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from models.audit import append_audit
from models.tables import Borrower, BorrowerVersion


@dataclass(frozen=True)
class BorrowerFields:
    """The versioned data of a borrower (the identity, the ID number, is on ``Borrower``)."""

    name: str
    phone: str
    bank_card: str
    monthly_income: Decimal
    # Years with the current employer (or in business); None when the borrower did not say.
    employment_years: int | None = None


_FIELD_NAMES = ("name", "phone", "bank_card", "monthly_income", "employment_years")


def _fields(row: Borrower | BorrowerVersion) -> BorrowerFields:
    return BorrowerFields(
        row.name, row.phone, row.bank_card, row.monthly_income, row.employment_years
    )


def latest_version(session: Session, borrower_id: uuid.UUID) -> BorrowerVersion | None:
    return session.exec(
        select(BorrowerVersion)
        .where(BorrowerVersion.borrower_id == borrower_id)
        .order_by(col(BorrowerVersion.version).desc())
    ).first()


def record_borrower_data(
    session: Session,
    borrower: Borrower,
    data: BorrowerFields,
    *,
    by: str,
    reason: str,
    at: datetime,
    application_no: str | None = None,
) -> BorrowerVersion:
    """The version carrying ``data``: the latest one when it already does, else version N+1
    (audited as ``borrower.version_recorded``). Adds to ``session``; the caller commits (two
    concurrent recorders of the same N+1 meet the primary key: one of them has to retry).

    A borrower's first version is the borrower row's data (for a borrower written before
    versions existed, what its earlier applications read), so new data after it is version 2."""
    latest = latest_version(session, borrower.id)
    if latest is None:
        first = _fields(borrower)
        latest = _add_version(
            session,
            borrower,
            first,
            None,
            version=1,
            by=by if first == data else "system",
            reason=reason if first == data else "the borrower row as first recorded",
            at=at,
            application_no=application_no,
        )
    previous = _fields(latest)
    if previous == data:
        return latest
    return _add_version(
        session,
        borrower,
        data,
        previous,
        version=latest.version + 1,
        by=by,
        reason=reason,
        at=at,
        application_no=application_no,
    )


def _add_version(
    session: Session,
    borrower: Borrower,
    data: BorrowerFields,
    previous: BorrowerFields | None,
    *,
    version: int,
    by: str,
    reason: str,
    at: datetime,
    application_no: str | None,
) -> BorrowerVersion:
    row = BorrowerVersion(
        borrower_id=borrower.id,
        version=version,
        name=data.name,
        phone=data.phone,
        bank_card=data.bank_card,
        monthly_income=data.monthly_income,
        employment_years=data.employment_years,
        recorded_at=at,
        recorded_by=by,
        reason=reason,
    )
    session.add(row)
    append_audit(
        session,
        key=f"borrower/{borrower.id}/version/{version}",
        application_no=application_no,
        actor=by,
        action="borrower.version_recorded",
        occurred_at=at,
        # Which fields changed, never their values (the trail is read widely; the version row
        # holds the data).
        detail={
            "borrower_id": str(borrower.id),
            "version": version,
            "reason": reason,
            "changed": [f for f in _FIELD_NAMES if getattr(data, f) != getattr(previous, f)]
            if previous
            else [],
        },
    )
    return row
