"""indexes for the inbox and the loan list (issue 13): composite, the open inbox partial

Revision ID: 0015_perf
Revises: 0014_auth

Only indexes: no table or row changes. ``ix_tasks_inbox`` serves the inbox of a role (status,
candidate role, most urgent first: priority descending, then due time); ``ix_tasks_open_inbox``,
partial on the open tasks, serves those who see every role's inbox; the two ``applications``
indexes serve the loan list, newest first, by stage or not, with keyset pagination.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_perf"
down_revision: str | None = "0014_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_index(
        "ix_tasks_inbox",
        "tasks",
        ["status", "candidate_role", sa.text("priority DESC"), "due_at", "created_at", "id"],
    )
    op.create_index(
        "ix_tasks_open_inbox",
        "tasks",
        [sa.text("priority DESC"), "due_at", "created_at", "id"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("ix_applications_created", "applications", ["created_at", "application_no"])
    op.create_index(
        "ix_applications_stage_created", "applications", ["stage", "created_at", "application_no"]
    )


def downgrade() -> None:
    op.drop_index("ix_applications_stage_created", table_name="applications")
    op.drop_index("ix_applications_created", table_name="applications")
    op.drop_index("ix_tasks_open_inbox", table_name="tasks")
    op.drop_index("ix_tasks_inbox", table_name="tasks")
