"""Runs under operator control: a run's priority, when it is scheduled for, its batches, and who cancelled it."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
# After 0006 (schedule_changes).
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("pipeline_runs", sa.Column("priority", sa.SmallInteger, nullable=False, server_default="5"))
    op.add_column("pipeline_runs", sa.Column("scheduled_for", _TS))
    # The instrument labels of each batch chain, in dispatch order: the stage task ids derive from them.
    op.add_column("pipeline_runs", sa.Column("batches", postgresql.JSONB, nullable=False, server_default="[]"))
    op.add_column("pipeline_runs", sa.Column("cancelled_by", sa.String(64)))
    op.add_column("pipeline_runs", sa.Column("cancelled_at", _TS))


def downgrade() -> None:
    for column in ("cancelled_at", "cancelled_by", "batches", "scheduled_for", "priority"):
        op.drop_column("pipeline_runs", column)
