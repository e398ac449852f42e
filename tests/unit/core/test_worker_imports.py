"""What each worker process loads at start: heavy libraries only where its own work needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ccxt
import pytest

from services.core.exchange_ids import ccxt_exchange_ids

_REPO = Path(__file__).resolve().parents[3]
# Per worker queue, the heavy libraries its start must not load: ccxt (about 67 MB a process) only
# ingest fetches with, and ingest's pool child imports it on its first task; pandas (about 40 MB)
# only the analysis stages frame data with.
_NOT_LOADED = {"ingest": ("pandas", "ccxt"), "indicators": ("ccxt",), "signals": ("ccxt",)}


@pytest.mark.parametrize("queue", sorted(_NOT_LOADED))
def test_a_worker_loads_no_heavy_library_its_queue_does_not_use(queue):
    # What `celery worker --include services.<queue>.tasks` imports, settings validated included.
    probe = (f"import sys, services.core.celery_app, services.{queue}.tasks; "
             f"loaded = [m for m in {_NOT_LOADED[queue]!r} if m in sys.modules]; print(loaded); "
             "sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=_REPO, capture_output=True, text=True,
                            env={"ENVIRONMENT": "test", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_exchange_ids_read_without_importing_ccxt_are_ccxts_own_list():
    ccxt_exchange_ids.cache_clear()
    saved = sys.modules.pop("ccxt")  # as in a process that never imported it
    try:
        read = ccxt_exchange_ids()
    finally:
        sys.modules["ccxt"] = saved
        ccxt_exchange_ids.cache_clear()
    assert read == frozenset(ccxt.exchanges) and "binance" in read and "kraken" in read
