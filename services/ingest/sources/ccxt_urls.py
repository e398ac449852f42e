"""ccxt client adjustments: point it at another host (simulator, proxy); refuse non-JSON bodies."""

from __future__ import annotations

from urllib.parse import urlsplit

import ccxt

__all__ = ["rewrite_urls", "point_ccxt_at", "reject_non_json_bodies"]


def _rebase(url: str, base_url: str) -> str:
    parts = urlsplit(url)
    suffix = parts.path + (f"?{parts.query}" if parts.query else "")
    return base_url.rstrip("/") + suffix


def rewrite_urls(api_urls, base_url: str):
    """A copy of a ccxt `urls['api']` value (str or nested dicts) with every URL's scheme and
    host replaced by base_url; each path is kept, so e.g. https://api.binance.com/api/v3
    becomes http://127.0.0.1:8080/api/v3 and https://fapi.binance.com/fapi/v1 .../fapi/v1."""
    if isinstance(api_urls, str):
        return _rebase(api_urls, base_url) if "://" in api_urls else api_urls
    if isinstance(api_urls, dict):
        return {key: rewrite_urls(value, base_url) for key, value in api_urls.items()}
    return api_urls


def point_ccxt_at(exchange, base_url: str):
    """Rewrite exchange.urls['api'] to base_url (in place) and return the exchange."""
    exchange.urls = {**exchange.urls, "api": rewrite_urls(exchange.urls["api"], base_url)}
    return exchange


def reject_non_json_bodies(exchange):
    """Make a 2xx response whose body is not JSON raise ccxt.BadResponse (returns exchange).

    Stock ccxt does not: when JSON parsing fails it hands the raw text to the parser, so
    binance.fetch_ohlcv() returns one garbage row per character of a truncated body, and
    load_markets() silently loads zero markets from an HTML page.
    """
    original = exchange.handle_errors

    def handle_errors(code, reason, url, method, headers, body, response, *rest):
        if response is None and 200 <= code < 300 and body:
            raise ccxt.BadResponse(f"{exchange.id} {method} {url} {code}: body is not JSON: "
                                   f"{body[:80]!r}")
        return original(code, reason, url, method, headers, body, response, *rest)

    exchange.handle_errors = handle_errors
    return exchange
