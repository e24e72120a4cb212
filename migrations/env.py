"""Alembic environment: the URL comes from the caller's Config, else from Settings."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import BigInteger, DateTime, String, Text
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from loanops.db import make_engine
from loanops.settings import get_settings
from models.types import EncryptedString, ScaledDecimal, UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render our column types as the plain types they store, so migrations need no app imports."""
    if type_ == "type":
        if isinstance(obj, ScaledDecimal):
            return "sa." + repr(BigInteger())
        if isinstance(obj, UTCDateTime):
            return "sa." + repr(DateTime(timezone=True))
        if isinstance(obj, EncryptedString):
            return "sa." + repr(Text())
        if isinstance(obj, AutoString):
            return "sa." + repr(String(length=obj.length))
    return False


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        render_item=render_item,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=render_item,
        render_as_batch=True,
        compare_type=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
