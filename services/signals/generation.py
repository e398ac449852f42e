"""Signal-stage use case: run the strategies on newly closed bars and store each signal once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from services.core.pipeline.stages import STAGES
from services.core.store.bulk import copy_upsert
from services.core.store.marketdata import load_candles, load_indicators
from services.core.store.watermarks import read_watermark, write_watermark
from services.signals.rules import generate_signals

__all__ = ["refresh_signals"]

# A crossing compares a bar with the one before it, so one earlier bar is read.
_CONTEXT_BARS = 1
_COLUMNS = ("instrument_id", "timeframe", "ts", "strategy", "side", "strength", "price", "inputs")
_KEYS = ("instrument_id", "timeframe", "ts", "strategy")
_MARK = STAGES["signals"].watermark
# Only bars the stage it waits for has fully processed are read.
_READY_MARK = STAGES[STAGES["signals"].waits_for].watermark


def refresh_signals(conn: Connection, instrument_id: int, timeframe: str, since: datetime | None = None,
                    strategies: list[str] | None = None) -> dict:
    """Signals for closed bars after the watermark (or from `since`); existing signals are kept."""
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
        return {"bars": 0, "signals_created": 0}
    found = generate_signals(candles[["open", "high", "low", "close", "volume"]], indicators, names=strategies)
    found = found.loc[found["ts"] >= new_bars[0]]
    rows = ((instrument_id, timeframe, ts.to_pydatetime(), strategy, side, float(strength), float(price), inputs)
            for ts, strategy, side, strength, price, inputs in found[list(_COLUMNS[2:])].itertuples(index=False))
    # Signals on closed bars never change, so a recomputation inserts nothing.
    created = copy_upsert(conn, "signals", _COLUMNS, _KEYS, rows)
    write_watermark(conn, instrument_id, timeframe, _MARK, new_bars[-1].to_pydatetime())
    return {"bars": len(new_bars), "signals_created": created, "signals_found": len(found)}
