"""Indicator recursion state: per instrument and timeframe, what the indicator recurrences carry between bars."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "indicator_state",
        sa.Column("instrument_id", sa.Integer, sa.ForeignKey("instruments.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("last_ts", _TS, nullable=False),
        sa.Column("params_fingerprint", sa.String(64), nullable=False),
        # float8[]: the doubles themselves, bit for bit (see docs/adr/0017).
        sa.Column("state", postgresql.ARRAY(sa.Float), nullable=False),
        sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("indicator_state")
