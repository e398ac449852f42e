"""Ingest tables: instruments, candles, fetch ledger, rejected candles, pipeline runs."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("exchange", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframes", postgresql.ARRAY(sa.String(8)), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("exchange", "symbol", name="uq_instruments_exchange_symbol"),
    )
    op.create_table(
        "candles",
        sa.Column("instrument_id", sa.Integer, sa.ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("ts", _TS, primary_key=True),
        sa.Column("open", sa.Float, nullable=False),
        sa.Column("high", sa.Float, nullable=False),
        sa.Column("low", sa.Float, nullable=False),
        sa.Column("close", sa.Float, nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("is_closed", sa.Boolean, nullable=False),
        sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "fetch_ledger",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("instrument_id", sa.Integer, sa.ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("window_end", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("candles", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("missing", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("error", sa.Text),
        sa.Column("fetched_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("instrument_id", "timeframe", "window_start", "window_end", name="uq_fetch_ledger_window"),
    )
    op.create_index("ix_fetch_ledger_status", "fetch_ledger", ["status"])
    op.create_table(
        "rejected_candles",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("instrument_id", sa.Integer, sa.ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("raw_ts", sa.BigInteger),
        sa.Column("raw", postgresql.JSONB, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("rejected_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    # NULLS NOT DISTINCT: a row whose timestamp was unreadable is still stored only once.
    op.create_index(
        "uq_rejected_candles_row", "rejected_candles",
        ["instrument_id", "timeframe", "raw_ts", "reason"],
        unique=True, postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scope", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stages", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("errors", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", _TS),
        sa.Column("finished_at", _TS),
    )
    op.create_index("ix_pipeline_runs_kind_state", "pipeline_runs", ["kind", "state"])


def downgrade() -> None:
    for table in ("pipeline_runs", "rejected_candles", "fetch_ledger", "candles", "instruments"):
        op.drop_table(table)
