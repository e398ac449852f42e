"""A stock venue on the demo stack, through published ports only: a vendor-style CSV of XNYS sessions is uploaded,
the ingest worker imports it, and a run on the venue computes its indicators and signals."""

from __future__ import annotations

import math

import exchange_calendars
import pytest
import requests

from tests.e2e.conftest import API_TOKEN
from tests.e2e.stack import http
from tests.utils.waiting import wait_until

pytestmark = pytest.mark.e2e

SESSIONS = 300


def _vendor_csv() -> bytes:
    """300 XNYS sessions up to 2026-11-27 (the half day after Thanksgiving), as a vendor writes them."""
    calendar = exchange_calendars.get_calendar("XNYS")
    sessions = calendar.sessions_window("2026-11-27", -SESSIONS)
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for n, session in enumerate(sessions):
        close = 400 + 30 * math.sin(n / 9) + n * 0.2
        lines.append(f"{session:%m/%d/%Y},{close - 1:.2f},{close + 2:.2f},{close - 2:.2f},{close:.2f},"
                     f"{close:.2f},{1_000_000 + n}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _finished(stack, run_id: str) -> dict:
    def done() -> dict | None:
        reply = http("GET", stack.url("API_PORT", f"/api/runs/{run_id}"))
        return reply.body if reply.status == 200 and reply.body.get("ready") else None
    return wait_until(done, f"run {run_id} finished", 180, interval=1)


def test_an_uploaded_stock_file_is_imported_and_its_venue_run_computes_indicators_and_signals(stack):
    upload = requests.post(stack.url("API_PORT", "/api/imports"), headers={"Authorization": f"Bearer {API_TOKEN}"},
                           files={"file": ("msft.csv", _vendor_csv(), "text/csv")},
                           data={"exchange": "XNYS", "timeframe": "1d", "symbol": "MSFT"}, timeout=30)
    assert upload.status_code == 202, upload.text
    imported = _finished(stack, upload.json()["task_id"])
    assert imported["status"] == "SUCCESS", imported
    (entry,) = imported["result"]
    assert (entry["stage"], entry["stored"], entry["rejected"]) == ("import", SESSIONS, 0), entry

    candles = http("GET", stack.url("API_PORT", "/api/candles?exchange=XNYS&symbol=MSFT&timeframe=1d&limit=2"))
    assert candles.status == 200 and [bar["ts"][:10] for bar in candles.body["candles"]] == [
        "2026-11-25", "2026-11-27"], candles.text  # session dates: Thanksgiving (the 26th) has none

    run = http("POST", stack.url("API_PORT", "/api/manual-update/?task=all&exchange=XNYS&symbol=MSFT"),
               token=API_TOKEN)
    assert run.status == 202, run.text
    finished = _finished(stack, run.body["task_id"])
    assert finished["status"] == "SUCCESS", finished
    stages = {item["stage"]: item for item in finished["result"]}
    assert stages["ohlc"]["status"] == "skipped" and "fed by imports" in stages["ohlc"]["reason"]
    assert stages["indicators"]["status"] == "ok" and stages["signals"]["status"] == "ok"
    values = http("GET", stack.url("API_PORT", "/api/indicators?exchange=XNYS&symbol=MSFT&timeframe=1d&limit=1"
                                               "&columns=rsi"))
    assert values.status == 200 and values.body["indicators"][0]["rsi"] is not None, values.text
