"""Column types that keep money and rates exact on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator


class ScaledDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` stored as an integer count of ``10**-places`` units.

    SQLite's NUMERIC goes through float (FIELD_NOTES), so money is stored as fen (``places=2``)
    and rates as millionths (``places=6``). A value with more places than the column holds is
    refused rather than silently rounded: rounding is the money engine's job, not the database's.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, places: int) -> None:
        super().__init__()
        self.places = places
        self._unit = Decimal(1).scaleb(-places)

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        scaled = d.scaleb(self.places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{d} has more than {self.places} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) * self._unit).quantize(self._unit)


def Money() -> ScaledDecimal:
    return ScaledDecimal(2)


def Rate() -> ScaledDecimal:
    return ScaledDecimal(6)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps, stored as UTC on both databases; naive values are refused."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(DateTime(timezone=dialect.name != "sqlite"))

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"timestamp {value!r} must be timezone-aware")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EncryptedString(TypeDecorator[str]):
    """Personal data encrypted at rest (issue 11 §3): the value is stored as AES-GCM ciphertext
    naming its key id (``loanops.pii``), in a text column; read back as the value. Equality in a
    query cannot work on it (every encryption differs): look rows up by their blind index."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        from loanops.pii import pii_keyring

        return pii_keyring().encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        from loanops.pii import pii_keyring

        return pii_keyring().decrypt(value)
