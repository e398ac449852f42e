"""RabbitMQ queue depth two ways: a passive declare per queue (what the exporter and `candleflow status` do)
against the management API's /api/queues, per read: client wall time and the broker's own CPU.

Starts its own RabbitMQ node (Debian's rabbitmq-server, management plugin on), declares the four
candleflow queues as the app does (classic, x-max-priority 9), fills `ingest` with --messages
messages, then times --reads reads each way. It also publishes one message and reads both at
once, to show how fresh each figure is (the management API serves statistics sampled every
collect_statistics_interval, 5 s by default), and declares a quorum queue with x-max-priority to
record whether this RabbitMQ version accepts per-message priority on quorum queues.

    .venv/bin/python bench/broker_depth.py [--messages 10000] [--reads 200] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kombu import Connection, Exchange, Producer

from services.core.brokers import queue_depths_amqp
from services.core.celery_app import QUEUES, task_queues
from tests.brokers.servers import rabbitmq_server

__all__ = ["main"]


def _management_depths(base_url: str) -> dict[str, int]:
    request = urllib.request.Request(f"{base_url}/api/queues/%2F?columns=name,messages_ready",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {queue["name"]: queue.get("messages_ready", 0) for queue in json.load(response)}


def _timed(read, node, reads: int) -> dict:
    walls = []
    cpu_before = node.cpu_seconds()
    for _ in range(reads):
        started = time.perf_counter()
        read()
        walls.append(time.perf_counter() - started)
    return {"median_ms": round(statistics.median(walls) * 1000, 3),
            "p95_ms": round(sorted(walls)[int(0.95 * len(walls)) - 1] * 1000, 3),
            "broker_cpu_ms_per_read": round((node.cpu_seconds() - cpu_before) / reads * 1000, 3)}


def _quorum_priority(connection: Connection) -> str:
    try:
        connection.channel().queue_declare("bench-quorum", durable=True, auto_delete=False,
                                           arguments={"x-queue-type": "quorum", "x-max-priority": 9})
        return "accepted"
    except Exception as exc:
        return f"refused: {exc}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with rabbitmq_server(management=True) as node, Connection(node.url) as connection:
        for queue in task_queues(node.url):
            queue(connection.default_channel).declare()
        producer = Producer(connection.default_channel, exchange=Exchange("ingest"), routing_key="ingest")
        for n in range(args.messages):
            producer.publish({"n": n}, priority=n % 10)
        time.sleep(6)  # one statistics interval, so the management API has caught up before timing
        queues = list(QUEUES)
        figures = {"messages": args.messages, "reads": args.reads,
                   "passive_declare": _timed(lambda: queue_depths_amqp(connection, queues), node, args.reads),
                   "management_api": _timed(lambda: _management_depths(node.management_url), node, args.reads)}
        producer.publish({"n": "fresh"})
        # Publishes and declares travel on different channels, which RabbitMQ does not order: a
        # moment for the publish to land, far under the statistics interval.
        time.sleep(0.5)
        figures["right_after_one_more_publish"] = {
            "passive_declare": queue_depths_amqp(connection, ["ingest"])["ingest"][0],
            "management_api": _management_depths(node.management_url)["ingest"]}
        figures["quorum_queue_with_x_max_priority"] = _quorum_priority(connection)
        figures["rabbitmq"] = connection.default_channel.connection.server_properties.get("version")
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return figures


if __name__ == "__main__":
    main()
