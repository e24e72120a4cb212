"""The funding pool: manual top-ups and withdrawals under maker-checker, the list of movements,
and the liquidity report (``GET /reports/liquidity``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import col, select

from api.audit_events import record_four_eyes_refusal
from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, require
from api.errors import unprocessable, unprocessable_from
from api.schemas import MoneyOut, PositiveMoney, Strict
from domain.calendar import business_date
from domain.funding import (
    FundingConflict,
    FundingError,
    InsufficientFunds,
    MakerCheckerViolation,
    MovementKind,
)
from domain.permissions import Action
from models.funding import authorize_movement, liquidity_of, request_movement
from models.tables import FundingMovement

router = APIRouter(prefix="/funding", tags=["funding"])
reports_router = APIRouter(prefix="/reports", tags=["reports"])


class MovementIn(Strict):
    kind: Literal["top_up", "withdrawal"]
    amount: PositiveMoney
    reference: str = Field(
        min_length=1,
        max_length=100,
        description="the transfer's voucher number: the business key (the same again is "
        "the same movement)",
    )
    reason: str = Field(min_length=1, max_length=200)


class MovementOut(BaseModel):
    id: uuid.UUID
    kind: str
    amount: MoneyOut
    status: str
    reference: str
    reason: str
    application_no: str | None
    requested_by: str
    requested_at: datetime
    authorized_by: str | None
    authorized_at: datetime | None
    balance_after: MoneyOut | None


class MovementPage(BaseModel):
    items: list[MovementOut]
    total: int


class StageFigure(BaseModel):
    count: int
    amount: MoneyOut


class LiquidityOut(BaseModel):
    as_of: date
    balance: MoneyOut
    reserved: MoneyOut
    available: MoneyOut
    committed_count: int
    committed_amount: MoneyOut
    committed_by_stage: dict[str, StageFigure]
    expected_outflows: MoneyOut
    expected_inflows_7d: MoneyOut
    expected_inflows_30d: MoneyOut
    overdue_outstanding: MoneyOut
    coverage_ratio: Decimal | None = Field(
        description="expected outflows ÷ available, 4 places; null when nothing is available"
    )
    low_liquidity_threshold: MoneyOut
    low_liquidity: bool
    warnings: list[str]


def _out(m: FundingMovement) -> MovementOut:
    return MovementOut.model_validate(m, from_attributes=True)


def _refusal(exc: FundingError) -> HTTPException:
    if isinstance(exc, MakerCheckerViolation | FundingConflict):
        return HTTPException(status.HTTP_409_CONFLICT, detail=str(exc))
    return unprocessable_from(str(exc))


@router.post("/movements", response_model=MovementOut, status_code=201)
def post_movement(
    body: MovementIn,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.REQUEST_FUNDING_MOVEMENT),
) -> MovementOut:
    """Department manager: request a top-up or a withdrawal; it waits for a second person.
    The same ``reference`` again returns the same movement (200)."""
    try:
        movement, created = request_movement(
            session,
            kind=MovementKind(body.kind),
            amount=body.amount,
            reference=body.reference,
            reason=body.reason,
            requested_by=user.username,
            at=clock(),
        )
    except InsufficientFunds as exc:
        raise unprocessable("amount", str(exc).partition(": ")[2]) from None
    except FundingError as exc:
        raise _refusal(exc) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(movement)


@router.post("/movements/{movement_id}/authorize", response_model=MovementOut)
def post_authorize(
    movement_id: uuid.UUID,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.AUTHORIZE_FUNDING_MOVEMENT),
) -> MovementOut:
    """A second person (not the requester) authorizes a pending movement: the balance moves."""
    try:
        movement = authorize_movement(
            session, movement_id=movement_id, authorizer=user.username, at=clock()
        )
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except InsufficientFunds as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except MakerCheckerViolation as exc:
        record_four_eyes_refusal(
            session,
            actor=user.username,
            refusal="MakerChecker",
            reason=str(exc),
            at=clock(),
            funding_movement_id=str(movement_id),
        )
        raise _refusal(exc) from None
    except FundingError as exc:
        raise _refusal(exc) from None
    return _out(movement)


@router.get("/movements", response_model=MovementPage)
def list_movements(
    session: SessionDep,
    status_: Literal["pending", "authorized"] | None = Query(None, alias="status"),
    limit: int = Query(100, ge=1, le=1000),
    _: CurrentUserInfo = require(Action.LIST_FUNDING_MOVEMENTS),
) -> MovementPage:
    """The pool's movements, newest first (optionally only pending or authorized ones)."""
    where = [FundingMovement.status == status_] if status_ else []
    rows = session.exec(
        select(FundingMovement)
        .where(*where)
        .order_by(col(FundingMovement.requested_at).desc())
        .limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(FundingMovement).where(*where)).one()
    return MovementPage(items=[_out(m) for m in rows], total=total)


@reports_router.get("/liquidity", response_model=LiquidityOut)
def get_liquidity(
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    _: CurrentUserInfo = require(Action.READ_LIQUIDITY),
) -> LiquidityOut:
    """Department manager, operations, risk: balance, reserved, available, committed but not
    disbursed, expected inflows (7 / 30 days), coverage, and the low-liquidity warning."""
    figures = liquidity_of(session, as_of=business_date(clock(), settings.business_timezone))
    return LiquidityOut(
        as_of=figures.as_of,
        balance=figures.balance,
        reserved=figures.reserved,
        available=figures.available,
        committed_count=figures.committed_count,
        committed_amount=figures.committed_amount,
        committed_by_stage={
            stage: StageFigure(count=n, amount=amount)
            for stage, (n, amount) in figures.committed_by_stage.items()
        },
        expected_outflows=figures.expected_outflows,
        expected_inflows_7d=figures.expected_inflows_7d,
        expected_inflows_30d=figures.expected_inflows_30d,
        overdue_outstanding=figures.overdue_outstanding,
        coverage_ratio=figures.coverage_ratio,
        low_liquidity_threshold=figures.threshold,
        low_liquidity=figures.low_liquidity,
        warnings=figures.warnings,
    )
