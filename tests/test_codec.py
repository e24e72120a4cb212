"""The payload codec (loanops.codec) and the one data converter (loanops.temporal)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from loanops.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    load_dev_keyring,
    new_key,
)
from loanops.settings import Settings
from loanops.temporal import data_converter, payload_codec
from tests.conftest import TEST_PAYLOAD_KEY_ID, TEST_PAYLOAD_KEYS, codec_settings

ID_NUMBER = "110105198805120026"
OLD_KEY_ID = "test-2026-01"


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def _codec(current: str = TEST_PAYLOAD_KEY_ID) -> EncryptionCodec:
    return payload_codec(
        Settings(
            environment="test",
            temporal_payload_keys=TEST_PAYLOAD_KEYS,
            temporal_payload_key_id=current,
        )
    )


async def test_a_payload_is_encrypted_under_the_current_key_and_decrypts_back() -> None:
    codec = _codec()
    original = _plain(ID_NUMBER)
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == TEST_PAYLOAD_KEY_ID.encode()
    assert ID_NUMBER.encode() not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # the original metadata is sealed too
    [back] = await codec.decode([sealed])
    assert back == original


async def test_the_same_payload_encrypts_differently_each_time() -> None:
    codec = _codec()
    [a, b] = await codec.encode([_plain(ID_NUMBER), _plain(ID_NUMBER)])
    assert a.data != b.data


async def test_a_payload_encrypted_with_an_old_key_still_decodes_after_rotation() -> None:
    before = _codec(current=OLD_KEY_ID)
    [old] = await before.encode([_plain(ID_NUMBER)])
    assert old.metadata[KEY_ID_METADATA] == OLD_KEY_ID.encode()
    after = _codec()  # the new key is current; the old one stays in the ring
    [back] = await after.decode([old])
    assert back == _plain(ID_NUMBER)
    [new] = await after.encode([_plain(ID_NUMBER)])
    assert new.metadata[KEY_ID_METADATA] == TEST_PAYLOAD_KEY_ID.encode()


async def test_a_key_dropped_from_the_ring_is_named_when_its_payload_cannot_be_read() -> None:
    [old] = await _codec(current=OLD_KEY_ID).encode([_plain(ID_NUMBER)])
    only_new = EncryptionCodec(
        {TEST_PAYLOAD_KEY_ID: base64.b64decode(TEST_PAYLOAD_KEYS[TEST_PAYLOAD_KEY_ID])},
        TEST_PAYLOAD_KEY_ID,
    )
    with pytest.raises(PayloadDecryptionError, match=f"'{OLD_KEY_ID}', not in the keyring"):
        await only_new.decode([old])


@pytest.mark.parametrize("where", ["first byte of the nonce", "last byte of the tag", "middle"])
async def test_a_tampered_payload_is_refused(where: str) -> None:
    codec = _codec()
    [sealed] = await codec.encode([_plain(ID_NUMBER)])
    data = bytearray(sealed.data)
    index = {"first byte of the nonce": 0, "last byte of the tag": -1, "middle": len(data) // 2}
    data[index[where]] ^= 0x01
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(data))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([tampered])


async def test_a_payload_relabelled_with_another_key_id_is_refused() -> None:
    codec = _codec()
    [sealed] = await codec.encode([_plain(ID_NUMBER)])
    relabelled = Payload(
        metadata={"encoding": ENCODING, KEY_ID_METADATA: OLD_KEY_ID.encode()}, data=sealed.data
    )
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([relabelled])


async def test_a_truncated_or_keyless_encrypted_payload_is_refused() -> None:
    codec = _codec()
    with pytest.raises(PayloadDecryptionError, match="truncated"):
        codec.decrypt(
            Payload(
                metadata={"encoding": ENCODING, KEY_ID_METADATA: TEST_PAYLOAD_KEY_ID.encode()},
                data=b"short",
            )
        )
    with pytest.raises(PayloadDecryptionError, match="without a key id"):
        codec.decrypt(Payload(metadata={"encoding": ENCODING}, data=b"x" * 40))


async def test_an_unencrypted_payload_passes_through_decoding() -> None:
    """Histories recorded before the codec (and loans running at the upgrade) still decode."""
    codec = _codec()
    [back] = await codec.decode([_plain(ID_NUMBER)])
    assert back == _plain(ID_NUMBER)


async def test_the_data_converter_encrypts_values_and_failure_messages() -> None:
    converter = data_converter(codec_settings())
    [payload] = await converter.encode([{"id_number": ID_NUMBER}])
    assert payload.metadata["encoding"] == ENCODING
    assert ID_NUMBER.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [dict]) == [{"id_number": ID_NUMBER}]

    failure = Failure()
    error = ApplicationError(f"borrower {ID_NUMBER} refused", {"id_number": ID_NUMBER})
    await converter.encode_failure(error, failure)
    assert ID_NUMBER.encode() not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    back = await converter.decode_failure(failure)
    assert str(back) == f"borrower {ID_NUMBER} refused"


def test_production_refuses_to_start_without_a_keyring() -> None:
    with pytest.raises(ValidationError, match="LOANOPS_TEMPORAL_PAYLOAD_KEYS must be set"):
        Settings(
            environment="production",
            secret_key="Zq3v9Lr0xT7mWb2NcY5pKd8sHf1gJa4e",
            sms_callback_secret="m1N2b3V4c5X6z7L8k9J0h-G_fDsApOiU",
            bank_callback_secret="Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz9Xc",
        )


@pytest.mark.parametrize(
    ("keys", "current", "message"),
    [
        ({"k1": base64.b64encode(b"short").decode()}, None, "must be 32 bytes"),
        ({"k1": "not base64!"}, None, "not valid base64"),
        ({"k1": new_key(), "k2": new_key()}, None, "must name the current key"),
        ({"k1": new_key()}, "k9", "'k9' is not in the keyring"),
    ],
)
def test_a_bad_keyring_is_refused_naming_the_key_not_its_value(
    keys: dict[str, str], current: str | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        Settings(environment="test", temporal_payload_keys=keys, temporal_payload_key_id=current)
    for value in keys.values():
        assert value not in str(caught.value)


def test_development_generates_one_private_keyring_and_reuses_it(tmp_path: Path) -> None:
    first = load_dev_keyring(tmp_path / "var")
    path = tmp_path / "var" / "temporal-payload-keys.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_dev_keyring(tmp_path / "var") == first
    [key_id] = first
    assert len(base64.b64decode(first[key_id])) == 32
    assert list((tmp_path / "var").iterdir()) == [path]  # no temporary file left behind
