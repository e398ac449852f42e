"""Signal-stage use case: run the strategies on newly closed bars and store each signal once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import Connection, text

from services.core.pipeline.stages import STAGES
from services.core.store.bulk import copy_upsert
from services.core.store.marketdata import load_candles, load_indicators
from services.core.store.watermarks import read_watermark, write_watermarks
from services.core.timeparse import ms_to_datetime
from services.signals.ready_bars import read_ready_bars
from services.signals.rules import find_signals, generate_signals

__all__ = ["refresh_signals", "refresh_signal_batch"]

# A crossing compares a bar with the one before it, so one earlier bar is read.
_CONTEXT_BARS = 1
_COLUMNS = ("instrument_id", "timeframe", "ts", "strategy", "side", "strength", "price", "inputs")
_KEYS = ("instrument_id", "timeframe", "ts", "strategy")
_MARK = STAGES["signals"].watermark
# Only bars the stage it waits for has fully processed are read.
_READY_MARK = STAGES[STAGES["signals"].waits_for].watermark


def _new_signals(conn: Connection, instrument_id: int, timeframe: str, since: datetime | None,
                 strategies: list[str] | None) -> tuple[list[tuple], datetime | None, int]:
    """Signal rows for closed bars after the watermark (or from `since`): (rows, last bar, bars)."""
    mark = None if since is not None else read_watermark(conn, instrument_id, timeframe, _MARK)
    candles = load_candles(conn, instrument_id, timeframe, since=since or mark, bars_before=_CONTEXT_BARS)
    indicators = load_indicators(conn, instrument_id, timeframe, since=candles.index[0] if len(candles) else None)
    # Only bars that are closed and fully computed by the indicators stage (not merely
    # touched by an EMA-only run): the rest wait for the next run.
    ready = candles.index.intersection(indicators.index[indicators["is_closed"].to_numpy(bool)])
    computed = read_watermark(conn, instrument_id, timeframe, _READY_MARK)
    ready = ready[ready <= computed] if computed is not None else ready[:0]
    candles, indicators = candles.loc[ready], indicators.loc[ready]
    first = since if since is not None else mark
    new_bars = ready if first is None else ready[ready >= first] if since is not None else ready[ready > first]
    if not len(new_bars):
        return [], None, 0
    found = generate_signals(candles[["open", "high", "low", "close", "volume"]], indicators, names=strategies)
    found = found.loc[found["ts"] >= new_bars[0]]
    rows = [(instrument_id, timeframe, ts.to_pydatetime(), strategy, side, float(strength), float(price), inputs)
            for ts, strategy, side, strength, price, inputs in found[list(_COLUMNS[2:])].itertuples(index=False)]
    return rows, new_bars[-1].to_pydatetime(), len(new_bars)


def _stored_keys(conn: Connection, timeframe: str, rows: list[tuple]) -> set[tuple]:
    """Which of these signals' keys are stored already (a rerun, a redelivered batch)."""
    if not rows:
        return set()
    found = conn.execute(text("""
        SELECT instrument_id, ts, strategy FROM signals
         WHERE instrument_id = ANY(:ids) AND timeframe = :tf AND ts >= :first"""),
        {"ids": sorted({r[0] for r in rows}), "tf": timeframe, "first": min(r[2] for r in rows)}).all()
    return {tuple(key) for key in found}


def _write(conn: Connection, timeframe: str, rows: list[tuple], marks: dict[int, datetime]) -> list[tuple]:
    """Store the new signals in one upsert and advance each instrument's watermark; the rows that were new."""
    stored = _stored_keys(conn, timeframe, rows)
    new = [row for row in rows if (row[0], row[2], row[3]) not in stored]
    # Signals on closed bars never change: an existing key is kept, never rewritten.
    copy_upsert(conn, "signals", _COLUMNS, _KEYS, new)
    write_watermarks(conn, timeframe, _MARK, marks)
    return new


def refresh_signals(conn: Connection, instrument_id: int, timeframe: str, since: datetime | None = None,
                    strategies: list[str] | None = None) -> dict:
    """Signals for closed bars after the watermark (or from `since`); existing signals are kept."""
    rows, last, bars = _new_signals(conn, instrument_id, timeframe, since, strategies)
    if last is None:
        return {"bars": 0, "signals_created": 0}
    created = _write(conn, timeframe, rows, {instrument_id: last})
    return {"bars": bars, "signals_created": len(created), "signals_found": len(rows)}


def refresh_signal_batch(conn: Connection, instruments: dict[str, int], timeframe: str,
                         since: datetime | None = None) -> dict[str, dict]:
    """Signals for a batch of instruments in one pass and one write; per symbol its counts.

    The batch's ready bars are read in two queries and every strategy runs once over all
    of them (`Bars` keeps each instrument's crossings inside its own series), so the
    result is refresh_signals' for each instrument, at a fraction of its cost. An error
    here is the whole batch's (retried by Celery when transient); unknown symbols are
    settled before, by the stage.
    """
    ready = read_ready_bars(conn, list(instruments.values()), timeframe, since)
    found = find_signals(ready.bars, ready.new)
    ids, ts_ms = ready.instrument_ids[found.position].tolist(), ready.ts_ms[found.position].tolist()
    rows = [(instrument_id, timeframe, ms_to_datetime(ts), strategy, side, strength, price, inputs)
            for instrument_id, ts, strategy, side, strength, price, inputs in zip(
                ids, ts_ms, found.strategy, found.side, found.strength.tolist(), found.price.tolist(), found.inputs,
                strict=True)]
    # Rows come by instrument, then ts: the last new bar seen for an instrument is its new watermark.
    new_ids, new_ts = ready.instrument_ids[ready.new].tolist(), ready.ts_ms[ready.new].tolist()
    marks = {instrument_id: ms_to_datetime(ts) for instrument_id, ts in zip(new_ids, new_ts, strict=True)}
    bars, signals = Counter(new_ids), Counter(ids)
    created = Counter(row[0] for row in _write(conn, timeframe, rows, marks))
    return {symbol: {"bars": bars[i], "signals_found": signals[i], "signals_created": created[i]}
            for symbol, i in instruments.items()}
