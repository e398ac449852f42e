"""format=csv on the read routes: the JSON route's rows as RFC 4180 text that csv and pandas read back unchanged."""

from __future__ import annotations

import csv
import io
import json
import threading
import urllib.error

import pandas as pd
import pytest
from werkzeug.serving import make_server

from services.api.app import create_app
from services.api.routes.read import CANDLE_FIELDS, SIGNAL_FIELDS
from services.core.store.analysis_reads import INDICATOR_FIELDS, LEVEL_FIELDS, PATTERN_FIELDS
from tests.integration.api.analysis_rows import add_indicator_bars, add_zigzag_candles, detect_levels, detect_patterns
from tests.integration.api.conftest import TOKEN
from tests.integration.api.rows import add_candles, add_instrument, add_signal, hour

pytestmark = pytest.mark.integration


def as_csv(client, url: str) -> tuple[object, list[dict[str, str]]]:
    """The response to `url` with format=csv, and its records as csv.DictReader reads them."""
    response = client.get(url + ("&" if "?" in url else "?") + "format=csv")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response, list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))


def cell(value: object) -> str:
    """A JSON value as the CSV spells it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def test_candles_as_csv_are_the_json_rows_with_a_header(client, engine):
    add_candles(engine, add_instrument(engine), 5, open_last=True)
    url = "/api/candles?symbol=BTC/USD&limit=3"
    response, records = as_csv(client, url)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="BTC-USD-1h-candles.csv"'
    text = response.get_data(as_text=True)
    assert text.startswith(",".join(CANDLE_FIELDS) + "\r\n") and text.endswith("\r\n")
    candles = client.get(url).get_json()["candles"]
    assert records == [{name: cell(candle[name]) for name in CANDLE_FIELDS} for candle in candles]
    assert records[0]["ts"] == "2024-01-01T02:00:00+00:00" and records[-1]["is_closed"] == "false"


def test_pandas_reads_the_candle_csv_back_to_the_json_values(client, engine):
    add_candles(engine, add_instrument(engine), 4)
    response, _ = as_csv(client, "/api/candles?symbol=BTC/USD")
    frame = pd.read_csv(io.StringIO(response.get_data(as_text=True)), parse_dates=["ts"])
    candles = client.get("/api/candles?symbol=BTC/USD").get_json()["candles"]
    assert list(frame.columns) == list(CANDLE_FIELDS)
    assert frame["close"].tolist() == [c["close"] for c in candles]
    assert frame["is_closed"].tolist() == [True] * 4
    assert str(frame["ts"].dt.tz) == "UTC" and frame["ts"].iloc[0] == pd.Timestamp(hour(0))


def test_indicator_csv_keeps_every_bit_and_leaves_null_cells_empty(client, engine):
    add_indicator_bars(engine, add_instrument(engine), 4, warmup=2)
    url = "/api/indicators?symbol=BTC/USD&columns=sma_slow,atr,regime"
    response, records = as_csv(client, url)
    assert response.headers["Content-Disposition"] == 'attachment; filename="BTC-USD-1h-indicators.csv"'
    assert list(records[0]) == ["ts", "sma_slow", "atr", "regime", "is_closed"]
    bars = client.get(url).get_json()["indicators"]
    assert records == [{name: cell(bar[name]) for name in records[0]} for bar in bars]
    assert [r["sma_slow"] for r in records][:2] == ["", ""] and records[1]["atr"] == ""  # NaN, +Infinity
    frame = pd.read_csv(io.StringIO(response.get_data(as_text=True)))
    assert frame["sma_slow"].isna().tolist() == [True, True, False, False]
    assert frame["sma_slow"].iloc[3] == bars[3]["sma_slow"]  # the shortest repr reads back to the same double


def test_every_indicator_column_is_in_the_default_csv(client, engine):
    add_indicator_bars(engine, add_instrument(engine), 2)
    _, records = as_csv(client, "/api/indicators?symbol=BTC/USD")
    assert list(records[0]) == ["ts", *INDICATOR_FIELDS, "is_closed"]
    assert float(records[1]["rsi"]) == client.get("/api/indicators?symbol=BTC/USD").get_json()["indicators"][1]["rsi"]


def test_signal_inputs_are_one_quoted_json_cell(client, engine):
    btc = add_instrument(engine)
    add_signal(engine, btc, hour(1))
    add_signal(engine, btc, hour(2), strategy="macd_cross_adx", side="sell")
    response, records = as_csv(client, "/api/signals?symbol=BTC/USD&timeframe=1h")
    assert response.headers["Content-Disposition"] == 'attachment; filename="BTC-USD-1h-signals.csv"'
    signals = client.get("/api/signals?symbol=BTC/USD&timeframe=1h").get_json()["signals"]
    assert records == [{name: cell(signal[name]) for name in SIGNAL_FIELDS} for signal in signals]
    assert [json.loads(r["inputs"]) for r in records] == [{"rsi": 25.0}, {"rsi": 25.0}]
    assert '"{""rsi"":25.0}"' in response.get_data(as_text=True)  # RFC 4180: quoted, inner quotes doubled


def test_a_signal_csv_without_filters_is_named_for_its_rows_only(client, engine):
    add_signal(engine, add_instrument(engine), hour(1))
    response, records = as_csv(client, "/api/signals")
    assert response.headers["Content-Disposition"] == 'attachment; filename="signals.csv"'
    assert len(records) == 1 and records[0]["symbol"] == "BTC/USD"


def test_patterns_and_levels_as_csv_are_their_json_rows(client, engine):
    dojis, swings = add_instrument(engine, "BTC/USD"), add_instrument(engine, "ETH/USD")
    add_candles(engine, dojis, 6)  # open == close: a doji on every bar
    detect_patterns(engine, dojis)
    add_zigzag_candles(engine, swings, 60)
    detect_levels(engine, swings)
    for route, symbol, fields in (("patterns", "BTC/USD", PATTERN_FIELDS), ("levels", "ETH/USD", LEVEL_FIELDS)):
        response, records = as_csv(client, f"/api/{route}?symbol={symbol}")
        rows = client.get(f"/api/{route}?symbol={symbol}").get_json()[route]
        assert rows, route  # the comparison is not vacuous
        assert records == [{name: cell(row[name]) for name in fields} for row in rows], route
        name = symbol.replace("/", "-")
        assert response.headers["Content-Disposition"] == f'attachment; filename="{name}-1h-{route}.csv"'


def test_an_empty_result_is_a_header_row_alone(client, engine):
    add_instrument(engine)
    response, records = as_csv(client, "/api/candles?symbol=BTC/USD")
    assert records == [] and response.get_data(as_text=True) == ",".join(CANDLE_FIELDS) + "\r\n"


@pytest.mark.parametrize("route", ["/api/candles?symbol=BTC/USD", "/api/indicators?symbol=BTC/USD",
                                   "/api/patterns?symbol=BTC/USD", "/api/levels?symbol=BTC/USD", "/api/signals"])
@pytest.mark.parametrize("value", ["xml", "CSV", ""])
def test_any_other_format_is_refused_naming_format(client, engine, route, value):
    add_instrument(engine)
    response = client.get(f"{route}{'&' if '?' in route else '?'}format={value}")
    assert response.status_code == 400 and response.content_type == "application/json"
    assert response.get_json()["parameter"] == "format"
    assert "valid: json, csv" in response.get_json()["message"]


@pytest.mark.parametrize(("url", "status", "parameter"), [
    ("/api/candles?symbol=DOGE/USD&format=csv", 404, "symbol"),
    ("/api/indicators?symbol=BTC/USD&columns=volume&format=csv", 400, "columns"),
    ("/api/signals?limit=0&format=csv", 400, "limit"),
])
def test_errors_stay_json_when_csv_was_asked(client, engine, url, status, parameter):
    add_instrument(engine)
    response = client.get(url)
    assert response.status_code == status and response.content_type == "application/json"
    assert "Content-Disposition" not in response.headers and response.get_json()["parameter"] == parameter


def test_json_is_the_default_and_can_be_asked_for(client, engine):
    add_candles(engine, add_instrument(engine), 2)
    default, asked = client.get("/api/candles?symbol=BTC/USD"), client.get("/api/candles?symbol=BTC/USD&format=json")
    assert default.content_type == asked.content_type == "application/json"
    assert default.get_json() == asked.get_json() and default.get_json()["count"] == 2


@pytest.fixture()
def served_closed_reads(api_settings, celery, broker, engine):
    """The API over real HTTP with API_READ_ACCESS=token, as pandas reaches it in docs/api.md."""
    settings = api_settings.model_copy(update={"api_read_access": "token"})
    server = make_server("127.0.0.1", 0, create_app(settings=settings, celery=celery, redis_client=broker,
                                                     engine=engine), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_pandas_reads_a_route_from_its_url_with_the_token_as_a_header(served_closed_reads, client, engine):
    add_candles(engine, add_instrument(engine), 3)
    url = f"{served_closed_reads}/api/candles?symbol=BTC/USD&timeframe=1h&format=csv"
    candles = pd.read_csv(url, storage_options={"Authorization": f"Bearer {TOKEN}"}, parse_dates=["ts"],
                          index_col="ts")
    assert candles["close"].tolist() == [c["close"] for c in client.get("/api/candles?symbol=BTC/USD").get_json()[
        "candles"]]
    with pytest.raises(urllib.error.HTTPError) as refused:  # no token: the 401, never an empty frame
        pd.read_csv(url)
    assert refused.value.code == 401
