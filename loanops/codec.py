"""Encryption of every Temporal payload (issue 11 §4): a payload codec with AES-GCM.

Everything our clients and workers hand to Temporal (workflow and activity inputs and results,
signals, updates, queries, failure details, and failure messages and stack traces through
``DefaultFailureConverterWithEncodedAttributes``) goes through ``EncryptionCodec`` on the way out,
so the Temporal server, its database and its Web UI hold only ciphertext. Search attributes and
workflow ids are not payloads: they carry no PII by design (``loanops.temporal.SEARCH_ATTRIBUTES``,
``loan-<application_no>``); memos are not used; headers are left to the SDK's default (not
encoded) and stay empty: no interceptor of ours writes one, and one that does must not put
borrower data there.

Wire format of an encrypted payload::

    metadata  encoding: binary/encrypted
              encryption-key-id: <key id>
    data      12-byte random nonce || AES-256-GCM(serialized original Payload, aad=key id)

Decisions where the issue is silent:

- The key is a *keyring*: the current key id encrypts, every key in the ring decrypts, so a key
  is rotated by adding a new one, making it current, and keeping the old ones for as long as a
  history written with them is still read (running loans, retention). A payload naming a key id
  not in the ring, or whose ciphertext or key id was altered (the GCM tag binds both), is refused
  with ``PayloadDecryptionError``; nothing is ever decoded with a guessed key.
- A payload without ``encoding: binary/encrypted`` passes through decoding unchanged: histories
  recorded before the codec (the replay tests' recorded histories, loans running at the upgrade)
  still replay and finish. Encoding always encrypts.
- No compression: compressing before encrypting lets the ciphertext length reveal content, and
  our payloads are small.
- Development and test installs without configured keys generate one 256-bit key on first use
  under ``var/`` (like the other development secrets); production refuses to start without
  ``LOANOPS_TEMPORAL_PAYLOAD_KEYS`` (``loanops.settings``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
DEV_KEYRING_FILE = "temporal-payload-keys.json"


class PayloadDecryptionError(ValueError):
    """An encrypted payload that cannot be decrypted: unknown key id, or altered."""


def parse_key(key_id: str, encoded: str) -> bytes:
    """A keyring entry: the base64 of 32 random bytes (AES-256). ValueError naming the key id
    otherwise (never the key itself)."""
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"temporal payload key {key_id!r} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"temporal payload key {key_id!r} must be {KEY_BYTES} bytes (base64), not {len(key)}"
        )
    return key


def new_key() -> str:
    """A fresh key for the keyring, base64 (``loanops`` operators paste it into the setting)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


class EncryptionCodec(PayloadCodec):
    """AES-GCM over each whole payload, with a keyring for rotation (see the module docstring)."""

    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError(f"the current key id {current_key_id!r} is not in the keyring")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current_key_id

    @property
    def current_key_id(self) -> str:
        return self._current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._current.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; an unencrypted one as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise PayloadDecryptionError("encrypted payload without a key id")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(f"encrypted with key {key_id!r}, not in the keyring")
        if len(payload.data) <= NONCE_BYTES:
            raise PayloadDecryptionError(f"encrypted payload (key {key_id!r}) is truncated")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"encrypted payload (key {key_id!r}) failed authentication: altered or "
                "encrypted with another key of the same id"
            ) from None
        original = Payload()
        original.ParseFromString(plain)
        return original

    @staticmethod
    def key_id_of(payload: Payload) -> str | None:
        """The key id an encrypted payload names; None for an unencrypted one."""
        if payload.metadata.get("encoding") != ENCODING:
            return None
        return payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")


def load_dev_keyring(var_dir: Path) -> dict[str, str]:
    """The development keyring under ``var_dir``, created (one key, file mode 0600) on first
    use so every process of one install (API, worker, CLI) shares it."""
    path = var_dir / DEV_KEYRING_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        # Written whole to a private file, then linked into place: a process starting at the
        # same moment either sees no file or the complete one, and the first link wins.
        tmp = var_dir / f".{DEV_KEYRING_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"dev-1": new_key()}))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    keys = json.loads(path.read_text())
    if not isinstance(keys, dict) or not keys:
        raise ValueError(f"{path} must hold a JSON object of key id → base64 key")
    return {str(k): str(v) for k, v in keys.items()}
