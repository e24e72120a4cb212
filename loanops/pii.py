"""Borrowers' personal data encrypted at rest (issue 11 §3): AES-GCM per value with a keyring,
and a keyed hash (blind index) for look-ups.

Stored form of an encrypted value (a text column)::

    enc:v1:<key id>:<base64(12-byte nonce || AES-256-GCM(utf-8 value, aad = "pii:" + key id))>

``EncryptedString`` (models.types) writes every value of the PII columns in this form and reads
it back transparently, so code that reads ``borrower.phone`` is unchanged. A stored value without
the ``enc:v1:`` prefix (rows written before the migration that encrypts them, if any are ever
read) is returned as it is.

Decisions where the issue is silent:

- The keyring mirrors the Temporal payload codec's (loanops.codec) but is a *separate* keyring
  (``LOANOPS_PII_KEYS`` / ``LOANOPS_PII_KEY_ID``): the database and Temporal are different
  stores with different lifetimes, and one key compromised must not open the other. The
  current key encrypts; every key in the ring decrypts; ``loanops keys rotate`` re-encrypts every
  row under the current key (rows already under it are skipped, so it is idempotent, and it
  commits in batches, so an interrupted run resumes where it stopped). An old key may be removed
  from the ring once a rotation has finished.
- The blind index is HMAC-SHA256 under its own key (``LOANOPS_PII_INDEX_KEY``), of the value
  normalised as it is compared (an identity number upper-cased and stripped). It is *not* rotated
  with the encryption keys: changing it means recomputing every index column from the decrypted
  values (``reindex``), which ``loanops keys rotate --reindex`` does.
- Development and test installs generate both under ``key_dir`` (``var/keys``) on first use, like
  the other development secrets; production refuses to start without them (loanops.settings).
- A value destroyed by retention is replaced by a *tombstone* (``TOMBSTONE`` or
  ``tombstone_for``), stored encrypted like any value; ``is_tombstone`` recognises it and the
  maskers show it as it is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.masking import TOMBSTONE, is_tombstone
from loanops.codec import KEY_BYTES, NONCE_BYTES, parse_key

if TYPE_CHECKING:
    from loanops.settings import Settings

PREFIX = "enc:v1:"
DEV_KEYRING_FILE = "pii-keys.json"
INDEX_KEY_NAME = "pii_index_key"


class PiiDecryptionError(ValueError):
    """A stored value that cannot be decrypted: unknown key id, malformed or altered."""


def tombstone_for(unique: str) -> str:
    """A tombstone for a column that must stay unique (the borrower's identity number)."""
    return f"{TOMBSTONE}:{unique}"


@dataclass(frozen=True)
class PiiKeyring:
    keys: Mapping[str, bytes]
    current_key_id: str
    index_key: bytes

    def __post_init__(self) -> None:
        if self.current_key_id not in self.keys:
            raise ValueError(f"the current PII key id {self.current_key_id!r} is not in the ring")
        if ":" in "".join(self.keys):
            raise ValueError("PII key ids must not contain ':'")
        if len(self.index_key) < 32:
            raise ValueError("the PII index key must be at least 32 bytes")

    def encrypt(self, value: str) -> str:
        key_id = self.current_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[key_id]).encrypt(
            nonce, value.encode("utf-8"), f"pii:{key_id}".encode()
        )
        return f"{PREFIX}{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str) -> str:
        """The value; a stored value without the prefix (never encrypted) as it is."""
        if not stored.startswith(PREFIX):
            return stored
        key_id, sep, body = stored[len(PREFIX) :].partition(":")
        if not sep:
            raise PiiDecryptionError("encrypted value without a key id")
        key = self.keys.get(key_id)
        if key is None:
            raise PiiDecryptionError(f"encrypted with PII key {key_id!r}, not in the keyring")
        try:
            raw = base64.b64decode(body, validate=True)
            plain = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"pii:{key_id}".encode()
            )
        except (InvalidTag, ValueError):
            raise PiiDecryptionError(
                f"encrypted value (PII key {key_id!r}) is malformed or was altered"
            ) from None
        return plain.decode("utf-8")

    def blind_index(self, value: str) -> str:
        """HMAC-SHA256 (hex) of the normalised value: equal values, equal indexes."""
        normalised = value.strip().upper()
        return hmac.new(self.index_key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiKeyring:
        encoded = settings.pii_keys or load_dev_keyring_file(settings)
        keys = {k: parse_key(k, v) for k, v in encoded.items()}
        current = settings.pii_key_id or (next(iter(keys)) if len(keys) == 1 else None)
        if current is None:
            raise ValueError("LOANOPS_PII_KEY_ID must name the current key")
        index_key = settings.pii_index_key
        if not index_key:
            from loanops.settings import local_secret

            index_key = local_secret(settings.key_dir, INDEX_KEY_NAME)
        return cls(keys=keys, current_key_id=current, index_key=index_key.encode())


def load_dev_keyring_file(settings: Settings) -> dict[str, str]:
    """The development install's PII keyring, ``key_dir/pii-keys.json``: created on first use
    (one key ``dev-1``, mode 0600, written whole then linked into place so processes starting at
    once agree on it)."""
    key_dir = Path(settings.key_dir)
    path = key_dir / DEV_KEYRING_FILE
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = key_dir / f".{DEV_KEYRING_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"dev-1": new_key()}))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path} must hold a JSON object of key id → base64 key")
    return {str(k): str(v) for k, v in data.items()}


_active: PiiKeyring | None = None


def pii_keyring() -> PiiKeyring:
    """The keyring of this process, from the settings on first use."""
    global _active
    if _active is None:
        from loanops.settings import get_settings

        _active = PiiKeyring.from_settings(get_settings())
    return _active


def set_pii_keyring(keyring: PiiKeyring | None) -> None:
    """Install ``keyring`` for this process (None: the settings' again, on next use)."""
    global _active
    _active = keyring


@contextmanager
def using_keyring(keyring: PiiKeyring) -> Iterator[PiiKeyring]:
    previous = _active
    set_pii_keyring(keyring)
    try:
        yield keyring
    finally:
        set_pii_keyring(previous)


def blind_index(value: str) -> str:
    return pii_keyring().blind_index(value)


def new_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


# --- The rows: which columns hold personal data, re-encryption and re-indexing ---

# table → (primary key columns, encrypted columns). Kept in step with the ``_pii`` columns of
# models.tables (tests/test_pii.py checks it).
PII_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "borrowers": (("id",), ("name", "id_number", "phone", "bank_card")),
    "borrower_versions": (("borrower_id", "version"), ("name", "phone", "bank_card")),
    "documents": (("id",), ("signer_name", "payee_account")),
    "disbursements": (("id",), ("bank_card",)),
    "payouts": (("order_key",), ("payee_account", "payee_name")),
    "refunds": (("application_no",), ("payee_account", "payee_name")),
    "contract_signatures": (("document_id",), ("signer_name",)),
    "blacklist_entries": (("id_number",), ("id_number",)),
}
# table → the column whose blind index it keeps (in ``id_number_index``).
INDEXED: dict[str, str] = {"borrowers": "id_number", "blacklist_entries": "id_number"}


def key_id_of(stored: str | None) -> str | None:
    """The key id a stored value was encrypted under; None for one never encrypted."""
    if stored is None or not stored.startswith(PREFIX):
        return None
    return stored[len(PREFIX) :].partition(":")[0]


def reencrypt_rows(
    connection: Any, keyring: PiiKeyring, *, batch: int = 200, commit: bool = True
) -> dict[str, int]:
    """Every PII value not yet under the current key (never encrypted, or under an older one)
    encrypted under it; rows already under it are left alone, so a second run changes nothing.
    ``commit``: commit after each batch (resumable: an interrupted run keeps what it did).
    Returns the rows changed per table. Works on plain SQL, never through the models, so it
    also serves the migration that encrypts the rows written before it."""
    import sqlalchemy as sa

    changed: dict[str, int] = {}
    current = keyring.current_key_id
    # A migration before the one that creates a table (0015_pii before 0016_refund) finds fewer.
    present = set(sa.inspect(connection).get_table_names())
    for table_name, (pk, columns) in PII_COLUMNS.items():
        if table_name not in present:
            continue
        table = sa.table(table_name, *(sa.column(c) for c in {*pk, *columns}))
        count = 0
        while True:
            stale = sa.or_(
                *(
                    sa.and_(
                        table.c[c].is_not(None),
                        sa.not_(table.c[c].startswith(f"{PREFIX}{current}:", autoescape=True)),
                    )
                    for c in columns
                )
            )
            rows = connection.execute(sa.select(table).where(stale).limit(batch)).mappings().all()
            if not rows:
                break
            for row in rows:
                values = {
                    c: keyring.encrypt(keyring.decrypt(row[c]))
                    for c in columns
                    if row[c] is not None and key_id_of(row[c]) != current
                }
                where = sa.and_(*(table.c[k] == row[k] for k in pk))
                connection.execute(sa.update(table).where(where).values(**values))
            count += len(rows)
            if commit:
                connection.commit()
        changed[table_name] = count
    return changed


def reindex_rows(connection: Any, keyring: PiiKeyring) -> int:
    """Every blind index recomputed from the decrypted value (after the index key changed, or
    to fill the column the migration adds). Returns the rows written."""
    import sqlalchemy as sa

    count = 0
    for table_name, source in INDEXED.items():
        pk = PII_COLUMNS[table_name][0]
        table = sa.table(table_name, *(sa.column(c) for c in {*pk, source, "id_number_index"}))
        for row in connection.execute(sa.select(table)).mappings().all():
            value = keyring.decrypt(row[source])
            index = None if is_tombstone(value) else keyring.blind_index(value)
            if index != row["id_number_index"]:
                where = sa.and_(*(table.c[k] == row[k] for k in pk))
                connection.execute(sa.update(table).where(where).values(id_number_index=index))
                count += 1
    return count
