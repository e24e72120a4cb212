"""The Alembic migrations build exactly the schema the SQLModel tables describe, and unwind fully."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlmodel import Session, SQLModel, select

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from loanops.db import make_engine
from loanops.migrate import alembic_config, downgrade, upgrade
from models.tables import Application, BorrowerVersion, Document

EXPECTED_TABLES = {
    "users",
    "lpr_rates",
    "borrowers",
    "borrower_versions",
    "applications",
    "documents",
    "loans",
    "installments",
    "payments",
    "disbursements",
    "tasks",
    "notices",
    "audit_events",
    "audit_chain",
    "loan_policies",
    "scorecards",
    "assessments",
    "blacklist_entries",
    "loan_classifications",
    "portfolio_snapshots",
    "products",
    "product_versions",
    "signing_codes",
    "contract_signatures",
    "funding_pools",
    "funding_reservations",
    "payouts",
    "funding_movements",
    "loan_archives",
    "loan_risk_flags",
    "post_loan_reviews",
    "collection_contacts",
    "loan_write_offs",
    "write_off_recoveries",
    "reconciliation_runs",
    "reconciliation_differences",
    "login_throttles",
    "auth_sessions",
    "refresh_tokens",
    "payment_refs",
    "refunds",
}


def _diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(ctx, SQLModel.metadata))


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


@pytest.fixture
def database_url(fresh_database_url: str) -> str:
    """These tests migrate up and down: each gets a database of its own."""
    return fresh_database_url


@pytest.fixture
def migrated_engine(database_url: str) -> Any:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def test_metadata_describes_the_expected_tables() -> None:
    assert set(SQLModel.metadata.tables) == EXPECTED_TABLES


def test_upgraded_schema_matches_metadata(database_url: str, migrated_engine: Engine) -> None:
    assert _tables(migrated_engine) == EXPECTED_TABLES
    assert _current_revision(migrated_engine) == _head(database_url)
    assert _diff(migrated_engine) == []


def test_fresh_sqlite_file_upgrades_to_metadata(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    eng = make_engine(url)
    try:
        assert _tables(eng) == EXPECTED_TABLES
        assert _diff(eng) == []
    finally:
        eng.dispose()


def test_upgrade_at_head_is_a_no_op(database_url: str, migrated_engine: Engine) -> None:
    upgrade(database_url)
    assert _current_revision(migrated_engine) == _head(database_url)
    assert _diff(migrated_engine) == []


def test_downgrade_to_base_drops_everything_and_upgrade_rebuilds(
    database_url: str, migrated_engine: Engine
) -> None:
    downgrade(database_url, "base")
    migrated_engine.dispose()
    assert _tables(migrated_engine) == set()
    assert _current_revision(migrated_engine) is None
    insp = inspect(migrated_engine)
    for table in EXPECTED_TABLES:
        assert not insp.has_table(table)

    upgrade(database_url)
    migrated_engine.dispose()
    assert _tables(migrated_engine) == EXPECTED_TABLES
    assert _current_revision(migrated_engine) == _head(database_url)
    assert _diff(migrated_engine) == []


def test_0003_gives_existing_borrowers_version_1_and_keeps_contracts(
    database_url: str, migrated_engine: Engine
) -> None:
    """Rows written before 0003: each borrower's row becomes its version 1 and its applications
    point at it; a contract keeps its bytes in the row and gets its size. Downgrading drops the
    versions and the uploaded documents (whose bytes are not in the row)."""
    downgrade(database_url, "0002")
    borrowers = sa.table(
        "borrowers",
        *[sa.column(c) for c in ("name", "id_number", "phone", "bank_card", "monthly_income")],
        sa.column("id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    applications = sa.table(
        "applications",
        *[
            sa.column(c)
            for c in (
                "application_no",
                "amount",
                "term_months",
                "purpose",
                "repayment_source",
                "stage",
                "submitted_by",
            )
        ],
        sa.column("id", sa.Uuid()),
        sa.column("borrower_id", sa.Uuid()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    documents = sa.table(
        "documents",
        *[sa.column(c) for c in ("application_no", "kind", "filename", "content_type", "sha256")],
        sa.column("id", sa.Uuid()),
        sa.column("content", sa.LargeBinary()),
        sa.column("sign_failures", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    borrower_id, now = uuid.uuid4(), datetime.now(UTC)
    with migrated_engine.begin() as conn:
        conn.execute(
            borrowers.insert().values(
                id=borrower_id,
                name="张三",
                id_number="11010519491231002X",
                phone="13800138000",
                bank_card="6222020200112233445",
                monthly_income=1800000,
                created_at=now,
            )
        )
        conn.execute(
            applications.insert().values(
                id=uuid.uuid4(),
                application_no="A20260101-OLD001",
                borrower_id=borrower_id,
                amount=5000000,
                term_months=6,
                purpose="p",
                repayment_source="r",
                stage="SERVICING",
                submitted_by="officer",
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            documents.insert().values(
                id=uuid.uuid4(),
                application_no="A20260101-OLD001",
                kind="contract",
                filename="c.pdf",
                content_type="application/pdf",
                sha256="0" * 64,
                content=b"%PDF-1.7 contract",
                sign_failures=0,
                created_at=now,
            )
        )
    upgrade(database_url)
    with Session(migrated_engine) as s:
        (version,) = s.exec(select(BorrowerVersion)).all()
        assert (version.borrower_id, version.version, version.bank_card) == (
            borrower_id,
            1,
            "6222020200112233445",
        )
        assert version.monthly_income == Decimal("18000.00")
        (app,) = s.exec(select(Application)).all()
        assert app.borrower_version == 1
        (doc,) = s.exec(select(Document)).all()
        assert (doc.size, doc.uploaded_by, doc.store_key) == (17, "system", None)
        assert doc.duplicate_of_borrower is False
        s.add(
            Document(
                id=uuid.uuid4(),
                application_no=app.application_no,
                kind="income_proof",
                filename="p.png",
                content_type="image/png",
                sha256="1" * 64,
                size=10,
                uploaded_by="officer",
                store_key="1" * 64,
            )
        )
        s.commit()
    downgrade(database_url, "0002")
    with migrated_engine.connect() as conn:
        kinds = conn.execute(sa.text("SELECT kind FROM documents")).scalars().all()
        assert kinds == ["contract"]
        assert not inspect(conn).has_table("borrower_versions")
    upgrade(database_url)
    migrated_engine.dispose()
    assert _diff(migrated_engine) == []


def test_0005_makes_pending_notices_queued_and_back(
    database_url: str, migrated_engine: Engine
) -> None:
    """Notices written before 0005 were "pending" (nothing delivered them): they become queued
    with no attempt yet, so the relay sends them; downgrading turns queued back into pending."""
    downgrade(database_url, "0004")
    notices = sa.table(
        "notices",
        *[sa.column(c) for c in ("key", "channel", "recipient", "template", "status")],
        sa.column("id", sa.Uuid()),
        sa.column("payload", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    with migrated_engine.begin() as conn:
        conn.execute(
            notices.insert().values(
                id=uuid.uuid4(),
                key="old/1",
                channel="sms",
                recipient="borrower",
                template="installment_reminder",
                status="pending",
                payload={"installment": 1},
                created_at=datetime.now(UTC),
            )
        )
    upgrade(database_url)
    with migrated_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, attempts, next_attempt_at FROM notices WHERE key = 'old/1'")
        ).one()
    assert tuple(row) == ("queued", 0, None)
    downgrade(database_url, "0004")
    with migrated_engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM notices WHERE key = 'old/1'")).scalar()
    assert status == "pending"
    upgrade(database_url)
