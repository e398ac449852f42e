"""Per-exchange differences kept as data: request limits, history depth, client options."""

from __future__ import annotations

from services.ingest.sources.base import SourceCapabilities

__all__ = ["capabilities_for"]

# Only what ccxt's own `features` table does not already say. Sources: each
# exchange's public API docs (kraken: OHLC endpoint returns the latest 720 bars
# whatever `since` asks for; binance: klines paginate by startTime).
_OVERRIDES: dict[str, dict] = {
    "kraken": {"full_history": False},
    # Loading margin/futures markets needs API keys and extra hosts; candles need spot only.
    "binance": {"options": {"fetchMarkets": {"types": ["spot"]}}},
    "binanceus": {"options": {"fetchMarkets": {"types": ["spot"]}}},
    # Their fetch_ohlcv reads the market's raw payload (ccxt 4.5; tests/unit/ingest/test_sources.py
    # checks this list against ccxt's source), so it is not dropped after loading for them.
    "coinbaseinternational": {"reads_market_info": True},
    "delta": {"reads_market_info": True},
    "okx": {"reads_market_info": True},
    "toobit": {"reads_market_info": True},
}


def capabilities_for(exchange_id: str, features: dict | None = None) -> SourceCapabilities:
    """Capabilities of `exchange_id`, from ccxt's feature table plus our overrides."""
    spot_ohlcv = ((features or {}).get("spot") or {}).get("fetchOHLCV") or {}
    values: dict = {}
    if isinstance(spot_ohlcv.get("limit"), int):
        values["max_candles"] = spot_ohlcv["limit"]
    values.update(_OVERRIDES.get(exchange_id, {}))
    return SourceCapabilities(**values)
