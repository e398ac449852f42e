"""The exchange ids ccxt supports, read from its package source rather than by importing it."""

from __future__ import annotations

import ast
import importlib.util
import sys
from functools import cache
from pathlib import Path

__all__ = ["ccxt_exchange_ids"]


@cache
def ccxt_exchange_ids() -> frozenset[str]:
    """`ccxt.exchanges`, without importing ccxt where it is not loaded yet.

    Importing ccxt loads every exchange class, about 67 MB in each process; the
    settings check every process makes needs only the list of ids, a literal in
    ccxt/__init__.py. Should that file ever stop holding one, ccxt is imported.
    """
    if "ccxt" not in sys.modules:
        spec = importlib.util.find_spec("ccxt")
        if spec is not None and spec.origin:
            for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body:
                if (isinstance(node, ast.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "exchanges"):
                    return frozenset(ast.literal_eval(node.value))
    import ccxt

    return frozenset(ccxt.exchanges)
