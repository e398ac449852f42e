"""Scrape time of the exporter at scale (up to 10,000 instruments, 100,000 queued messages) against its 100 ms target.

Each scrape is an HTTP GET of /metrics with the headers Prometheus 2.53 sends (OpenMetrics
preferred, gzip accepted), timed until the last byte arrived; `render` is the same body
built in process, before compression. The default configuration runs the background
refresher as the service does, so scrapes that meet a refresh are among those timed.

    .venv/bin/python bench/exporter.py [--instruments 10000] [--bars 100] [--scrapes 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
import uuid
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main"]

TARGET_S = 0.100
# What Prometheus 2.53 (docker-compose.yml's image) sends with every scrape.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.4,application/openmetrics-text;version=0.0.1;"
                     "q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")


def _fill_postgres(url: str, instruments: int, bars: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        # The rows are consistent by construction: skipping the foreign-key triggers (the bench's
        # own superuser may) halves the fill, which at 10,000 instruments is millions of rows.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("""INSERT INTO instruments (id, exchange, symbol, timeframes)
            SELECT n, 'binance', 'SYM' || n || '/USD', ARRAY['1h', '4h'] FROM generate_series(1, :n) n"""),
                     {"n": instruments})
        # Bars of two timeframes per instrument; the newest 1h bar is the open one.
        conn.execute(text("""INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume,
                                              is_closed)
            SELECT i, tf, date_trunc('hour', now()) - (b * step), 1, 1, 1, 1, 1, b > 0
              FROM generate_series(1, :n) i, generate_series(0, :bars - 1) b,
                   (VALUES ('1h', interval '1 hour'), ('4h', interval '4 hours')) AS t(tf, step)"""),
                     {"n": instruments, "bars": bars})
        conn.execute(text("""INSERT INTO pipeline_runs (id, kind, state, created_at, finished_at)
            SELECT 'run-' || h, 'all', CASE WHEN h % 10 = 0 THEN 'PARTIAL' ELSE 'SUCCESS' END,
                   now() - h * interval '1 hour', now() - h * interval '1 hour' + interval '2 minutes'
              FROM generate_series(1, 720) h"""))
        conn.execute(text("""INSERT INTO fetch_ledger (instrument_id, timeframe, window_start, window_end, status)
            SELECT i, '1h', now() - (h + 1) * interval '1 hour', now() - h * interval '1 hour',
                   CASE WHEN (i + h) % 97 = 0 THEN 'failed' WHEN (i + h) % 89 = 0 THEN 'gaps' ELSE 'ok' END
              FROM generate_series(1, :n) i, generate_series(0, 71) h"""), {"n": instruments})
        conn.execute(text("""INSERT INTO rejected_candles (instrument_id, timeframe, raw_ts, raw, reason)
            SELECT i, '1h', r, '[]', (ARRAY['high_below_low', 'non_positive_price', 'future_timestamp'])[1 + r % 3]
              FROM generate_series(1, :n) i, generate_series(1, 5) r"""), {"n": instruments})
        conn.execute(text("""INSERT INTO signals (instrument_id, timeframe, ts, strategy, side, strength, price, inputs)
            SELECT i, '1h', date_trunc('hour', now()) - b * interval '1 hour', s,
                   CASE WHEN b % 2 = 0 THEN 'buy' ELSE 'sell' END, 1, 1, '{}'
              FROM generate_series(1, :n) i, generate_series(1, :bars - 1, 7) b,
                   unnest(ARRAY['ema_cross', 'rsi_reversal', 'breakout']) s"""),
                     {"n": instruments, "bars": bars})
    # What autovacuum would have done by the time anyone scrapes: without it the first reads set
    # hint bits on every page they touch, and the freshness query outlived its 2 s timeout.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def _fill_redis(app, url: str, messages: int) -> None:
    """Real Celery messages: one sent through kombu, then copied with fresh ids across queues and priorities."""
    import redis

    from services.core.celery_app import QUEUES
    from services.core.priority import priority_keys

    client = redis.Redis.from_url(url)
    app.send_task("signals.stage.signals", args=[{"symbol": "BTC/USD", "timeframe": "1h"}])
    # The one message, at the default priority, waits in one of the queue's priority lists.
    template = json.loads(next(raw for key in priority_keys("signals") if (raw := client.rpop(key))))
    keys = [key for queue in QUEUES for key in priority_keys(queue)]
    pipe = client.pipeline(transaction=False)
    for n in range(messages):
        template["headers"]["id"] = str(uuid.uuid4())
        pipe.lpush(keys[n % len(keys)], json.dumps(template))
        if n % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


def _feed_events(exporter, tasks: int = 20, per_task: int = 500) -> None:
    """Enough task events for every counter and histogram family to carry series."""
    names = [f"bench.task_{n}" for n in range(tasks)]
    for n in range(tasks * per_task):
        name, task_id, at = names[n % tasks], f"t{n}", 1_700_000_000.0 + n
        for event in ({"type": "task-sent", "uuid": task_id, "name": name, "queue": "ingest", "timestamp": at},
                      {"type": "task-received", "uuid": task_id, "name": name, "timestamp": at + 0.1},
                      {"type": "task-started", "uuid": task_id, "timestamp": at + 0.2 + n % 7},
                      {"type": "task-failed" if n % 50 == 0 else "task-succeeded", "uuid": task_id,
                       "runtime": 0.5 + n % 13, "exception": "ValueError()", "timestamp": at + 2}):
            exporter.tasks.record(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instruments", type=int, default=1000)
    parser.add_argument("--bars", type=int, default=100, help="candles per instrument and timeframe")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.2,
                        help="seconds between scrapes in background mode, so the timed scrapes span a refresh")
    args = parser.parse_args()

    import redis
    from sqlalchemy import create_engine

    from services.core.migrate import upgrade_database
    from tests.utils.servers import free_port, postgres_server, redis_server

    with redis_server() as redis_url, postgres_server() as database_url:
        os.environ.update(REDIS_URL=redis_url, DATABASE_URL=database_url)
        upgrade_database(database_url)
        from services.core.celery_app import app  # after REDIS_URL is set: it is read at import
        from services.core.config import load_settings
        from services.exporter.exposition import metrics_app, serve_metrics
        from services.exporter.pipeline import PipelineRefresher
        from services.exporter.service import Exporter

        started = time.perf_counter()
        _fill_postgres(database_url, args.instruments, args.bars)
        _fill_redis(app, redis_url, args.messages)
        print(f"filled {args.instruments} instruments × 2 timeframes × {args.bars} bars and "
              f"{args.messages} queued messages in {time.perf_counter() - started:.1f}s")

        engine, client = create_engine(database_url), redis.Redis.from_url(redis_url)
        failed = False
        for label, settings, scrapes, interval in (
            ("default: Postgres read every 15 s in the background", load_settings(exporter_db_refresh_s=15),
             args.scrapes, args.interval),
            ("EXPORTER_DB_REFRESH_S=0: Postgres read during every scrape", load_settings(exporter_db_refresh_s=0),
             max(3, args.scrapes // 10), 0.0),
        ):
            exporter = Exporter(app, client, engine, settings)
            exporter.workers.record_poll({f"worker-{n}@bench": frozenset({q}) for n, q in
                                          enumerate(("ingest", "indicators", "signals"))})
            _feed_events(exporter)
            refresher = None
            if settings.exporter_db_refresh_s:
                refresher = PipelineRefresher(exporter.pipeline)  # what Exporter.start() runs
                refresher.start()
                time.sleep(0.5)
                while not exporter.health.snapshot()[1].get("signals"):  # the first read is in
                    time.sleep(0.1)
            port = free_port()
            server, _thread = serve_metrics(metrics_app(exporter.render_parts), "127.0.0.1", port)
            try:
                failed |= _measure(label, exporter, f"http://127.0.0.1:{port}/metrics", scrapes, interval)
            finally:
                server.shutdown()
                server.server_close()
                if refresher is not None:
                    refresher.stop()
                    refresher.join(timeout=30)
        if failed:
            sys.exit(1)


def _scrape(url: str) -> tuple[float, bytes]:
    """One scrape as Prometheus makes it: seconds to the last byte, and the compressed body."""
    request = urllib.request.Request(url, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
    tick = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - tick, body


def _figures(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[max(0, int(len(times) * 0.95 + 0.5) - 1)]


def _measure(label: str, exporter, url: str, scrapes: int, interval: float) -> bool:
    """Print the scrape time figures of one configuration; True when a collector failed."""
    for _ in range(3):  # warm the connection pools, Postgres' caches and the formats rendered ahead
        _scrape(url)
    times, renders = [], []
    for _ in range(scrapes):
        seconds, body = _scrape(url)
        times.append(seconds)
        tick = time.perf_counter()
        exporter.render(PROMETHEUS_ACCEPT)
        renders.append(time.perf_counter() - tick)
        time.sleep(interval)
    errors, durations = exporter.health.snapshot()
    text = zlib.decompress(body, 16 + zlib.MAX_WBITS).decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    median, p95 = _figures(times)
    render_median, render_p95 = _figures(renders)
    print(f"\n{label}")
    print(f"  {scrapes} scrapes, {series} series, {len(text) / 1024:.0f} KiB each "
          f"({len(body) / 1024:.0f} KiB gzipped), collector errors: {errors or 'none'}")
    print(f"  HTTP scrape: median {median * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms  max {max(times) * 1000:.1f} ms  "
          f"target {TARGET_S * 1000:.0f} ms")
    print(f"  ratio to target: median {median / TARGET_S:.2f}  p95 {p95 / TARGET_S:.2f}  (below 1.00 meets it)")
    print(f"  render alone (no HTTP, no gzip): median {render_median * 1000:.1f} ms  p95 {render_p95 * 1000:.1f} ms")
    print("  last read by collector: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in sorted(durations.items())))
    return bool(errors)


if __name__ == "__main__":
    main()
