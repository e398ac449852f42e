"""Schedule history: every operator change to a periodic job, so beat start can rebuild the live schedule."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedule_changes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(63), nullable=False),
        sa.Column("changed_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("before", postgresql.JSONB, nullable=True),
        sa.Column("after", postgresql.JSONB, nullable=True),
    )
    op.create_index("ix_schedule_changes_job", "schedule_changes", ["job", "id"])


def downgrade() -> None:
    op.drop_index("ix_schedule_changes_job", table_name="schedule_changes")
    op.drop_table("schedule_changes")
