"""Per-stage results of running pipelines in their own rows (no rewrite of one growing JSON)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_stage_results",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("instrument", sa.String(96), primary_key=True),
        sa.Column("stage", sa.String(32), primary_key=True),
        sa.Column("result", postgresql.JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("pipeline_stage_results")
