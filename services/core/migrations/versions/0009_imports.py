"""File imports: rejected rows keep the file and row they came from; uploads wait in Postgres for the ingest worker."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
# After 0008 (the universe).
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Two rows of one file with unreadable dates share raw_ts (NULL) and reason: without the row
    # number in the key the second would be dropped as "the same refusal". Exchange rows leave
    # both columns NULL and are keyed exactly as before.
    op.add_column("rejected_candles", sa.Column("source_file", sa.String(255)))
    op.add_column("rejected_candles", sa.Column("source_row", sa.BigInteger))
    op.drop_index("uq_rejected_candles_row", table_name="rejected_candles")
    op.create_index("uq_rejected_candles_row", "rejected_candles",
                    ["instrument_id", "timeframe", "raw_ts", "reason", "source_file", "source_row"],
                    unique=True, postgresql_nulls_not_distinct=True)
    # An upload the API accepted, until the ingest worker has imported it (the two share only
    # Redis and Postgres, and a file of megabytes does not belong in a Redis message).
    op.create_table(
        "import_uploads",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("options", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("import_uploads")
    op.drop_index("uq_rejected_candles_row", table_name="rejected_candles")
    op.execute("DELETE FROM rejected_candles WHERE source_row IS NOT NULL")  # their old key would collide
    op.create_index("uq_rejected_candles_row", "rejected_candles", ["instrument_id", "timeframe", "raw_ts", "reason"],
                    unique=True, postgresql_nulls_not_distinct=True)
    op.drop_column("rejected_candles", "source_row")
    op.drop_column("rejected_candles", "source_file")
