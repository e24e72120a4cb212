"""The product catalog held as data: products and their dated versions (``domain.products``),
seeded from ``SEED_CATALOG`` by ``loanops migrate``, added to by the product manager (API) or
``loanops product``. Versions are only added, never changed; every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.products import (
    SEED_CATALOG,
    SEED_EFFECTIVE_FROM,
    ProductDefinition,
    ProductVersion,
    version_in_force,
)
from loanops.db import session_scope
from loanops.policy import loan_policy_in_force, lpr_table
from models.audit import append_audit
from models.tables import Product, ProductVersionRow


class ProductExists(ValueError):
    """A product with this code is already in the catalog."""


class UnknownProduct(LookupError):
    """No product with this code."""


def seed_products(engine: Engine) -> int:
    """Record ``SEED_CATALOG`` as version 1 of each product when the catalog is empty; returns
    how many products were added. A catalog already there is left as it is."""
    try:
        with session_scope(engine) as s:
            if s.exec(select(Product).limit(1)).first() is not None:
                return 0
            for d in SEED_CATALOG:
                s.add(Product(code=d.code, created_by="system"))
                s.flush()
                s.add(
                    ProductVersionRow(
                        code=d.code,
                        version=1,
                        effective_from=SEED_EFFECTIVE_FROM,
                        definition=d.to_json(),
                        note="seeded catalog",
                        recorded_by="system",
                    )
                )
    except IntegrityError:  # a concurrent `loanops migrate` seeded it first
        return 0
    return len(SEED_CATALOG)


def rate_ceiling(engine: Engine, on: date) -> Decimal:
    """The interest ceiling in force on ``on``: the loan policy's cap on the LPR of that day."""
    policy = loan_policy_in_force(engine, on)
    return policy.ceiling.binding_cap(lpr_table(engine).in_force(on).one_year)


def _version(row: ProductVersionRow) -> ProductVersion:
    return ProductVersion(
        code=row.code,
        version=row.version,
        effective_from=row.effective_from,
        definition=ProductDefinition.from_json(row.definition),
        recorded_by=row.recorded_by,
        note=row.note,
    )


def product_versions(engine: Engine, code: str) -> list[ProductVersion]:
    """Every version of a product, oldest first; UnknownProduct when there is no such product."""
    with Session(engine) as s:
        if s.get(Product, code) is None:
            raise UnknownProduct(f"product {code} does not exist")
        rows = s.exec(
            select(ProductVersionRow)
            .where(ProductVersionRow.code == code)
            .order_by(col(ProductVersionRow.version))
        ).all()
    return [_version(r) for r in rows]


@dataclass(frozen=True)
class CatalogEntry:
    code: str
    # The version in force on the date asked about (None: the first one is still to come).
    in_force: ProductVersion | None
    latest: ProductVersion


def catalog(engine: Engine, on: date) -> list[CatalogEntry]:
    """Every product with its version in force on ``on`` and its newest version, by code."""
    with Session(engine) as s:
        rows = s.exec(
            select(ProductVersionRow).order_by(
                col(ProductVersionRow.code), col(ProductVersionRow.version)
            )
        ).all()
    by_code: dict[str, list[ProductVersion]] = {}
    for r in rows:
        by_code.setdefault(r.code, []).append(_version(r))
    return [
        CatalogEntry(code, version_in_force(versions, on), versions[-1])
        for code, versions in sorted(by_code.items())
    ]


def catalog_in_force(engine: Engine, on: date) -> list[ProductVersion]:
    """The version in force on ``on`` of every product that has one."""
    return [e.in_force for e in catalog(engine, on) if e.in_force is not None]


def _check(
    engine: Engine, definition: ProductDefinition, effective_from: date, today: date
) -> None:
    if effective_from < today:
        raise ValueError(
            f"effective_from: {effective_from} is before today {today}; "
            "a product is never changed retroactively"
        )
    definition.validate(rate_ceiling=rate_ceiling(engine, effective_from))


def create_product(
    engine: Engine,
    definition: ProductDefinition,
    *,
    effective_from: date,
    today: date,
    by: str,
    at: datetime,
    note: str = "",
) -> ProductVersion:
    """Add a product as version 1. ValueError naming the field for an invalid definition or a
    date before today; ProductExists for a code already in the catalog (nothing is written)."""
    _check(engine, definition, effective_from, today)
    try:
        with session_scope(engine) as s:
            if s.get(Product, definition.code) is not None:
                raise ProductExists(f"code: product {definition.code} already exists")
            s.add(Product(code=definition.code, created_by=by, created_at=at))
            s.flush()
            row = ProductVersionRow(
                code=definition.code,
                version=1,
                effective_from=effective_from,
                definition=definition.to_json(),
                note=note,
                recorded_by=by,
                recorded_at=at,
            )
            s.add(row)
            _audit(s, row, action="product.created", at=at)
    except IntegrityError:
        raise ProductExists(f"code: product {definition.code} already exists") from None
    return _version(row)


def add_product_version(
    engine: Engine,
    code: str,
    definition: ProductDefinition,
    *,
    effective_from: date,
    today: date,
    by: str,
    at: datetime,
    note: str = "",
) -> ProductVersion:
    """Record the next version of ``code``. ValueError naming the field for an invalid
    definition, another code in it, a date before today or before the newest version's, or a
    change of nothing; UnknownProduct when there is no such product."""
    if definition.code != code:
        raise ValueError(f"code: a version of {code} must keep the code {code}")
    _check(engine, definition, effective_from, today)
    with session_scope(engine) as s:
        if s.get(Product, code) is None:
            raise UnknownProduct(f"product {code} does not exist")
        newest = s.exec(
            select(ProductVersionRow)
            .where(ProductVersionRow.code == code)
            .order_by(col(ProductVersionRow.version).desc())
        ).first()
        assert newest is not None  # a product is created with its version 1
        if effective_from < newest.effective_from:
            raise ValueError(
                f"effective_from: {effective_from} is before {newest.effective_from}, when "
                f"version {newest.version} takes effect"
            )
        if definition.to_json() == newest.definition:
            raise ValueError(
                f"definition: the same as version {newest.version}; nothing would change"
            )
        row = ProductVersionRow(
            code=code,
            version=newest.version + 1,
            effective_from=effective_from,
            definition=definition.to_json(),
            note=note,
            recorded_by=by,
            recorded_at=at,
        )
        s.add(row)
        try:
            s.flush()
        except IntegrityError:
            raise ValueError(
                f"version: version {row.version} was recorded meanwhile; add the change again"
            ) from None
        _audit(s, row, action="product.version_added", at=at)
    return _version(row)


def _audit(s: Session, row: ProductVersionRow, *, action: str, at: datetime) -> None:
    append_audit(
        s,
        key=f"product/{row.code}/{row.version}",
        actor=row.recorded_by,
        action=action,
        occurred_at=at,
        detail={
            "code": row.code,
            "version": row.version,
            "effective_from": row.effective_from.isoformat(),
            "note": row.note,
            "definition": row.definition,
        },
    )
