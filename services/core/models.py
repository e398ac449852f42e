"""SQLAlchemy 2 models: the tables every service reads and writes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Instrument",
    "Market",
    "Candle",
    "FetchWindow",
    "RejectedCandle",
    "PipelineRun",
    "IndicatorValues",
    "IndicatorState",
    "Pattern",
    "Level",
    "Signal",
    "StageWatermark",
    "PipelineStageResult",
    "ScheduleChange",
    "ImportUpload",
    "INDICATOR_COLUMNS",
]

_NOW = func.now()
# candles and indicator_values are partitioned by timeframe, then by ts (migration 0010, ADR 0028);
# their partitions live in schema `partitions`, made and dropped by services/core/store/partitions.py.
_PARTITIONED = {"postgresql_partition_by": "LIST (timeframe)"}


class Base(DeclarativeBase):
    """Declarative base of every candleflow table."""


class _PerSeries:
    """Primary-key columns shared by every per-instrument, per-timeframe table."""

    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)


class _PerBar(_PerSeries):
    """… plus the bar's open time."""

    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)


class Instrument(Base):
    """A symbol on an exchange, with the timeframes kept for it."""

    __tablename__ = "instruments"
    __table_args__ = (UniqueConstraint("exchange", "symbol", name="uq_instruments_exchange_symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exchange: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    timeframes: Mapped[list[str]] = mapped_column(ARRAY(String(8)))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # config (SYMBOLS at migrate), api, cli, market-sync, or ingest (registered before the universe existed).
    source: Mapped[str] = mapped_column(String(16), server_default="ingest")
    market_gone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Market(Base):
    """One market the exchange lists, as its last market sync saw it."""

    __tablename__ = "markets"
    __table_args__ = (Index("ix_markets_exchange_quote", "exchange", "quote"),)

    exchange: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    market_id: Mapped[str] = mapped_column(String(64))
    base: Mapped[str] = mapped_column(String(32))
    quote: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool | None] = mapped_column(Boolean)
    precision: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    gone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Candle(_PerBar, Base):
    """One OHLCV bar; closed bars are final, the open bar is replaced until it closes."""

    __tablename__ = "candles"
    __table_args__ = _PARTITIONED

    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    is_closed: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class FetchWindow(Base):
    """The fetch ledger: one row per requested window and how it went."""

    __tablename__ = "fetch_ledger"
    __table_args__ = (
        UniqueConstraint("instrument_id", "timeframe", "window_start", "window_end", name="uq_fetch_ledger_window"),
        Index("ix_fetch_ledger_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"))
    timeframe: Mapped[str] = mapped_column(String(8))
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # ok | gaps | empty | failed
    candles: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    missing: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # bars the exchange did not return
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # requests in the last fetch
    fetches: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # times the window was fetched
    error: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class RejectedCandle(Base):
    """A candle that failed validation, kept with its reason instead of being dropped."""

    __tablename__ = "rejected_candles"
    __table_args__ = (
        Index(
            "uq_rejected_candles_row",
            "instrument_id", "timeframe", "raw_ts", "reason", "source_file", "source_row",
            unique=True, postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="CASCADE"))
    timeframe: Mapped[str] = mapped_column(String(8))
    raw_ts: Mapped[int | None] = mapped_column(BigInteger)  # ms since epoch as the source sent it
    raw: Mapped[list] = mapped_column(JSONB)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    # An imported row: the file's name and the row's number in it (1 = the first row after the header).
    source_file: Mapped[str | None] = mapped_column(String(255))
    source_row: Mapped[int | None] = mapped_column(BigInteger)


class PipelineRun(Base):
    """One requested run (its id is the Celery task id the API returns) and its outcome."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (Index("ix_pipeline_runs_kind_state", "kind", "state"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    scope: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    # SCHEDULED | PENDING | STARTED | SUCCESS | PARTIAL | FAILURE | CANCELLED
    state: Mapped[str] = mapped_column(String(16))
    # Filled once when the run finishes; while it runs, see PipelineStageResult.
    stages: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    errors: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Operator control (migration 0007): 0-9, 9 most urgent; a delayed run's start; the instrument
    # labels of each batch chain (stage task ids derive from them); who cancelled it, and when.
    priority: Mapped[int] = mapped_column(SmallInteger, default=5, server_default="5")
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    batches: Mapped[list] = mapped_column(JSONB, default=list, server_default="[]")
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Resumed from its records after its messages were lost (migration 0011): how often, and when last.
    resumes: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


INDICATOR_COLUMNS = (
    "rsi", "sma_fast", "sma_slow", "ema_fast", "ema_slow", "ema_trend", "macd", "macd_signal", "macd_hist",
    "adx", "plus_di", "minus_di", "atr", "bb_upper", "bb_middle", "bb_lower", "channel_high", "channel_low",
)


class IndicatorValues(_PerBar, Base):
    """One wide row of indicator values per bar, with the bar's regime."""

    __tablename__ = "indicator_values"
    __table_args__ = _PARTITIONED

    regime: Mapped[str | None] = mapped_column(String(16))
    is_closed: Mapped[bool] = mapped_column(Boolean)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


for _name in INDICATOR_COLUMNS:  # eighteen identical float columns: declared as data, not by hand
    IndicatorValues.__table__.append_column(mapped_column(_name, Float).column)


class IndicatorState(_PerSeries, Base):
    """What the indicator recurrences carry past the last closed bar, so a new bar costs O(1) rows read.

    `state` is the float vector of services/indicators/state.py (exact doubles),
    valid only under the params whose fingerprint it carries.
    """

    __tablename__ = "indicator_state"

    last_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    params_fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[list[float]] = mapped_column(ARRAY(Float))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class Pattern(_PerBar, Base):
    """A candlestick pattern completed on a bar."""

    __tablename__ = "patterns"

    pattern: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    strength: Mapped[float] = mapped_column(Float)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class Level(_PerSeries, Base):
    """A support or resistance level: the current set per instrument and timeframe."""

    __tablename__ = "levels"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    price: Mapped[float] = mapped_column(Float, primary_key=True)
    touches: Mapped[int] = mapped_column(Integer)
    strength: Mapped[float] = mapped_column(Float)
    first_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class Signal(_PerBar, Base):
    """A strategy's decision on a closed bar, with the inputs that reproduce it."""

    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_ts", "ts"),)

    strategy: Mapped[str] = mapped_column(String(48), primary_key=True)
    side: Mapped[str] = mapped_column(String(8))
    strength: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    inputs: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class StageWatermark(_PerSeries, Base):
    """The last bar a stage has processed for an instrument and timeframe."""

    __tablename__ = "stage_watermarks"

    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class PipelineStageResult(Base):
    """One stage of one instrument in a running pipeline: written as it finishes, for progress."""

    __tablename__ = "pipeline_stage_results"

    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True)
    instrument: Mapped[str] = mapped_column(String(96), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    result: Mapped[dict] = mapped_column(JSONB)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class ScheduleChange(Base):
    """One change to a schedule job (add, change, delete, reset): who, when, and the job before and after."""

    __tablename__ = "schedule_changes"
    __table_args__ = (Index("ix_schedule_changes_job", "job", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(63))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    after: Mapped[dict | None] = mapped_column(JSONB, nullable=True)


class ImportUpload(Base):
    """A file POST /api/imports accepted, held until the ingest worker has imported it (then deleted)."""

    __tablename__ = "import_uploads"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    options: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
