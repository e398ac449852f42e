"""Candles and indicator values partitioned by timeframe (LIST), then by time (RANGE on ts); existing rows moved over.

Each table is renamed aside, a partitioned table of the same columns, key and foreign key takes its
name, the partitions its rows need (and CANDLE_PARTITIONS_AHEAD spans past now) are created, the rows
are copied in and the old table dropped, all in the migration's one transaction. The layout is the
partition job's own (services/core/store/partitions.py), so the job carries on from it unchanged.
"""

from datetime import UTC, datetime

from alembic import op

from services.core.config import get_settings
from services.core.store.partitions import SCHEMA, build_layout, kept_timeframes, partition_name, span_starts

revision = "0010"
# After 0009 (file imports).
down_revision = "0009"
branch_labels = None
depends_on = None

_TABLES = ("candles", "indicator_values")

# bandit B608 (marked nosec below): every name here is one of _TABLES or derived from it in this module.


def _swap_aside(table: str, aside: str) -> None:
    op.execute(f"ALTER TABLE {table} RENAME TO {aside}")
    # The key's index name is schema-wide: freed for the new table's key.
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT {table}_pkey TO {aside}_pkey")


def _instrument_fk(table: str) -> None:
    # LIKE copies columns, defaults, NOT NULLs and the key, never a foreign key.
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_instrument_id_fkey FOREIGN KEY (instrument_id) "
               "REFERENCES instruments (id) ON DELETE CASCADE")


def _move_rows(source: str, target: str) -> None:
    op.execute(f"INSERT INTO {target} SELECT * FROM {source}")  # nosec B608
    op.execute(f"DROP TABLE {source}")


def upgrade() -> None:
    settings = get_settings()
    conn = op.get_bind()
    now = datetime.now(UTC)
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    timeframes = set(settings.timeframes) | kept_timeframes(conn)
    for table in _TABLES:
        aside = f"{table}_unpartitioned"
        _swap_aside(table, aside)
        op.execute(f"CREATE TABLE {table} (LIKE {aside} INCLUDING ALL) PARTITION BY LIST (timeframe)")
        _instrument_fk(table)
        op.execute(f"CREATE TABLE {SCHEMA}.{partition_name(table)} PARTITION OF {table} DEFAULT")
        occupied = span_starts(conn, [(None, aside)], settings.partition_interval)
        build_layout(conn, table, timeframes, occupied, settings.partition_interval,
                     settings.candle_partitions_ahead, now)
        _move_rows(aside, table)


def downgrade() -> None:
    for table in _TABLES:
        aside = f"{table}_partitioned"
        _swap_aside(table, aside)
        op.execute(f"CREATE TABLE {table} (LIKE {aside} INCLUDING ALL)")
        _instrument_fk(table)
        _move_rows(aside, table)  # dropping the partitioned table drops its partitions
    # Empty now; without CASCADE, so anything else an operator put there stops the downgrade instead of going.
    op.execute(f"DROP SCHEMA {SCHEMA}")
