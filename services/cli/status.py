"""`candleflow status [--watch [SECONDS]] [--json]`: workers, tasks, queues, last runs and data age on one screen."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from services.cli.runs import format_table
from services.core.brokers import broker_redis, queue_depths_amqp
from services.core.config import get_settings
from services.core.exceptions import CandleflowError
from services.core.priority import PRIORITIES, PRIORITY_STEPS, priority_keys
from services.core.timeframe import Timeframe

__all__ = ["add_status_parser", "status_command", "StatusUnavailable", "tasks_per_queue", "workers_from_replies",
           "queue_rows", "data_rows", "run_rows", "render", "CLEAR_SCREEN"]

# Home the cursor and clear the terminal (ANSI), so each refresh of --watch replaces the last.
CLEAR_SCREEN = "\x1b[H\x1b[2J"
# The inspect broadcasts a status asks, by what its task counts call them.
TASK_LISTS = ("active", "reserved", "scheduled")

LAST_RUNS_SQL = """
    SELECT DISTINCT ON (kind) kind, id, state, created_at, finished_at
      FROM pipeline_runs ORDER BY kind, created_at DESC"""
# Per timeframe of the active instruments: the oldest and newest of their last closed candles
# (one primary-key probe per instrument and timeframe, as the exporter's freshness query).
DATA_AGE_SQL = """
    SELECT tf.timeframe, count(*) AS instruments, count(last.ts) AS with_candles,
           min(last.ts) AS oldest, max(last.ts) AS newest
      FROM instruments i
     CROSS JOIN LATERAL unnest(i.timeframes) AS tf(timeframe)
      LEFT JOIN LATERAL (SELECT max(c.ts) AS ts FROM candles c
                          WHERE c.instrument_id = i.id AND c.timeframe = tf.timeframe AND c.is_closed) AS last ON true
     WHERE i.active
     GROUP BY tf.timeframe ORDER BY tf.timeframe"""


class StatusUnavailable(CandleflowError):
    """The broker or Postgres did not answer; the message names which and where."""


def add_status_parser(commands: argparse._SubParsersAction) -> None:
    """The `status` verb on the console script's parser."""
    status = commands.add_parser("status", help="workers, tasks, queue depths, last runs and data age at a glance")
    status.add_argument("--watch", nargs="?", type=float, const=2.0, default=None, metavar="SECONDS",
                        help="refresh every SECONDS (default 2) until Ctrl-C")
    status.add_argument("--json", action="store_true", help="one JSON document (per refresh) for scripts")
    status.add_argument("--timeout", type=float, default=1.0,
                        help="seconds to wait for the workers' replies (default 1)")


# --- pure: replies and rows into the status document --------------------------------------------------------------


def workers_from_replies(stats: Mapping | None, queues: Mapping | None) -> list[dict]:
    """One row per worker that answered: its queues, pool and concurrency."""
    rows = []
    for name in sorted(set(stats or {}) | set(queues or {})):
        pool = (stats or {}).get(name, {}).get("pool", {})
        implementation = str(pool.get("implementation", "?"))
        rows.append({"worker": name, "queues": sorted(q["name"] for q in (queues or {}).get(name) or ()),
                     # "celery.concurrency.prefork:TaskPool" → "prefork"
                     "pool": implementation.split(":")[0].rsplit(".", 1)[-1],
                     "concurrency": pool.get("max-concurrency")})
    return rows


def _queue_of(task: Mapping, route: Callable[[str], str]) -> str:
    request = task.get("request", task)  # scheduled entries wrap the request
    queue = (request.get("delivery_info") or {}).get("routing_key")
    return queue or route(request.get("name") or "")


def tasks_per_queue(replies: Mapping[str, Mapping | None], route: Callable[[str], str]) -> dict[str, Counter]:
    """{"active" | "reserved" | "scheduled": Counter(queue → tasks)} over every worker's reply."""
    return {kind: Counter(_queue_of(task, route)
                          for tasks in (replies.get(kind) or {}).values() for task in tasks or ())
            for kind in TASK_LISTS}


def _by_priority(depth: list[int] | int) -> dict[int, int]:
    if isinstance(depth, int):  # RabbitMQ says how many messages wait, not at which priority
        return {}
    # A Redis queue's lengths follow PRIORITY_STEPS: step s holds the operator's priority 9 - s.
    return {PRIORITIES[-1] - step: count for step, count in zip(PRIORITY_STEPS, depth, strict=True) if count}


def queue_rows(queues: list[str], depths: Mapping[str, list[int] | int], tasks: Mapping[str, Counter],
               workers: list[dict]) -> list[dict]:
    """Per queue: waiting messages (and per priority, 9 most urgent, those non-zero, where the broker says),
    tasks on workers, consumers. A queue's depth is its lengths per priority step (Redis) or one total."""
    rows = []
    for queue in queues:
        depth = depths[queue]
        rows.append({"queue": queue, "waiting": depth if isinstance(depth, int) else sum(depth),
                     "waiting_by_priority": _by_priority(depth),
                     **{kind: tasks[kind][queue] for kind in TASK_LISTS},
                     "consumers": sum(queue in worker["queues"] for worker in workers)})
    return rows


def _age_s(then: datetime | None, now: datetime) -> float | None:
    return None if then is None else round((now - then).total_seconds(), 1)


def run_rows(rows: list[Mapping], now: datetime) -> list[dict]:
    """The last run of each kind: its state, and how long ago it finished (or was created, if it has not)."""
    return [{"kind": r["kind"], "run_id": r["id"], "state": r["state"],
             "age_s": _age_s(r["finished_at"] or r["created_at"], now),
             "finished": r["finished_at"] is not None} for r in rows]


def data_rows(rows: list[Mapping], now: datetime) -> list[dict]:
    """Per timeframe: how stale the stalest and the freshest active instrument are, counted from the close
    of its newest closed candle (its open time plus one bar)."""
    result = []
    for r in rows:
        bar_s = Timeframe.parse(r["timeframe"]).seconds
        closed = {end: None if r[end] is None else _age_s(r[end], now) - bar_s for end in ("oldest", "newest")}
        result.append({"timeframe": r["timeframe"], "instruments": r["instruments"],
                       "with_candles": r["with_candles"], "oldest_age_s": closed["oldest"],
                       "newest_age_s": closed["newest"]})
    return result


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def render(status: Mapping) -> str:
    """The status document as the one screen `candleflow status` prints."""
    workers = status["workers"]
    lines = [f"candleflow status at {status['at']}", "",
             f"WORKERS ({len(workers)} answered within {status['timeout_s']:g} s)"]
    lines.append(format_table([{**w, "queues": ",".join(w["queues"])} for w in workers],
                              (("WORKER", "worker"), ("QUEUES", "queues"), ("POOL", "pool"),
                               ("CONCURRENCY", "concurrency"))) if workers else "  none: no worker answered")
    queues = [{**q, "by_priority": " ".join(f"p{p}:{n}" for p, n in sorted(q["waiting_by_priority"].items(),
                                                                            reverse=True)) or None,
               "consumers": q["consumers"] or "0 (NONE)"} for q in status["queues"]]
    lines += ["", "QUEUES", format_table(queues, (
        ("QUEUE", "queue"), ("WAITING", "waiting"), ("BY PRIORITY", "by_priority"), ("ACTIVE", "active"),
        ("RESERVED", "reserved"), ("SCHEDULED", "scheduled"), ("CONSUMERS", "consumers")))]
    runs = [{**r, "age": _duration(r["age_s"]) + ("" if r["finished"] else " (not finished)")}
            for r in status["runs"]]
    lines += ["", "LAST RUN PER KIND", format_table(runs, (("KIND", "kind"), ("STATE", "state"), ("AGE", "age"),
                                                            ("RUN", "run_id"))) if runs else "  no runs on record"]
    data = [{**d, "oldest": _duration(d["oldest_age_s"]), "newest": _duration(d["newest_age_s"]),
             "instruments": f"{d['with_candles']}/{d['instruments']}"} for d in status["data"]]
    lines += ["", "DATA AGE (since the newest closed candle closed, active instruments)",
              format_table(data, (("TIMEFRAME", "timeframe"), ("WITH DATA", "instruments"), ("STALEST", "oldest"),
                                  ("FRESHEST", "newest"))) if data else "  no active instruments"]
    return "\n".join(lines)


# --- I/O: one status document from Redis, the workers and Postgres ------------------------------------------------


def _where(url: str) -> str:
    """host:port/database of a URL (the first of a Sentinel list), without its credentials."""
    parts = urlsplit(url.split(";")[0])
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"


def _broker_depths(celery, client, queues: list[str]) -> dict[str, list[int] | int]:
    """Each queue's waiting messages: per priority list from the broker's Redis (`client`), or a passive
    declare's total on RabbitMQ (`client` None); StatusUnavailable when the broker does not answer. Asked
    first: the workers are asked over this same broker."""
    import redis

    where = _where(get_settings().broker_url)
    if client is None:
        connection = celery.connection_for_read()
        try:
            return {queue: ready for queue, (ready, _consumers) in queue_depths_amqp(connection, queues).items()}
        except (*connection.connection_errors, *connection.channel_errors, OSError) as exc:
            raise StatusUnavailable(f"broker at {where} unreachable: {exc}") from None
        finally:
            connection.release()
    steps = (celery.conf.broker_transport_options or {}).get("priority_steps", PRIORITY_STEPS)
    try:
        client.ping()
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                for key in priority_keys(queue, steps):
                    pipe.llen(key)
            lengths = pipe.execute()
    except redis.exceptions.RedisError as exc:
        raise StatusUnavailable(f"Redis at {where} unreachable: {exc}") from None
    per_queue = len(lengths) // max(1, len(queues))
    return {queue: lengths[i * per_queue:(i + 1) * per_queue] for i, queue in enumerate(queues)}


def gather(celery, client, engine, timeout: float, now: datetime) -> dict:
    """Everything the screen shows, read once; StatusUnavailable when the broker or Postgres does not answer.
    `client`: the broker's Redis, or None on RabbitMQ."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    settings = get_settings()
    queues = [queue.name for queue in celery.amqp.queues.values()]
    depths = _broker_depths(celery, client, queues)
    try:
        with engine.connect() as conn:
            runs = [row._mapping for row in conn.execute(text(LAST_RUNS_SQL))]
            data = [row._mapping for row in conn.execute(text(DATA_AGE_SQL))]
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StatusUnavailable(f"Postgres at {_where(settings.database_url)} unreachable: {reason}") from None

    stats = celery.control.inspect(timeout=timeout).stats() or {}
    # The rest stop waiting once every worker that answered the first has answered them.
    inspect = celery.control.inspect(timeout=timeout, limit=len(stats)) if stats else None
    replies = {name: getattr(inspect, name)() or {} for name in ("active_queues", *TASK_LISTS)} if inspect else {}
    workers = workers_from_replies(stats, replies.get("active_queues"))

    def route(task_name: str) -> str:
        return celery.amqp.router.route({}, task_name)["queue"].name if task_name else "?"

    return {"at": now.isoformat(timespec="seconds"), "timeout_s": timeout, "workers": workers,
            "queues": queue_rows(queues, depths, tasks_per_queue(replies, route), workers),
            "runs": run_rows(runs, now), "data": data_rows(data, now)}


def status_command(args: argparse.Namespace) -> int:
    """Print the status once (exit 1 if the broker or Postgres is unreachable), or refresh it until Ctrl-C (exit 0)."""
    from services.core.celery_app import app as celery
    from services.core.db import get_engine

    if args.watch is not None and args.watch <= 0:
        raise ValueError(f"--watch must be a positive number of seconds, got {args.watch:g}")
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    settings = get_settings()
    client = broker_redis(settings.broker_url, settings.broker_sentinel_master)  # None on RabbitMQ
    engine = get_engine()

    def screen() -> str:
        status = gather(celery, client, engine, args.timeout, datetime.now(UTC))
        return json.dumps(status, default=str) if args.json else render(status)

    if args.watch is None:
        try:
            print(screen())
        except StatusUnavailable as exc:
            print(f"candleflow status: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        while True:
            try:
                shown = screen()
            except StatusUnavailable as exc:  # a monitor left open outlives a Redis or Postgres restart
                shown = f"candleflow status: {exc} (retrying every {args.watch:g} s)"
            print(shown if args.json else CLEAR_SCREEN + shown, flush=True)
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
