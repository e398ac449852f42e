"""A batch stage's outcomes against real Postgres: per instrument, transient errors retried, permanent carried."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.exceptions import Retry
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.core.config import get_settings
from services.core.exceptions import PermanentSourceError
from services.core.pipeline import records
from services.core.pipeline.chain import new_carry, per_instrument, run_stage
from services.core.pipeline.stages import STAGES

pytestmark = pytest.mark.integration


@pytest.fixture()
def settings(server_settings, engine):
    with engine.begin() as conn:
        records.insert_run(conn, "run-1", "all", {})


class FakeRetry(Exception):
    """What the stand-in task raises where Celery's Task.retry would raise Retry."""


class StageTask:
    """What run_stage uses of the Celery task running it: its retry count, its limit, retry()."""

    def __init__(self, retries: int, max_retries: int = 3):
        self.request = SimpleNamespace(retries=retries)
        self.max_retries = max_retries
        self.sent_back: list[dict] = []

    def retry(self, args, kwargs, exc, countdown):
        self.sent_back.append({"carry": args[0], "exc": exc, "countdown": countdown})
        return Retry(exc=exc)


def _exchange() -> str:
    return get_settings().exchange


def _blip():
    return OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def _recorded(engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(
            "SELECT instrument, stage, result->>'status' FROM pipeline_stage_results")))


def test_one_bad_instrument_in_a_batch_is_named_while_its_neighbours_succeed(settings, engine):
    def sync(symbol, timeframe, **_):
        if symbol == "ZZ/ZZ":
            raise PermanentSourceError("kraken does not list symbol 'ZZ/ZZ'")
        return {"candles": 1}

    carry = new_carry("run-1", _exchange(), ["BTC/USD", "ZZ/ZZ", "ETH/USD"], "1h", {})
    carry = run_stage(carry, STAGES["ohlc"], per_instrument(sync), task=StageTask(0))
    carry = run_stage(carry, STAGES["indicators"], per_instrument(lambda s, tf, **_: {"bars": 1}), task=StageTask(0))
    assert carry["outcomes"]["ZZ/ZZ"]["failed"]["error"] == "rejected: kraken does not list symbol 'ZZ/ZZ'"
    assert [e["status"] for e in carry["outcomes"]["ZZ/ZZ"]["stages"]] == ["failed", "skipped"]
    assert [e["status"] for e in carry["outcomes"]["BTC/USD"]["stages"]] == ["ok", "ok"]
    assert _recorded(engine) == [
        ("BTC/USD 1h", "indicators", "ok"), ("BTC/USD 1h", "ohlc", "ok"), ("ETH/USD 1h", "indicators", "ok"),
        ("ETH/USD 1h", "ohlc", "ok"), ("ZZ/ZZ 1h", "indicators", "skipped"), ("ZZ/ZZ 1h", "ohlc", "failed")]


def test_a_database_blip_sends_back_only_the_instrument_it_hit_and_the_retry_does_only_that_one(settings, engine):
    calls: list[str] = []

    def indicators(symbol, timeframe, **_):
        calls.append(symbol)
        if symbol == "ETH/USD" and calls.count("ETH/USD") == 1:
            raise _blip()
        return {"bars": 1}

    task = StageTask(0)
    carry = new_carry("run-1", _exchange(), ["BTC/USD", "ETH/USD"], "1h", {})
    with pytest.raises(Retry):
        run_stage(carry, STAGES["indicators"], per_instrument(indicators), task=task)
    assert _recorded(engine) == [("BTC/USD 1h", "indicators", "ok")]
    sent = task.sent_back[0]["carry"]
    assert sent["outcomes"]["ETH/USD"] == {"stages": [], "failed": None}
    carry = run_stage(sent, STAGES["indicators"], per_instrument(indicators), task=StageTask(1))
    assert calls == ["BTC/USD", "ETH/USD", "ETH/USD"]
    assert _recorded(engine) == [("BTC/USD 1h", "indicators", "ok"), ("ETH/USD 1h", "indicators", "ok")]
    assert all(not outcome["failed"] for outcome in carry["outcomes"].values())


def test_a_database_blip_once_retries_are_spent_is_carried_as_that_instruments_failure(settings, engine):
    def always_down(symbol, timeframe, **_):
        raise _blip()

    carry = run_stage(new_carry("run-1", _exchange(), ["BTC/USD"], "1h", {}), STAGES["indicators"],
                      per_instrument(always_down), task=StageTask(retries=3))
    assert carry["outcomes"]["BTC/USD"]["failed"]["error"] == "database unavailable"
    assert _recorded(engine) == [("BTC/USD 1h", "indicators", "failed")]


def test_an_instrument_the_batch_work_gave_no_answer_for_counts_as_failed(settings, engine):
    carry = run_stage(new_carry("run-1", _exchange(), ["BTC/USD", "ETH/USD"], "1h", {}), STAGES["signals"],
                      lambda symbols, timeframe, **_: {"BTC/USD": {"bars": 1}}, task=StageTask(0))
    assert "no outcome" in carry["outcomes"]["ETH/USD"]["failed"]["error"]
    assert carry["outcomes"]["BTC/USD"]["failed"] is None


def test_a_stage_gets_only_the_run_parameters_its_entry_accepts(settings, engine):
    seen = {}
    params = {"since": "2024-01-01", "until": "2024-02-01"}
    run_stage(new_carry("run-1", _exchange(), ["BTC/USD"], "1h", params), STAGES["signals"],
              per_instrument(lambda symbol, timeframe, **given: seen.update(given) or {"bars": 0}))
    assert seen == {"exchange": _exchange(), "since": "2024-01-01"}


def test_a_fetching_stage_on_another_exchanges_instruments_is_skipped_saying_why_and_never_run(settings, engine):
    calls = []
    carry = run_stage(new_carry("run-1", "XNYS", ["MSFT"], "1d", {}), STAGES["ohlc"],
                      lambda symbols, timeframe, **_: calls.append(symbols) or {}, task=StageTask(0))
    assert calls == []
    (entry,) = carry["outcomes"]["MSFT"]["stages"]
    assert entry["status"] == "skipped" and "XNYS is a stock venue, fed by imports" in entry["reason"]
    assert carry["outcomes"]["MSFT"]["failed"] is None  # not a failure: the run goes on to its indicators
    assert _recorded(engine) == [("MSFT 1d", "ohlc", "skipped")]
