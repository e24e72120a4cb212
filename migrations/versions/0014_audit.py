"""the audit trail becomes a hash chain (seq, prev_hash, hash; the chain head row); existing
entries are chained in their current order (recorded_at, occurred_at, event_key). On PostgreSQL:
the application role ``loanops_app`` (NOLOGIN, created if absent) may read and append audit rows
but not change or delete them, and a trigger refuses UPDATE, DELETE and TRUNCATE of audit rows to
everyone but a superuser, or the table's owner in a session that deliberately set
``loanops.audit_maintenance = on`` (an owner-run retention job; managed PostgreSQL services give
no superuser).

Revision ID: 0014_audit
Revises: 0013
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014_audit"
down_revision: str | None = "0014_aftercare"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "loanops_app"
GENESIS = "0" * 64


def _hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """A frozen copy of domain.audit_chain.entry_hash (the format may never change)."""
    at: datetime = fields["occurred_at"]
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    body = json.dumps(
        {**fields, "occurred_at": at.isoformat(timespec="microseconds")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    events = sa.table(
        "audit_events",
        sa.column("id", sa.Uuid()),
        sa.column("event_key", sa.String()),
        sa.column("application_no", sa.String()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
        sa.column("recorded_at", sa.DateTime(timezone=True)),
        sa.column("seq", sa.Integer()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            events.c.id,
            events.c.event_key,
            events.c.application_no,
            events.c.actor,
            events.c.action,
            events.c.detail,
            events.c.occurred_at,
        ).order_by(events.c.recorded_at, events.c.occurred_at, events.c.event_key)
    ).all()
    prev, seq = GENESIS, 0
    for row in rows:
        seq += 1
        digest = _hash(
            prev,
            {
                "seq": seq,
                "key": row.event_key,
                "actor": row.actor,
                "action": row.action,
                "object": row.application_no,
                "detail": row.detail,
                "occurred_at": row.occurred_at,
            },
        )
        bind.execute(
            events.update()
            .where(events.c.id == row.id)
            .values(seq=seq, prev_hash=prev, hash=digest)
        )
        prev = digest
    op.bulk_insert(
        sa.table(
            "audit_chain",
            sa.column("id", sa.Integer()),
            sa.column("seq", sa.Integer()),
            sa.column("hash", sa.String()),
        ),
        [{"id": 1, "seq": seq, "hash": prev}],
    )

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f("ix_audit_events_seq"), ["seq"], unique=True)

    if bind.dialect.name == "postgresql":
        _postgresql_protection()


def _postgresql_protection() -> None:
    # The role is the cluster's (shared by every database in it): created once, never dropped here.
    op.execute(
        f"""
        DO $$ BEGIN
            CREATE ROLE {APP_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    # Tables later migrations create (run by the same owner) are the application's too.
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
    )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON alembic_version FROM {APP_ROLE}")
    op.execute(f"GRANT SELECT ON alembic_version TO {APP_ROLE}")
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
        BEGIN
            IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
               OR (pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID),
                               'MEMBER')
                   AND current_setting('loanops.audit_maintenance', true) = 'on') THEN
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            RAISE EXCEPTION 'audit_events is append-only: % refused for %', TG_OP, current_user
                USING ERRCODE = 'insufficient_privilege';
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
        op.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}"
        )
        op.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE}"
        )
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_seq"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_table("audit_chain")
