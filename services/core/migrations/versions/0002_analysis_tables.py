"""Analysis tables: indicator values, patterns, levels, signals, stage watermarks."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
# Frozen here, not imported from models: a migration must not change when the models do.
INDICATOR_COLUMNS = (
    "rsi", "sma_fast", "sma_slow", "ema_fast", "ema_slow", "ema_trend", "macd", "macd_signal", "macd_hist",
    "adx", "plus_di", "minus_di", "atr", "bb_upper", "bb_middle", "bb_lower", "channel_high", "channel_low",
)


def _instrument_fk() -> sa.Column:
    return sa.Column("instrument_id", sa.Integer, sa.ForeignKey("instruments.id", ondelete="CASCADE"),
                     primary_key=True)


def upgrade() -> None:
    op.create_table(
        "indicator_values",
        _instrument_fk(),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("ts", _TS, primary_key=True),
        *(sa.Column(name, sa.Float) for name in INDICATOR_COLUMNS),
        sa.Column("regime", sa.String(16)),
        sa.Column("is_closed", sa.Boolean, nullable=False),
        sa.Column("computed_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "patterns",
        _instrument_fk(),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("ts", _TS, primary_key=True),
        sa.Column("pattern", sa.String(32), primary_key=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("strength", sa.Float, nullable=False),
        sa.Column("detected_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "levels",
        _instrument_fk(),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("price", sa.Float, primary_key=True),
        sa.Column("touches", sa.Integer, nullable=False),
        sa.Column("strength", sa.Float, nullable=False),
        sa.Column("first_ts", _TS, nullable=False),
        sa.Column("last_ts", _TS, nullable=False),
        sa.Column("computed_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "signals",
        _instrument_fk(),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("ts", _TS, primary_key=True),
        sa.Column("strategy", sa.String(48), primary_key=True),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("strength", sa.Float, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("inputs", postgresql.JSONB, nullable=False),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_signals_ts", "signals", ["ts"])
    op.create_table(
        "stage_watermarks",
        _instrument_fk(),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("stage", sa.String(32), primary_key=True),
        sa.Column("last_ts", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("stage_watermarks", "signals", "levels", "patterns", "indicator_values"):
        op.drop_table(table)
