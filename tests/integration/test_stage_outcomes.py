"""A stage's outcome against real Postgres: transient errors go back to Celery, permanent ones are carried."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.core.pipeline import records
from services.core.pipeline.chain import new_carry, run_stage
from services.core.pipeline.stages import STAGES

pytestmark = pytest.mark.integration


@pytest.fixture()
def settings(monkeypatch, engine, database_url, redis_url):
    from services.core import config

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    config.get_settings.cache_clear()
    with engine.begin() as conn:
        records.insert_run(conn, "run-1", "all", {})
    yield
    config.get_settings.cache_clear()


def _task(retries: int, max_retries: int = 3):
    # What run_stage reads of the Celery task running it: how many retries are spent and allowed.
    return SimpleNamespace(request=SimpleNamespace(retries=retries), max_retries=max_retries)


def _database_blip(*_args, **_kwargs):
    raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def _recorded(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT instrument, result->>'status' FROM pipeline_stage_results ORDER BY recorded_at"))]


def test_a_database_blip_with_retries_left_is_raised_for_celery_and_nothing_is_recorded(settings, engine):
    carry = new_carry("run-1", "BTC/USD", "1h", {})
    with pytest.raises(OperationalError):
        run_stage(carry, STAGES["indicators"], _database_blip, task=_task(retries=0))
    assert carry["failed"] is None and _recorded(engine) == []


def test_a_database_blip_once_retries_are_spent_is_carried_as_the_instruments_failure(settings, engine):
    carry = run_stage(new_carry("run-1", "BTC/USD", "1h", {}), STAGES["indicators"], _database_blip,
                      task=_task(retries=3))
    assert carry["failed"]["stage"] == "indicators" and "OperationalError" in carry["failed"]["error"]
    assert _recorded(engine) == [("BTC/USD 1h", "failed")]


def test_a_permanent_error_is_carried_at_once_and_the_next_stage_is_skipped(settings, engine):
    def unknown_symbol(symbol, timeframe):
        raise LookupError(f"{symbol} is not listed")

    carry = run_stage(new_carry("run-1", "ZZ/ZZ", "1h", {}), STAGES["ohlc"], unknown_symbol, task=_task(0))
    carry = run_stage(carry, STAGES["indicators"], lambda symbol, timeframe, **_: {"bars": 1}, task=_task(0))
    assert [entry["status"] for entry in carry["stages"]] == ["failed", "skipped"]
    assert _recorded(engine) == [("ZZ/ZZ 1h", "failed"), ("ZZ/ZZ 1h", "skipped")]


def test_a_stage_gets_only_the_run_parameters_its_entry_accepts(settings, engine):
    seen = {}
    params = {"since": "2024-01-01", "until": "2024-02-01"}
    run_stage(new_carry("run-1", "BTC/USD", "1h", params), STAGES["signals"],
              lambda symbol, timeframe, **given: seen.update(given) or {"bars": 0})
    assert seen == {"since": "2024-01-01"}
