"""Borrowers' personal data at rest (issue 11 §3, §6): encrypted in every row, found by its blind
index, re-encrypted by a key rotation, and destroyed by retention with the financial records and
the audit chain intact."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

from loanops.audit import verify_chain
from loanops.blacklist import add_to_blacklist
from loanops.db import session_scope
from loanops.pii import (
    PII_COLUMNS,
    PiiDecryptionError,
    PiiKeyring,
    key_id_of,
    pii_keyring,
    reencrypt_rows,
    using_keyring,
)
from loanops.retention import PII_DESTROYED, run_retention, years_after
from models.audit import append_audit
from models.tables import (
    Application,
    AuditEvent,
    Borrower,
    BorrowerVersion,
    ContractSignature,
    Disbursement,
    Document,
    Loan,
    Payment,
    Payout,
    blacklisted,
    borrower_by_id_number,
)
from models.types import EncryptedString

NAME = "欧阳修远"
ID_NUMBER = "11010519491231002X"
PHONE = "13912345678"
CARD = "6222020200199887766"
PAYEE_NAME = "欧阳修远（个人）"
IDENTIFIERS = [NAME, ID_NUMBER, PHONE, CARD, PAYEE_NAME]


def _key(byte: int) -> bytes:
    return bytes([byte]) * 32


def _ring(*ids: str, current: str) -> PiiKeyring:
    keys = {"k1": _key(1), "k2": _key(2), "k3": _key(3)}
    return PiiKeyring(keys={i: keys[i] for i in ids}, current_key_id=current, index_key=b"i" * 32)


# --- the keyring ---


def test_values_round_trip_and_a_tampered_or_foreign_value_is_refused() -> None:
    ring = _ring("k1", current="k1")
    stored = ring.encrypt(NAME)
    assert stored.startswith("enc:v1:k1:") and NAME not in stored
    assert ring.encrypt(NAME) != stored  # a fresh nonce each time
    assert ring.decrypt(stored) == NAME
    assert ring.decrypt("plain, never encrypted") == "plain, never encrypted"
    raw = bytearray(base64.b64decode(stored.split(":", 3)[3]))
    raw[-1] ^= 1
    with pytest.raises(PiiDecryptionError, match="altered"):
        ring.decrypt("enc:v1:k1:" + base64.b64encode(bytes(raw)).decode())
    with pytest.raises(PiiDecryptionError, match="'k1', not in the keyring"):
        _ring("k2", current="k2").decrypt(stored)
    # The key id is authenticated: relabelling a value under another key of the ring fails.
    with pytest.raises(PiiDecryptionError):
        _ring("k1", "k2", current="k1").decrypt(stored.replace("enc:v1:k1:", "enc:v1:k2:"))


def test_the_blind_index_is_keyed_and_normalised() -> None:
    ring = _ring("k1", current="k1")
    assert ring.blind_index(ID_NUMBER) == ring.blind_index(" 11010519491231002x ")
    assert ring.blind_index(ID_NUMBER) != ring.blind_index("110105194912310021")
    other = PiiKeyring(keys={"k1": _key(1)}, current_key_id="k1", index_key=b"j" * 32)
    assert other.blind_index(ID_NUMBER) != ring.blind_index(ID_NUMBER)
    assert ID_NUMBER not in ring.blind_index(ID_NUMBER)


def test_the_rotation_table_names_every_encrypted_column() -> None:
    declared: dict[str, set[str]] = {}
    for table in SQLModel.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, EncryptedString):
                declared.setdefault(table.name, set()).add(column.name)
    assert declared == {t: set(cols) for t, (_pk, cols) in PII_COLUMNS.items()}


# --- rows ---


def _raw_dump(engine: Engine) -> bytes:
    """Every value of every table, read through a plain connection (no model types)."""
    out = bytearray()
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        out += bytes(value)
                    else:
                        out += str(value).encode("utf-8")
                    out += b"\x00"
    return bytes(out)


def leaks(dump: bytes, identifiers: list[str]) -> list[str]:
    """The identifiers found in ``dump`` as they are or as JSON writes them (SQLite's JSON
    columns hold non-ASCII characters as \\u escapes)."""
    return [
        v for v in identifiers if v.encode("utf-8") in dump or json.dumps(v)[1:-1].encode() in dump
    ]


@pytest.fixture
def borrower_rows(engine: Engine) -> Iterator[dict[str, Any]]:
    """A borrower with an application, a settled loan, its contract, signature, payout,
    disbursement and a payment — every PII column filled — written through the models."""
    now = datetime(2020, 3, 2, 8, 0, tzinfo=UTC)
    app_no = f"A20200302-{uuid.uuid4().hex[:6].upper()}"
    with session_scope(engine) as s:
        b = Borrower(
            name=NAME,
            id_number=ID_NUMBER,
            phone=PHONE,
            bank_card=CARD,
            monthly_income=Decimal("18000.00"),
        )
        s.add(b)
        s.flush()
        s.add(
            BorrowerVersion(
                borrower_id=b.id,
                version=1,
                name=NAME,
                phone=PHONE,
                bank_card=CARD,
                monthly_income=Decimal("18000.00"),
                recorded_at=now,
                recorded_by="officer",
                reason="submitted",
            )
        )
        s.flush()
        s.add(
            Application(
                application_no=app_no,
                borrower_id=b.id,
                borrower_version=1,
                amount=Decimal("50000.00"),
                term_months=6,
                purpose="店铺装修",
                repayment_source="经营收入",
                stage="SETTLED",
                submitted_by="officer",
                created_at=now,
                updated_at=now + timedelta(days=200),
            )
        )
        doc_id = uuid.uuid4()
        s.add(
            Document(
                id=doc_id,
                application_no=app_no,
                kind="contract",
                filename="c.pdf",
                content_type="application/pdf",
                sha256="0" * 64,
                content=b"%PDF",
                signer_name=NAME,
                payee_account=CARD,
            )
        )
        s.add(
            ContractSignature(
                document_id=doc_id,
                application_no=app_no,
                signer_name=NAME,
                client_address="127.0.0.1",
                user_agent="test",
                confirmed=[],
                code_id=uuid.uuid4(),
                code_issued_at=now,
                submitted_at=now,
                document_sha256="0" * 64,
            )
        )
        s.add(
            Payout(
                order_key=f"{app_no}/payout/1",
                application_no=app_no,
                amount=Decimal("50000.00"),
                payee_account=CARD,
                payee_name=PAYEE_NAME,
                checklist=[],
                requested_by="ops",
                authorized_by=["ops2"],
                created_at=now,
                updated_at=now,
            )
        )
        s.add(
            Disbursement(
                application_no=app_no,
                idempotency_key=f"{app_no}/disb",
                amount=Decimal("50000.00"),
                net_amount=Decimal("50000.00"),
                bank_card=CARD,
                approved_by="ops2",
                checklist={},
            )
        )
        s.add(
            Loan(
                application_no=app_no,
                contract_no=f"C-{app_no}",
                principal=Decimal("50000.00"),
                annual_rate=Decimal("0.12"),
                term_months=6,
                method="equal_installment",
                apr=Decimal("0.12"),
                apr_compound=Decimal("0.126825"),
                status="settled",
                settled_at=now + timedelta(days=200),
            )
        )
        s.add(
            Payment(
                application_no=app_no,
                external_ref=f"{app_no}/pay/1",
                amount=Decimal("51234.56"),
                paid_at=now + timedelta(days=200),
                recorded_by="ops",
                allocation=[{"installment": "1", "principal": "50000.00"}],
            )
        )
        append_audit(
            s,
            key=f"test/{app_no}/settled",
            application_no=app_no,
            actor="system",
            action="loan.settled",
            occurred_at=now + timedelta(days=200),
            detail={"amount": "51234.56"},
        )
    yield {"application_no": app_no, "borrower_id": b.id, "settled_on": date(2020, 9, 18)}


def test_raw_rows_hold_no_identifier_and_look_ups_still_find_the_borrower(
    engine: Engine, borrower_rows: dict[str, Any]
) -> None:
    add_to_blacklist(engine, id_number=ID_NUMBER, reason="forged papers", by="manager")
    dump = _raw_dump(engine)
    assert leaks(dump, IDENTIFIERS) == []
    assert dump.count(b"enc:v1:") >= 12  # the values are there, encrypted
    with Session(engine) as s:
        found = borrower_by_id_number(s, ID_NUMBER.lower())
        assert found is not None and found.id == borrower_rows["borrower_id"]
        assert (found.name, found.phone, found.bank_card) == (NAME, PHONE, CARD)
        assert blacklisted(s, ID_NUMBER) is not None
        assert borrower_by_id_number(s, "110105198805120026") is None
        payout = s.exec(select(Payout)).one()
        assert (payout.payee_name, payout.payee_account) == (PAYEE_NAME, CARD)


def test_rotation_reencrypts_every_row_resumably_and_old_rows_still_read(
    engine: Engine, borrower_rows: dict[str, Any]
) -> None:
    with using_keyring(_ring("k1", current="k1")), session_scope(engine) as s:
        b = Borrower(
            name="李四",
            id_number="110105198805120026",
            phone="13800138000",
            bank_card="6222020200112233446",
            monthly_income=Decimal("1.00"),
        )
        s.add(b)
    before = pii_keyring()
    # The old key and the install's own stay in the ring to read; k2 becomes current.
    ring = PiiKeyring(
        keys={**before.keys, "k1": _key(1), "k2": _key(2)},
        current_key_id="k2",
        index_key=before.index_key,
    )
    with using_keyring(ring):
        with Session(engine) as s:  # old rows read before the rotation
            assert borrower_by_id_number(s, ID_NUMBER) is not None
            assert s.get(Borrower, b.id).name == "李四"  # type: ignore[union-attr]
        with engine.connect() as conn:  # committed row by row (batches of one)
            first = reencrypt_rows(conn, ring, batch=1)
        # Every row of the fixture and the new borrower (the blacklist is empty here).
        assert first == {
            "borrowers": 2,
            "borrower_versions": 1,
            "documents": 1,
            "disbursements": 1,
            "payouts": 1,
            "refunds": 0,
            "contract_signatures": 1,
            "blacklist_entries": 0,
        }
        with engine.connect() as conn:
            assert sum(reencrypt_rows(conn, ring).values()) == 0  # idempotent
            for table, (_pk, columns) in PII_COLUMNS.items():
                for row in conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {table}")):
                    assert {key_id_of(v) for v in row if v is not None} <= {"k2"}, table
    # k1 and the install's key gone: everything still reads under k2 alone.
    only_new = PiiKeyring(keys={"k2": _key(2)}, current_key_id="k2", index_key=before.index_key)
    with using_keyring(only_new), Session(engine) as s:
        found = borrower_by_id_number(s, ID_NUMBER)
        assert found is not None and (found.name, found.phone) == (NAME, PHONE)
        assert s.get(Borrower, b.id).name == "李四"  # type: ignore[union-attr]
        assert s.exec(select(Payout)).one().payee_name == PAYEE_NAME


def test_retention_tombstones_a_settled_borrower_after_n_years_and_keeps_the_money_and_chain(
    engine: Engine, borrower_rows: dict[str, Any]
) -> None:
    settled: date = borrower_rows["settled_on"]
    app_no = borrower_rows["application_no"]
    due = years_after(settled, 5)  # the default policy's pii_retention_years
    with Session(engine) as s:
        payments_before = [p.model_dump() for p in s.exec(select(Payment)).all()]
        audit_before = [e.model_dump() for e in s.exec(select(AuditEvent)).all()]

    early = run_retention(engine, today=due - timedelta(days=1))
    assert early.destroyed == [] and early.retention_years == 5
    dry = run_retention(engine, today=due, dry_run=True)
    assert [d.application_nos for d in dry.destroyed] == [(app_no,)]
    with Session(engine) as s:
        assert borrower_by_id_number(s, ID_NUMBER) is not None  # the dry run changed nothing

    done = run_retention(engine, today=due, by="retention-job")
    assert [d.borrower_id for d in done.destroyed] == [borrower_rows["borrower_id"]]
    assert done.rows == 6  # borrower, its version, contract, signature, payout, disbursement
    assert run_retention(engine, today=due).destroyed == []  # idempotent

    with Session(engine) as s:
        assert borrower_by_id_number(s, ID_NUMBER) is None
        b = s.get(Borrower, borrower_rows["borrower_id"])
        assert b is not None and b.name == "[destroyed]" and b.id_number.startswith("[destroyed]")
        assert s.exec(select(Payout)).one().payee_account == "[destroyed]"
        assert s.exec(select(Disbursement)).one().amount == Decimal("50000.00")
        assert [p.model_dump() for p in s.exec(select(Payment)).all()] == payments_before
        after = [e.model_dump() for e in s.exec(select(AuditEvent)).all()]
        assert [e for e in after if e in audit_before] == audit_before  # not one rewritten
        (event,) = [e for e in after if e["action"] == PII_DESTROYED]
        assert event["actor"] == "retention-job"
        assert event["detail"]["applications"] == [app_no]
    report = verify_chain(engine)
    assert report.intact, report
    # Even decrypted, nothing of the borrower is left.
    with Session(engine) as s:
        values: list[Any] = []
        for model in (Borrower, BorrowerVersion, Document, ContractSignature, Payout, Disbursement):
            values += [row.model_dump() for row in s.exec(select(model)).all()]
    assert not [v for v in IDENTIFIERS if v in repr(values)]


def test_a_written_off_or_still_open_relationship_is_kept(
    engine: Engine, borrower_rows: dict[str, Any]
) -> None:
    with session_scope(engine) as s:
        s.add(
            Application(
                application_no="A20240101-OPEN01",
                borrower_id=borrower_rows["borrower_id"],
                borrower_version=1,
                amount=Decimal("1000.00"),
                term_months=3,
                purpose="p",
                repayment_source="r",
                stage="SERVICING",
                submitted_by="officer",
            )
        )
    assert run_retention(engine, today=date(2040, 1, 1)).destroyed == []


# --- the commands ---


def test_the_rotate_and_retention_commands(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``loanops keys rotate`` under a new current key re-encrypts once, then finds nothing to
    do; ``loanops retention run --dry-run`` reports without changing anything."""
    from typer.testing import CliRunner

    from loanops.cli import app
    from loanops.db import make_engine
    from loanops.pii import set_pii_keyring
    from loanops.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    k1, k2 = (base64.b64encode(_key(n)).decode() for n in (1, 2))
    monkeypatch.setenv("LOANOPS_DATABASE_URL", url)
    monkeypatch.setenv("LOANOPS_PII_INDEX_KEY", "Pm4Wq7Zr2Tx9Lb5Nc8Yk3Jd6Hf1Gs0Va")
    monkeypatch.setenv("LOANOPS_PII_KEYS", json.dumps({"k1": k1}))
    runner = CliRunner()

    def cli(*args: str) -> Any:
        get_settings.cache_clear()
        set_pii_keyring(None)
        return runner.invoke(app, list(args))

    engine = make_engine(url)
    try:
        assert cli("migrate").exit_code == 0
        with session_scope(engine) as s:
            s.add(
                Borrower(
                    name=NAME,
                    id_number=ID_NUMBER,
                    phone=PHONE,
                    bank_card=CARD,
                    monthly_income=Decimal("1.00"),
                )
            )
        monkeypatch.setenv("LOANOPS_PII_KEYS", json.dumps({"k1": k1, "k2": k2}))
        monkeypatch.setenv("LOANOPS_PII_KEY_ID", "k2")
        rotated = cli("keys", "rotate", "--reindex")
        assert rotated.exit_code == 0, rotated.output
        assert "borrowers\t1 rows re-encrypted" in rotated.stdout
        assert "total\t1 rows now under key k2" in rotated.stdout
        assert "blind index\t0 rows reindexed" in rotated.stdout  # the index key did not change
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT name, id_number FROM borrowers")).one()
        assert {key_id_of(v) for v in row} == {"k2"}
        again = cli("keys", "rotate")
        assert "total\t0 rows now under key k2" in again.stdout
        dry = cli("retention", "run", "--dry-run", "--today", "2040-01-01")
        assert dry.exit_code == 0, dry.output
        assert "would destroy 0 borrowers (0 rows) — dry run, nothing changed" in dry.stdout
        bad = cli("retention", "run", "--today", "someday")
        assert bad.exit_code != 0 and "--today" in bad.output
        get_settings.cache_clear()
        set_pii_keyring(None)
        with using_keyring(_ring("k2", current="k2")), Session(engine) as s:
            assert s.exec(select(Borrower)).one().name == NAME
    finally:
        engine.dispose()
        get_settings.cache_clear()
        set_pii_keyring(None)


# --- the migration ---


def test_the_migration_encrypts_and_indexes_the_rows_written_before_it(
    fresh_database_url: str,
) -> None:
    """Rows written in plain text before 0015_pii are encrypted and indexed by it, then read
    back through the models; the downgrade decrypts them again."""
    from loanops.db import make_engine
    from loanops.migrate import downgrade, upgrade

    downgrade(fresh_database_url, "0014_auth")
    engine = make_engine(fresh_database_url)
    borrower_id = uuid.uuid4()
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO borrowers (id, name, id_number, phone, bank_card, "
                    "monthly_income, created_at) VALUES (:id, :n, :i, :p, :c, 100, :t)"
                ),
                {
                    "id": borrower_id.hex if engine.dialect.name == "sqlite" else borrower_id,
                    "n": NAME,
                    "i": ID_NUMBER,
                    "p": PHONE,
                    "c": CARD,
                    "t": now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now,
                },
            )
            conn.execute(
                sa.text(
                    "INSERT INTO blacklist_entries (id_number, reason, recorded_by, recorded_at) "
                    "VALUES (:i, 'fraud', 'manager', :t)"
                ),
                {"i": ID_NUMBER, "t": now.replace(tzinfo=None)},
            )
        upgrade(fresh_database_url)
        engine.dispose()
        dump = _raw_dump(engine)
        assert leaks(dump, IDENTIFIERS) == []
        with Session(engine) as s:
            found = borrower_by_id_number(s, ID_NUMBER)
            assert found is not None and found.id == borrower_id
            assert (found.name, found.phone, found.bank_card) == (NAME, PHONE, CARD)
            assert blacklisted(s, ID_NUMBER) is not None
        downgrade(fresh_database_url, "0014_auth")
        engine.dispose()
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT name, id_number, phone FROM borrowers")).one()
        assert tuple(row) == (NAME, ID_NUMBER, PHONE)
        upgrade(fresh_database_url)
    finally:
        engine.dispose()
