"""Scrape bodies: pre-rendered Postgres families match prometheus_client's own exposition byte for byte."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from services.core.config import load_settings
from services.exporter.exposition import EMPTY, EOF, Chunk, gzip_body, metrics_app, render_families
from services.exporter.service import Exporter
from tests.unit.exporter.fakes import FakeEngine, FakeRedis
from tests.unit.exporter.test_service import sender_app

# Every format choose_encoder answers with, text and OpenMetrics, under each escaping scheme.
ACCEPTS = [
    "", "text/plain;version=0.0.4", "*/*",
    *(f"text/plain;version=1.0.0;escaping={e}" for e in ("underscores", "allow-utf-8", "dots", "values")),
    "application/openmetrics-text", "application/openmetrics-text;version=1.0.0",
    *(f"application/openmetrics-text;version=1.0.0;escaping={e}" for e in ("underscores", "allow-utf-8", "dots",
                                                                             "values")),
    "application/openmetrics-text;version=2.0.0",
    "application/openmetrics-text;version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1",  # Prometheus 2.53's
]


class Families:
    def __init__(self, families) -> None:
        self.families = families

    def collect(self):
        return iter(self.families)


def families() -> list[Metric]:
    """Gauges as the pipeline collector builds them, plus everything the shortcut must leave to the encoder."""
    age = GaugeMetricFamily("candleflow_data_age_seconds", 'Time since "the newest" closed\\candle\nclosed',
                            labels=["exchange", "symbol", "timeframe"])
    values = [0.0, 3600, 1.5e22, float("nan"), float("inf"), -1e-300, 1_700_000_000.5, 1234567.0, 123456.0,
              float("-inf"), -2.5e9, 1e-7, 10.0**21, True]
    symbols = ["BTC/USD", 'a "quoted" one', "back\\slash", "new\nline", "ünïcødé ₿", "", "100% sure"]
    for n, value in enumerate(values):
        age.add_metric(["binance", symbols[n % len(symbols)], f"{n}h"], value)
    plain = GaugeMetricFamily("candleflow_timeframes", "No labels", value=2)
    empty = GaugeMetricFamily("candleflow_signals_last_24h", "Nothing yet", labels=["strategy", "side"])
    colon = GaugeMetricFamily("candleflow:recorded", "A colon, which underscore escaping rewrites", value=1)
    reserved = GaugeMetricFamily("candleflow_reserved", "A reserved label name", labels=["__x"])
    reserved.add_metric(["y"], 1)
    stamped = GaugeMetricFamily("candleflow_stamped", "With a timestamp", labels=["k"])
    stamped.add_metric(["v"], 1, timestamp=1_700_000_000.5)
    with_unit = GaugeMetricFamily("candleflow_wait_seconds", "With a unit", unit="seconds", value=3)
    counter = CounterMetricFamily("candleflow_things", "A counter", labels=["k"])
    counter.add_metric(["v"], 7)
    histogram = HistogramMetricFamily("candleflow_runtime_seconds", "A histogram", labels=["task"])
    histogram.add_metric(["t"], [("1.0", 1), ("+Inf", 2)], 3.5)
    created = CounterMetricFamily("candleflow_started", "A counter with its _created sample", labels=["k"])
    created.add_metric(["v"], 2, created=1_700_000_000.0)
    summary = SummaryMetricFamily("candleflow_sizes", "A summary", count_value=3, sum_value=9.5)
    gauge_histogram = GaugeHistogramMetricFamily("candleflow_backlog", "A gauge histogram",
                                                 buckets=[("1.0", 4), ("+Inf", 5)], gsum_value=7)
    return [age, plain, empty, colon, reserved, stamped, with_unit, counter, histogram, created, summary,
            gauge_histogram]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_rendered_families_are_the_encoders_own_bytes(accept):
    encoder, content_type = choose_encoder(accept)
    expected = encoder(Families(families()))
    rendered = render_families(encoder, families(), content_type)
    assert rendered + (EOF if expected.endswith(EOF) else b"") == expected


def test_the_shortcut_covers_the_pipeline_collectors_gauges():
    from services.exporter import exposition

    calls = []

    def counting_encoder(registry):
        families = list(registry.collect())
        calls.append(sum(len(f.samples) for f in families))
        return choose_encoder("")[0](Families(families))
    render_families(counting_encoder, families()[:3])
    assert calls == [0, 0, 0], "the encoder wrote only HELP and TYPE lines"
    assert exposition._plain(families()[0])


def exporter(**settings) -> Exporter:
    answers = {"max(c.ts)": [
        {"instrument_id": n + 1, "exchange": "binance", "symbol": f"SYM{n}/USD", "timeframe": "1h",
         "newest_candle": 1_700_000_000.0 - n,
         "newest_signal": None if n % 3 else 1_699_990_000.0, "now": 1_700_003_600.0} for n in range(50)],
        "DISTINCT ON (kind)": [{"kind": "all", "state": "SUCCESS"}]}
    return Exporter(sender_app(), FakeRedis(), FakeEngine(answers), load_settings(**settings))


def samples(body: bytes, openmetrics: bool) -> dict:
    parse = parse_openmetrics if openmetrics else parse_text
    found = {}
    for family in parse(body.decode()):
        for sample in family.samples:
            if not sample.name.startswith(("process_", "candleflow_exporter_collector_duration")):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.parametrize("refresh_s", [15, 0], ids=["background", "read-every-scrape"])
@pytest.mark.parametrize("accept", ["", "application/openmetrics-text;version=1.0.0"])
def test_a_scrape_holds_every_sample_the_registry_does(accept, refresh_s):
    built = exporter(exporter_db_refresh_s=refresh_s)
    built.pipeline.refresh()
    encoder, content_type = choose_encoder(accept)
    body, served_type = built.render(accept)
    assert served_type == content_type
    openmetrics = content_type.startswith("application/openmetrics-text")
    assert body.endswith(EOF) == openmetrics and body.count(EOF) == int(openmetrics)
    served = samples(body, openmetrics)
    assert served == samples(encoder(built.registry), openmetrics)
    assert served[("candleflow_data_age_seconds", (("exchange", "binance"), ("symbol", "SYM3/USD"),
                                                   ("timeframe", "1h")))] == 3.0


def test_a_background_mode_scrape_never_queries_postgres():
    built = exporter()
    built.pipeline.refresh()
    built.pipeline._engine = None  # any query now would raise
    body, _ = built.render()
    assert b"candleflow_data_age_seconds{" in body
    assert built.health.snapshot()[0] == {}


def test_a_format_first_asked_for_is_rendered_then_and_ahead_from_the_next_refresh_on():
    built = exporter()
    built.pipeline.refresh()
    accept = "text/plain;version=1.0.0;escaping=allow-utf-8"
    first, _ = built.render(accept)
    built.pipeline.refresh()
    assert any(accept.split(";")[-1] in content_type for read in built.pipeline._latest.values()
               for content_type in read.rendered)
    assert samples(built.render(accept)[0], False) == samples(first, False)


def test_only_a_few_formats_are_ever_rendered_ahead():
    built = exporter()
    built.pipeline.refresh()
    for minor in range(10):
        built.render(f"application/openmetrics-text;version=1.{minor}.0")
    built.pipeline.refresh()
    assert max(len(read.rendered) for read in built.pipeline._latest.values()) <= 4


def test_a_name_filter_and_read_every_scrape_mode_render_the_registry_as_prometheus_client_does():
    built = exporter(exporter_db_refresh_s=0)
    body, _ = built.render()
    assert b"candleflow_data_age_seconds{" in body
    built = exporter()
    names = ["candleflow_queue_depth"]
    assert built.render(names=names)[0] == choose_encoder("")[0](built.registry.restricted_registry(names))


def call(app, method: str = "GET", **environ):
    answer = {}

    def start_response(status, headers):
        answer.update(status=status, headers=dict(headers))
    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": "/metrics", "wsgi.input": io.BytesIO(), **environ},
                        start_response))
    return answer["status"], answer["headers"], body


def test_the_endpoint_serves_the_rendered_body_gzipped_when_asked():
    built = exporter()
    built.pipeline.refresh()
    app = metrics_app(built.render_parts)
    status, headers, plain = call(app)
    assert status == "200 OK" and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    _, headers, zipped = call(app, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert headers["Content-Encoding"] == "gzip"
    assert samples(gzip.decompress(zipped), False).keys() == samples(plain, False).keys()
    _, _, only = call(app, QUERY_STRING="name[]=candleflow_queue_depth")
    assert b"candleflow_data_age_seconds" not in only
    assert call(app, "POST")[0] == "405 Method Not Allowed"
    _, headers, _ = call(app, HTTP_ACCEPT="application/openmetrics-text;version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")


@pytest.mark.parametrize("head", [b"", b"# HELP a b\n# TYPE a gauge\na 1.0\n" * 5000, bytes(range(256)) * 300],
                         ids=["empty", "text", "binary"])
def test_a_spliced_gzip_body_is_one_member_holding_head_then_tail(head):
    chunk, tail = Chunk(head), b"tail \x00\xff line\n" * 300
    body = gzip_body(chunk, tail)
    assert gzip.decompress(body) == head + tail
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # exactly one gzip member, nothing after it
    assert inflater.decompress(body) == head + tail and inflater.eof and inflater.unused_data == b""
    assert gzip_body(chunk, b"") and gzip.decompress(gzip_body(chunk, b"")) == head
    assert gzip.decompress(gzip_body(EMPTY, tail)) == tail


def test_the_pipeline_chunk_is_deflated_once_per_refresh_not_per_scrape():
    built = exporter()
    built.pipeline.refresh()
    first = built.render_parts("application/openmetrics-text;version=1.0.0")[0]
    assert first._deflated is not None, "deflated by the refresh, before any scrape"
    assert built.render_parts("application/openmetrics-text;version=1.0.0")[0] is first
    built.pipeline.refresh()
    assert built.render_parts("application/openmetrics-text;version=1.0.0")[0] is not first
    assert built.health.snapshot()[0] == {}
