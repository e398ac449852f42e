"""ccxt configuration for tests that talk to the exchange simulator directly."""

__all__ = ["ccxt_options_for_sim", "ccxt_config_for_sim"]


def ccxt_options_for_sim() -> dict:
    """`options` for ccxt.binance that keep load_markets() on spot: one request
    (GET /api/v3/exchangeInfo) instead of three. Optional: the simulator also answers the
    futures calls (/fapi/v1/exchangeInfo, /dapi/v1/exchangeInfo) with empty market lists."""
    return {"fetchMarkets": {"types": ["spot"]}, "defaultType": "spot"}


def ccxt_config_for_sim(timeout_ms: int = 10_000) -> dict:
    """A full ccxt.binance(config) for the simulator: spot only, and no client-side rate
    limiting (the simulator has no limits unless a fault rule says so, and tests stay fast)."""
    return {"enableRateLimit": False, "timeout": timeout_ms, "options": ccxt_options_for_sim()}
