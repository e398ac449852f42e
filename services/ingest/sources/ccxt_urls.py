"""Point a ccxt client at another base URL (a simulator or a proxy), keeping every path."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["point_ccxt_at"]


def _rebase(url: str, base_url: str) -> str:
    parts = urlsplit(url)
    return base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def _rebase_tree(node: object, base_url: str) -> object:
    if isinstance(node, str) and node.startswith(("http://", "https://")):
        return _rebase(node, base_url)
    if isinstance(node, dict):
        return {key: _rebase_tree(value, base_url) for key, value in node.items()}
    return node


def point_ccxt_at(exchange: object, base_url: str) -> None:
    """Rewrite `exchange.urls['api']` (nested dicts included) to `base_url` in place."""
    exchange.urls["api"] = _rebase_tree(exchange.urls["api"], base_url)
