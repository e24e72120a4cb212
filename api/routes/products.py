"""The product catalog: staff read it; the product manager adds products and new versions
(never edits one). Every change is audited; a bad definition is a 422 naming the field."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import ValidationError

from api.deps import ClockDep, CurrentUserInfo, SessionDep, SettingsDep, require
from api.errors import unprocessable, unprocessable_from
from api.schemas import (
    ProductDetailOut,
    ProductIn,
    ProductPage,
    ProductSummaryOut,
    ProductVersionIn,
    ProductVersionOut,
)
from domain.calendar import business_date
from domain.permissions import Action
from domain.products import ProductDefinition, ProductVersion
from loanops.products import (
    ProductExists,
    UnknownProduct,
    add_product_version,
    catalog,
    create_product,
    product_versions,
)

router = APIRouter(prefix="/products", tags=["products"])


def _version_out(v: ProductVersion) -> ProductVersionOut:
    return ProductVersionOut(
        code=v.code,
        version=v.version,
        effective_from=v.effective_from,
        note=v.note,
        recorded_by=v.recorded_by,
        definition=v.definition.to_json(),
    )


def _definition(code: str, body: ProductVersionIn) -> ProductDefinition:
    fields: dict[str, Any] = body.model_dump(
        mode="json", exclude={"effective_from", "note", "code"}, exclude_none=False
    )
    try:
        return ProductDefinition.from_json({"code": code, **fields})
    except (ValueError, ValidationError) as exc:
        raise unprocessable_from(str(exc)) from None


@router.get("", response_model=ProductPage)
def list_products(
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    _: CurrentUserInfo = require(Action.READ_PRODUCTS),
) -> ProductPage:
    """Any role: every product with the version in force today and its newest version."""
    today = business_date(clock(), settings.business_timezone)
    items = [
        ProductSummaryOut(
            code=e.code,
            name=(e.in_force or e.latest).definition.name,
            in_force=_version_out(e.in_force) if e.in_force else None,
            latest_version=e.latest.version,
        )
        for e in catalog(session.get_bind(), today)  # type: ignore[arg-type]
    ]
    return ProductPage(as_of=today, items=items)


@router.get("/{code}", response_model=ProductDetailOut)
def read_product(
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    _: CurrentUserInfo = require(Action.READ_PRODUCTS),
) -> ProductDetailOut:
    """Any role: a product with every version (oldest first) and the one in force today."""
    try:
        versions = product_versions(session.get_bind(), code)  # type: ignore[arg-type]
    except UnknownProduct as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    today = business_date(clock(), settings.business_timezone)
    due = [v for v in versions if v.effective_from <= today]
    in_force = max(due, key=lambda v: (v.effective_from, v.version), default=None)
    return ProductDetailOut(
        code=code,
        name=(in_force or versions[-1]).definition.name,
        as_of=today,
        in_force_version=in_force.version if in_force else None,
        versions=[_version_out(v) for v in versions],
    )


def _effective(body: ProductVersionIn, today: date) -> date:
    return body.effective_from or today


@router.post("", response_model=ProductVersionOut, status_code=status.HTTP_201_CREATED)
def create(
    body: ProductIn,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.MANAGE_PRODUCTS),
) -> ProductVersionOut:
    """product_manager. A new product as version 1, in force from ``effective_from`` (today
    or later; default today). 409 when the code exists; 422 naming the field of a bad
    definition (ranges inverted, a rate above the ceiling in force, min above max...)."""
    now = clock()
    today = business_date(now, settings.business_timezone)
    definition = _definition(body.code, body)
    try:
        created = create_product(
            session.get_bind(),  # type: ignore[arg-type]
            definition,
            effective_from=_effective(body, today),
            today=today,
            by=user.username,
            at=now,
            note=body.note,
        )
    except ProductExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except LookupError as exc:
        raise unprocessable("effective_from", str(exc)) from None
    except ValueError as exc:
        raise unprocessable_from(str(exc)) from None
    return _version_out(created)


@router.post("/{code}/versions", response_model=ProductVersionOut, status_code=201)
def add_version(
    code: str,
    body: ProductVersionIn,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.MANAGE_PRODUCTS),
) -> ProductVersionOut:
    """product_manager. The product's next version: the whole definition, in force from
    ``effective_from`` (today or later, not before the newest version's). Loans already
    offered keep the version they were offered."""
    now = clock()
    today = business_date(now, settings.business_timezone)
    definition = _definition(code, body)
    try:
        added = add_product_version(
            session.get_bind(),  # type: ignore[arg-type]
            code,
            definition,
            effective_from=_effective(body, today),
            today=today,
            by=user.username,
            at=now,
            note=body.note,
        )
    except UnknownProduct as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except LookupError as exc:
        raise unprocessable("effective_from", str(exc)) from None
    except ValueError as exc:
        raise unprocessable_from(str(exc)) from None
    return _version_out(added)
