"""A run's resumes in its row: how many times find_lost resumed it and when last, the bound and the guard of ADR 0032."""

import sqlalchemy as sa
from alembic import op

revision = "0011"
# After 0010 (partitioned candles).
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In Postgres beside the run's batches, not in Redis: a flushed Redis (one way a run's messages
    # are lost) must not reset the count that bounds resuming it.
    op.add_column("pipeline_runs", sa.Column("resumes", sa.SmallInteger, nullable=False, server_default="0"))
    op.add_column("pipeline_runs", sa.Column("resumed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for column in ("resumed_at", "resumes"):
        op.drop_column("pipeline_runs", column)
