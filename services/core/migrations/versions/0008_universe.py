"""The instrument universe: where each instrument came from, when it was added and retired; the exchange's markets."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
# After 0007 (run control).
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.alter_column("instruments", "created_at", new_column_name="added_at")
    op.add_column("instruments", sa.Column("retired_at", _TS))
    # Rows from before the universe were registered by whichever ingest first fetched them.
    op.add_column("instruments", sa.Column("source", sa.String(16), nullable=False, server_default="ingest"))
    # Set by the market sync when the exchange stops listing the market (the instrument is retired then).
    op.add_column("instruments", sa.Column("market_gone_at", _TS))
    op.create_table(
        "markets",
        sa.Column("exchange", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("market_id", sa.String(64), nullable=False),
        sa.Column("base", sa.String(32), nullable=False),
        sa.Column("quote", sa.String(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        # What the exchange says (trading halted, say); None when it does not say.
        sa.Column("active", sa.Boolean),
        sa.Column("precision", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("first_seen_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("gone_at", _TS),
    )
    op.create_index("ix_markets_exchange_quote", "markets", ["exchange", "quote"])


def downgrade() -> None:
    op.drop_index("ix_markets_exchange_quote", table_name="markets")
    op.drop_table("markets")
    for column in ("market_gone_at", "source", "retired_at"):
        op.drop_column("instruments", column)
    op.alter_column("instruments", "added_at", new_column_name="created_at")
