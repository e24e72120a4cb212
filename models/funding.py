"""The funding pool in the database: reservations for payouts (reserve, release, consume),
repayment inflows, manual top-ups and withdrawals under maker-checker, and the liquidity figures.

Each function is one unit of work on the session it is given: it commits what it did (with its
audit event) or raises a ``domain.funding.FundingError`` having changed nothing. Each is
idempotent by its business key: the same call again returns what the first one did; the same
key with other figures is a ``FundingConflict``. The balance and the reserved total change only
through conditional updates of the pool row, so concurrent reservations cannot overdraw it.

Who calls what: the payout workflow's activities ``reserve`` (before sending the order),
``consume`` (the bank executed it) or ``release`` (rejected / withdrawn); servicing calls
``record_inflow`` for each repayment received; the API requests and authorizes manual
movements and reads ``liquidity_of``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import literal, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.funding import (
    COMMITTED_STAGES,
    DEFAULT_LOW_LIQUIDITY_THRESHOLD,
    MANUAL_KINDS,
    POOL_CODE,
    CommittedLoan,
    FundingConflict,
    FundingError,
    InstallmentDue,
    InsufficientFunds,
    Liquidity,
    MovementKind,
    check_amount,
    check_checker,
    liquidity,
    signed,
)
from domain.money import ZERO, format_money
from models.audit import append_audit
from models.tables import (
    Application,
    FundingMovement,
    FundingPool,
    FundingReservation,
    Installment,
    Loan,
)
from models.types import Money


def ensure_pool(
    session: Session,
    *,
    account_no: str,
    name: str = "资金池 (funding pool)",
    threshold: Decimal = DEFAULT_LOW_LIQUIDITY_THRESHOLD,
    at: datetime,
) -> FundingPool:
    """The pool row, created empty (balance 0) if missing."""
    pool = session.get(FundingPool, POOL_CODE)
    if pool is not None:
        return pool
    pool = FundingPool(
        code=POOL_CODE,
        name=name,
        account_no=account_no,
        low_liquidity_threshold=threshold,
        updated_at=at,
    )
    session.add(pool)
    try:
        session.commit()
    except IntegrityError:  # created meanwhile by someone else
        session.rollback()
        found = session.get(FundingPool, POOL_CODE)
        assert found is not None
        return found
    return pool


def get_pool(session: Session) -> FundingPool:
    pool = session.get(FundingPool, POOL_CODE)
    if pool is None:
        raise FundingError("pool: no funding pool has been opened")
    return pool


def _fresh_pool(session: Session) -> FundingPool:
    pool = get_pool(session)
    session.refresh(pool)
    return pool


def _shift(
    session: Session,
    *,
    at: datetime,
    balance: Decimal = ZERO,
    reserved: Decimal = ZERO,
    need: Decimal | None = None,
) -> bool:
    """Move the pool's balance and reserved total by the deltas in one conditional UPDATE; with
    ``need``, only if ``balance − reserved ≥ need`` (False: nothing changed)."""
    stmt = update(FundingPool).where(col(FundingPool.code) == POOL_CODE)
    if need is not None:  # money literals typed explicitly: stored as fen (models.types)
        stmt = stmt.where(col(FundingPool.balance) - col(FundingPool.reserved) >= _fen(need))
    stmt = stmt.values(
        balance=col(FundingPool.balance) + _fen(balance),
        reserved=col(FundingPool.reserved) + _fen(reserved),
        updated_at=at,
    )
    result = session.connection().execute(stmt)
    return bool(result.rowcount == 1)


def _fen(amount: Decimal) -> Any:
    return literal(amount, Money())


def _insufficient(session: Session, amount: Decimal) -> InsufficientFunds:
    session.rollback()
    pool = _fresh_pool(session)
    return InsufficientFunds(amount, pool.balance - pool.reserved)


# ---- reservations (the payout) ---------------------------------------------------------------


def reserve(
    session: Session,
    *,
    key: str,
    application_no: str,
    amount: Decimal,
    actor: str,
    at: datetime,
) -> FundingReservation:
    """Set ``amount`` aside for ``application_no``'s payout under ``key``; InsufficientFunds
    (naming the amount and what is available) when the pool cannot. A key keeps its fate: once
    released or consumed, the same call returns that reservation (check its ``status``); a
    new reservation needs a new key."""
    amount = check_amount(amount)
    get_pool(session)
    existing = session.get(FundingReservation, key)
    if existing is not None:
        return _same_reservation(existing, application_no, amount)
    if not _shift(session, at=at, reserved=amount, need=amount):
        raise _insufficient(session, amount)
    row = FundingReservation(
        key=key,
        pool_code=POOL_CODE,
        application_no=application_no,
        amount=amount,
        reserved_by=actor,
        created_at=at,
    )
    try:
        session.add(row)
        session.flush()  # the key's uniqueness decides here, before anything else is written
        append_audit(
            session,
            key=f"funding:reserve:{key}",
            actor=actor,
            action="funding_reserved",
            occurred_at=at,
            application_no=application_no,
            detail={"key": key, "amount": format_money(amount)},
        )
        session.commit()
    except IntegrityError:  # the same key reserved concurrently: that one stands
        session.rollback()
        found = session.get(FundingReservation, key)
        if found is None:
            raise
        return _same_reservation(found, application_no, amount)
    return row


def _same_reservation(
    row: FundingReservation, application_no: str, amount: Decimal
) -> FundingReservation:
    if row.application_no != application_no or row.amount != amount:
        raise FundingConflict(
            f"key: {row.key} already reserves {format_money(row.amount)} for {row.application_no}"
        )
    return row


def _closing(session: Session, key: str, to: str) -> FundingReservation | None:
    """The reservation to close, or None when it is already ``to`` (idempotent repeat)."""
    row = session.get(FundingReservation, key)
    if row is None:
        raise FundingError(f"key: no reservation {key}")
    session.refresh(row)
    if row.status == to:
        return None
    if row.status != "reserved":
        raise FundingConflict(f"key: reservation {key} is {row.status}, it cannot be {to}")
    return row


def _close(session: Session, row: FundingReservation, to: str, actor: str, at: datetime) -> bool:
    """Mark the reservation closed if it is still reserved (conditional: one closer wins)."""
    stmt = (
        update(FundingReservation)
        .where(col(FundingReservation.key) == row.key, col(FundingReservation.status) == "reserved")
        .values(status=to, closed_by=actor, closed_at=at)
    )
    return bool(session.connection().execute(stmt).rowcount == 1)


def release(session: Session, *, key: str, actor: str, at: datetime) -> FundingReservation:
    """Give a reservation's money back to ``available`` (the payout will not happen)."""
    row = _closing(session, key, "released")
    if row is None:
        return _reservation(session, key)
    if not _close(session, row, "released", actor, at):
        session.rollback()
        return _reservation_as(session, key, "released")
    _shift(session, at=at, reserved=-row.amount)
    append_audit(
        session,
        key=f"funding:release:{key}",
        actor=actor,
        action="funding_released",
        occurred_at=at,
        application_no=row.application_no,
        detail={"key": key, "amount": format_money(row.amount)},
    )
    session.commit()
    return _reservation(session, key)


def consume(
    session: Session, *, key: str, actor: str, at: datetime, bank_order_id: str | None = None
) -> FundingMovement:
    """The bank executed the payout: the reservation becomes a payout movement off the
    balance. Returns the movement (the same one on a repeat)."""
    row = _closing(session, key, "consumed")
    if row is None:
        return _movement_by_key(session, f"payout:{key}")
    if not _close(session, row, "consumed", actor, at):
        session.rollback()
        _reservation_as(session, key, "consumed")
        return _movement_by_key(session, f"payout:{key}")
    _shift(session, at=at, balance=-row.amount, reserved=-row.amount)
    pool = _fresh_pool(session)
    movement = FundingMovement(
        key=f"payout:{key}",
        pool_code=POOL_CODE,
        kind=MovementKind.PAYOUT.value,
        amount=row.amount,
        status="authorized",
        reason="disbursement executed by the bank",
        reference=bank_order_id or key,
        application_no=row.application_no,
        requested_by=actor,
        requested_at=at,
        authorized_by=actor,
        authorized_at=at,
        balance_after=pool.balance,
    )
    session.add(movement)
    append_audit(
        session,
        key=f"funding:consume:{key}",
        actor=actor,
        action="funding_paid_out",
        occurred_at=at,
        application_no=row.application_no,
        detail={
            "key": key,
            "amount": format_money(row.amount),
            "bank_order_id": bank_order_id,
            "balance_after": format_money(pool.balance),
        },
    )
    session.commit()
    return movement


def _reservation(session: Session, key: str) -> FundingReservation:
    row = session.get(FundingReservation, key)
    assert row is not None
    session.refresh(row)
    return row


def _reservation_as(session: Session, key: str, status: str) -> FundingReservation:
    """After losing a race to close: fine if the winner did the same, a conflict otherwise."""
    row = _reservation(session, key)
    if row.status != status:
        raise FundingConflict(f"key: reservation {key} is {row.status}, it cannot be {status}")
    return row


def _movement_by_key(session: Session, key: str) -> FundingMovement:
    found = session.exec(select(FundingMovement).where(FundingMovement.key == key)).first()
    if found is None:
        raise FundingError(f"key: no movement {key}")
    return found


# ---- inflows (servicing) -----------------------------------------------------------------------


def record_inflow(
    session: Session,
    *,
    key: str,
    amount: Decimal,
    actor: str,
    at: datetime,
    application_no: str | None = None,
    reference: str = "",
) -> FundingMovement:
    """A repayment received into the pool (by its payment's business key, e.g. the payment's
    ``external_ref``): the balance grows once per key."""
    amount = check_amount(amount)
    get_pool(session)
    movement_key = f"inflow:{key}"
    existing = session.exec(
        select(FundingMovement).where(FundingMovement.key == movement_key)
    ).first()
    if existing is not None:
        return _same_movement(existing, amount, application_no)
    _shift(session, at=at, balance=amount)
    pool = _fresh_pool(session)
    movement = FundingMovement(
        key=movement_key,
        pool_code=POOL_CODE,
        kind=MovementKind.INFLOW.value,
        amount=amount,
        status="authorized",
        reason="repayment received",
        reference=reference or key,
        application_no=application_no,
        requested_by=actor,
        requested_at=at,
        authorized_by=actor,
        authorized_at=at,
        balance_after=pool.balance,
    )
    try:
        session.add(movement)
        session.flush()
        append_audit(
            session,
            key=f"funding:inflow:{key}",
            actor=actor,
            action="funding_inflow",
            occurred_at=at,
            application_no=application_no,
            detail={"key": key, "amount": format_money(amount)},
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        return _same_movement(_movement_by_key(session, movement_key), amount, application_no)
    return movement


def record_refund_outflow(
    session: Session,
    *,
    key: str,
    amount: Decimal,
    actor: str,
    at: datetime,
    application_no: str,
) -> FundingMovement:
    """A settled loan's credit the bank paid back (by the refund's order key): the balance
    shrinks once per key. The money has left already: no availability check."""
    amount = check_amount(amount)
    get_pool(session)
    movement_key = f"refund:{key}"
    existing = session.exec(
        select(FundingMovement).where(FundingMovement.key == movement_key)
    ).first()
    if existing is not None:
        return _same_movement(existing, amount, application_no)
    _shift(session, at=at, balance=-amount)
    pool = _fresh_pool(session)
    movement = FundingMovement(
        key=movement_key,
        pool_code=POOL_CODE,
        kind=MovementKind.REFUND.value,
        amount=amount,
        status="authorized",
        reason="overpayment refunded",
        reference=key,
        application_no=application_no,
        requested_by=actor,
        requested_at=at,
        authorized_by=actor,
        authorized_at=at,
        balance_after=pool.balance,
    )
    try:
        session.add(movement)
        session.flush()
        append_audit(
            session,
            key=f"funding:refund:{key}",
            actor=actor,
            action="funding_refund",
            occurred_at=at,
            application_no=application_no,
            detail={"key": key, "amount": format_money(amount)},
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        return _same_movement(_movement_by_key(session, movement_key), amount, application_no)
    return movement


def _same_movement(
    row: FundingMovement, amount: Decimal, application_no: str | None
) -> FundingMovement:
    if row.amount != amount or row.application_no != application_no:
        raise FundingConflict(
            f"key: {row.key} was recorded as {format_money(row.amount)}"
            f"{f' for {row.application_no}' if row.application_no else ''}"
        )
    return row


# ---- manual movements (maker-checker) ------------------------------------------------------------


def request_movement(
    session: Session,
    *,
    kind: MovementKind,
    amount: Decimal,
    reference: str,
    reason: str,
    requested_by: str,
    at: datetime,
) -> tuple[FundingMovement, bool]:
    """A top-up or withdrawal waiting for a second person; (movement, created). The
    ``reference`` (the transfer's voucher number) is its business key. A withdrawal larger
    than what is available now is refused at once (and checked again on authorization)."""
    if kind not in MANUAL_KINDS:
        raise FundingError(f"kind: must be one of {', '.join(sorted(MANUAL_KINDS))}")
    amount = check_amount(amount)
    pool = get_pool(session)
    key = f"manual:{reference}"
    existing = session.exec(select(FundingMovement).where(FundingMovement.key == key)).first()
    if existing is not None:
        if (existing.kind, existing.amount) != (kind.value, amount):
            raise FundingConflict(
                f"reference: {reference} was already used for a {existing.kind} of "
                f"{format_money(existing.amount)}"
            )
        return existing, False
    if kind == MovementKind.WITHDRAWAL and amount > pool.balance - pool.reserved:
        raise InsufficientFunds(amount, pool.balance - pool.reserved)
    movement = FundingMovement(
        key=key,
        pool_code=POOL_CODE,
        kind=kind.value,
        amount=amount,
        status="pending",
        reason=reason,
        reference=reference,
        requested_by=requested_by,
        requested_at=at,
    )
    try:
        session.add(movement)
        session.flush()
        append_audit(
            session,
            key=f"funding:request:{movement.id}",
            actor=requested_by,
            action="funding_movement_requested",
            occurred_at=at,
            detail={
                "movement_id": str(movement.id),
                "kind": kind.value,
                "amount": format_money(amount),
                "reference": reference,
                "reason": reason,
            },
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        return request_movement(
            session,
            kind=kind,
            amount=amount,
            reference=reference,
            reason=reason,
            requested_by=requested_by,
            at=at,
        )
    return movement, True


def authorize_movement(
    session: Session, *, movement_id: uuid.UUID, authorizer: str, at: datetime
) -> FundingMovement:
    """The second person authorizes a pending manual movement, which then moves the balance.
    The requester may not (MakerCheckerViolation); the same authorizer again is a no-op."""
    movement = session.get(FundingMovement, movement_id)
    if movement is None or movement.kind not in MANUAL_KINDS:
        raise LookupError(f"no manual funding movement {movement_id}")
    session.refresh(movement)
    if movement.status == "authorized":
        if movement.authorized_by == authorizer:
            return movement
        raise FundingConflict(
            f"movement: already authorized by {movement.authorized_by} at "
            f"{movement.authorized_at:%Y-%m-%d %H:%M} UTC"
        )
    check_checker(movement.requested_by, authorizer)
    claimed = session.connection().execute(
        update(FundingMovement)
        .where(col(FundingMovement.id) == movement_id, col(FundingMovement.status) == "pending")
        .values(status="authorized", authorized_by=authorizer, authorized_at=at)
    )
    if claimed.rowcount != 1:  # authorized by someone else meanwhile
        session.rollback()
        return authorize_movement(session, movement_id=movement_id, authorizer=authorizer, at=at)
    delta = signed(MovementKind(movement.kind), movement.amount)
    need = movement.amount if delta < 0 else None
    if not _shift(session, at=at, balance=delta, need=need):
        raise _insufficient(session, movement.amount)
    pool = _fresh_pool(session)
    session.connection().execute(
        update(FundingMovement)
        .where(col(FundingMovement.id) == movement_id)
        .values(balance_after=pool.balance)
    )
    append_audit(
        session,
        key=f"funding:authorize:{movement_id}",
        actor=authorizer,
        action="funding_movement_authorized",
        occurred_at=at,
        detail={
            "movement_id": str(movement_id),
            "kind": movement.kind,
            "amount": format_money(movement.amount),
            "requested_by": movement.requested_by,
            "balance_after": format_money(pool.balance),
        },
    )
    session.commit()
    session.refresh(movement)
    return movement


def open_with_balance(
    session: Session, *, account_no: str, amount: Decimal, actor: str, at: datetime
) -> bool:
    """Open the pool with an opening balance (demo seeding) unless it has one; True if done."""
    ensure_pool(session, account_no=account_no, at=at)
    key = "opening-balance"
    if session.exec(select(FundingMovement.id).where(FundingMovement.key == key)).first():
        return False
    _shift(session, at=at, balance=amount)
    pool = _fresh_pool(session)
    session.add(
        FundingMovement(
            key=key,
            pool_code=POOL_CODE,
            kind=MovementKind.OPENING_BALANCE.value,
            amount=amount,
            status="authorized",
            reason="opening balance (demo data)",
            reference=key,
            requested_by=actor,
            requested_at=at,
            authorized_by=actor,
            authorized_at=at,
            balance_after=pool.balance,
        )
    )
    append_audit(
        session,
        key="funding:opening-balance",
        actor=actor,
        action="funding_opening_balance",
        occurred_at=at,
        detail={"amount": format_money(amount)},
    )
    session.commit()
    return True


# ---- liquidity -----------------------------------------------------------------------------


def liquidity_of(session: Session, *, as_of: date) -> Liquidity:
    """The indicators from the pool row, the committed applications and the installments."""
    pool = session.get(FundingPool, POOL_CODE)
    if pool is not None:
        session.refresh(pool)
    reserved_for = set(
        session.exec(
            select(FundingReservation.application_no).where(FundingReservation.status == "reserved")
        ).all()
    )
    rows = session.exec(
        select(Application, Loan)
        .outerjoin(Loan, col(Loan.application_no) == col(Application.application_no))
        .where(col(Application.stage).in_([s.value for s in COMMITTED_STAGES]))
    ).all()
    committed = [
        CommittedLoan(
            application_no=a.application_no,
            stage=a.stage,
            amount=(loan.principal - loan.upfront_fee) if loan else a.amount,
            reserved=a.application_no in reserved_for,
        )
        for a, loan in rows
    ]
    installments = [
        InstallmentDue(
            due_date=i.due_date,
            outstanding=(i.principal_due - i.principal_paid)
            + (i.interest_due - i.interest_paid)
            + (i.fee_due - i.fee_paid),
        )
        for i in session.exec(
            select(Installment).where(col(Installment.status).not_in(["paid", "cancelled"]))
        ).all()
    ]
    return liquidity(
        as_of=as_of,
        balance=pool.balance if pool else ZERO,
        reserved=pool.reserved if pool else ZERO,
        threshold=pool.low_liquidity_threshold if pool else DEFAULT_LOW_LIQUIDITY_THRESHOLD,
        committed=committed,
        installments=installments,
    )
