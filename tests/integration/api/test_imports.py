"""POST /api/imports with real Redis and Postgres: the upload staged and queued, the ingest task importing it, the
run's status showing the counts; refusals as 400 (the form, and what the file's first bytes show) or a FAILURE run
(what only the whole file shows), nothing stored."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from sqlalchemy import text

from services.api.app import create_app
from services.core.pipeline.lost import run_ids_in_broker
from services.core.store.instruments import insert_instrument
from services.ingest.imports import import_upload
from tests.integration.api.conftest import AUTH

pytestmark = pytest.mark.integration

VENDOR_FILE = Path(__file__).resolve().parents[2] / "data" / "imports" / "msft_vendor_thanksgiving_2026.csv"
FORM = {"exchange": "XNYS", "timeframe": "1d", "symbol": "MSFT"}


def _post(client, content: bytes, name: str = "msft.csv", headers=AUTH, **fields):
    form = {**FORM, **fields}
    data = {key: value for key, value in form.items() if value is not None}
    data["file"] = (io.BytesIO(content), name)
    return client.post("/api/imports", data=data, headers=headers, content_type="multipart/form-data")


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_an_upload_is_queued_pending_then_imported_and_its_run_shows_the_counts(client, engine, broker):
    queued = _post(client, VENDOR_FILE.read_bytes())
    assert queued.status_code == 202, queued.get_json()
    body = queued.get_json()
    run_id = body["task_id"]
    assert body["task_type"] == "import" and body["scope"] == {"exchange": "XNYS", "timeframe": "1d",
                                                                "file": "msft.csv", "symbol": "MSFT"}
    assert run_id in run_ids_in_broker(broker)  # the message waits in the ingest queue
    assert client.get(f"/api/runs/{run_id}", headers=AUTH).get_json()["status"] == "PENDING"
    assert _count(engine, "import_uploads") == 1

    outcome = import_upload(run_id)  # what worker-ingest runs for that message
    assert outcome["status"] == "imported"
    status = client.get(f"/api/runs/{run_id}", headers=AUTH).get_json()
    assert status["status"] == "SUCCESS" and status["task_type"] == "import"
    (entry,) = status["result"]
    assert entry["instrument"] == "MSFT 1d"
    assert (entry["rows_read"], entry["stored"], entry["unchanged"], entry["rejected"]) == (10, 5, 0, 5)
    assert entry["rejected_by_reason"] == {"high_below_low": 1, "negative_volume": 1, "non_session": 2,
                                           "unparsable_date": 1}
    assert _count(engine, "candles") == 5 and _count(engine, "rejected_candles") == 5
    assert _count(engine, "import_uploads") == 0  # gone with the outcome
    assert import_upload(run_id) == {"run_id": run_id, "status": "done before"}  # a redelivery does nothing


def test_a_second_upload_of_the_same_file_stores_nothing_new(client, engine):
    first = _post(client, VENDOR_FILE.read_bytes()).get_json()["task_id"]
    import_upload(first)
    second = _post(client, VENDOR_FILE.read_bytes()).get_json()["task_id"]
    import_upload(second)
    (entry,) = client.get(f"/api/runs/{second}", headers=AUTH).get_json()["result"]
    assert (entry["stored"], entry["unchanged"]) == (0, 5)
    assert _count(engine, "candles") == 5 and _count(engine, "rejected_candles") == 5


_HEADER = b"Date,Open,High,Low,Close,Volume\n"


@pytest.mark.parametrize(("content", "fields", "message"), [
    (b"when,what\n2026-11-23,1\n", {}, "unknown layout: no date, open, high, low, close, volume column"),
    (b"Date,Open\x00\x00\x00\x00,High\n", {}, "neither CSV (it holds NUL bytes) nor Parquet"),
    (b"\xff\xfe\xfd" * 50, {}, "neither CSV (UTF-8 text) nor Parquet"),
    (b"\x1f\x8b\x08\x00not gzip at all", {}, "a gzip file that does not decompress"),
    (gzip.compress(b"when,what\n1,2\n"), {}, "unknown layout"),
    (b"PAR1 and nothing of a Parquet file", {}, "an unreadable Parquet file"),
    (b"  \n\n ", {}, "the file is empty"),
    (b"Symbol," + _HEADER + b"MSFT,2026-11-23,1,2,1,2,1\n", {}, "has a symbol column ('Symbol'): leave --symbol out"),
    (_HEADER + b"2026-11-23,1,2,1,2,1\n", {"symbol": None}, "has no symbol column: give --symbol"),
])
def test_a_file_its_first_bytes_refuse_is_a_400_naming_the_file_and_nothing_is_staged(client, engine, broker, content,
                                                                                     fields, message):
    answer = _post(client, content, **fields)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["parameter"] == "file" and message in answer.get_json()["message"], answer.get_json()
    assert _count(engine, "import_uploads") == 0 and not run_ids_in_broker(broker)


def test_a_file_refused_as_a_whole_ends_its_run_failure_with_the_reason_and_stores_nothing(client, engine):
    # Its first bytes are a layout; only the whole file shows it holds no row.
    run_id = _post(client, _HEADER).get_json()["task_id"]
    assert import_upload(run_id)["status"] == "refused"
    status = client.get(f"/api/runs/{run_id}", headers=AUTH).get_json()
    assert status["status"] == "FAILURE"
    assert "a header and no rows" in status["error"]
    assert _count(engine, "candles") == 0 and _count(engine, "instruments") == 0
    assert _count(engine, "import_uploads") == 0


def test_an_import_that_fails_for_good_ends_its_run_failure_and_drops_its_upload(client, engine):
    run_id = _post(client, VENDOR_FILE.read_bytes()).get_json()["task_id"]
    # What Celery calls once the task failed for good (retries spent, a bug): never PENDING for a week.
    import_upload.on_failure(RuntimeError("boom"), run_id, (run_id,), {}, None)
    status = client.get(f"/api/runs/{run_id}", headers=AUTH).get_json()
    assert status["status"] == "FAILURE" and status["result"][0]["reason"] == "failed", status
    assert _count(engine, "import_uploads") == 0 and _count(engine, "candles") == 0
    import_upload.on_failure(RuntimeError("again"), run_id, (run_id,), {}, None)  # nothing left: no error


@pytest.mark.parametrize(("fields", "content", "parameter", "message"), [
    ({"exchange": "NYSE"}, b"x", "exchange", "unknown exchange 'NYSE'"),
    ({"symbol": "msft"}, b"x", "symbol", "malformed symbol"),
    ({"timeframe": "1w"}, b"x", "timeframe", "malformed timeframe"),
    ({"exchange": None}, b"x", "exchange", "the form needs exchange"),
    ({"columns": "when=Day"}, b"x", "columns", "unknown field 'when'"),
    ({"date_format": "dd.mm.yyyy"}, b"x", "date_format", "no strptime directive"),
    ({"colour": "red"}, b"x", "colour", "unknown form field 'colour'"),
    ({}, b"", "file", "is empty"),
])
def test_a_bad_form_is_refused_with_400_naming_the_field_and_nothing_is_staged(client, engine, fields, content,
                                                                             parameter, message):
    answer = _post(client, content, **fields)
    assert answer.status_code == 400
    assert answer.get_json()["parameter"] == parameter and message in answer.get_json()["message"]
    assert _count(engine, "import_uploads") == 0


def test_a_timeframe_other_than_the_instruments_is_refused_with_400(client, engine):
    with engine.begin() as conn:
        insert_instrument(conn, "XNYS", "MSFT", ["1h"], "cli")
    answer = _post(client, VENDOR_FILE.read_bytes())
    assert answer.status_code == 400 and answer.get_json()["parameter"] == "timeframe"
    assert "kept in 1h, not 1d" in answer.get_json()["message"]


def test_the_token_is_required_and_json_is_not_an_upload(client, engine):
    assert _post(client, VENDOR_FILE.read_bytes(), headers={}).status_code == 401
    answer = client.post("/api/imports", json=FORM, headers=AUTH)
    assert answer.status_code == 400 and answer.get_json()["parameter"] == "body"
    assert _count(engine, "import_uploads") == 0


def test_a_body_over_import_max_bytes_is_answered_413(api_settings, celery, broker, engine):
    small = create_app(settings=api_settings.model_copy(update={"import_max_bytes": 2000}), celery=celery,
                       redis_client=broker, engine=engine)
    answer = _post(small.test_client(), b"Date,Open,High,Low,Close,Volume\n" + b"2026-11-23,1,2,1,2,1\n" * 150)
    assert answer.status_code == 413 and answer.get_json()["status"] == "error"
    assert _post(small.test_client(), VENDOR_FILE.read_bytes()).status_code == 202  # 757 bytes and the form pass
    assert _count(engine, "import_uploads") == 1


def test_an_upload_may_exceed_the_apps_64_kib_body_limit_that_every_other_route_keeps(client, engine):
    big = b"Date,Open,High,Low,Close,Volume\n" + b"2026-11-23,1,2,1,2,1\n" * 10_000  # ~210 KB
    assert len(big) > 64 * 1024
    assert _post(client, big).status_code == 202
    assert _count(engine, "import_uploads") == 1
    other = client.post("/api/instruments", data=b"x" * (65 * 1024),
                        headers={**AUTH, "Content-Type": "application/json"})
    assert other.status_code == 413


def test_a_real_ingest_worker_imports_the_upload(api_settings, client, engine, redis_url, database_url):
    from tests.utils.waiting import wait_until
    from tests.utils.workers import running_worker

    with running_worker("ingest", redis_url, database_url) as worker:
        run_id = _post(client, VENDOR_FILE.read_bytes()).get_json()["task_id"]

        def finished():
            status = client.get(f"/api/runs/{run_id}", headers=AUTH).get_json()
            return status if status["status"] in ("SUCCESS", "FAILURE") else None
        status = wait_until(finished, f"import {run_id} to finish", 120, detail=worker.log)
    assert status["status"] == "SUCCESS", status
    assert [entry["stored"] for entry in status["result"]] == [5]
    assert _count(engine, "candles") == 5 and _count(engine, "import_uploads") == 0
