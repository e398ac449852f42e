"""Workers on two hosts (network namespaces) reaching Redis and Postgres only over veth links run one pipeline."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
import redis
from sqlalchemy import create_engine, text

from services.core.db import connection_budget
from tests.hosts.conftest import HOST_QUEUES, POOL, SYMBOLS, TOKEN, SpreadStack
from tests.utils.stack import http

pytestmark = pytest.mark.integration

STAGE_QUEUES = ("ingest", "indicators", "signals")


def _run(spread: SpreadStack, task: str, timeout: float = 180.0) -> dict:
    status, body = http("POST", f"{spread.api}/api/manual-update/?task={task}", token=TOKEN)
    assert status == 202, body
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, run = http("GET", f"{spread.api}/api/manual-update/?task_id={body['task_id']}")
        if status == 200 and run["ready"]:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {body['task_id']} not ready after {timeout}s; logs in {spread.logs}")


def _stage_tasks(redis_url: str) -> list[tuple[str, str]]:
    """(task name, worker) of every stage task with a stored result (result_extended names the worker)."""
    client = redis.Redis.from_url(redis_url)
    found = []
    for key in client.scan_iter("celery-task-meta-*"):
        meta = json.loads(client.get(key))
        if (meta.get("name") or "").split(".")[0] in STAGE_QUEUES:
            found.append((meta["name"], meta["worker"]))
    return found


def _connections_by_address(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("""
                SELECT host(client_addr), count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND client_addr IS NOT NULL GROUP BY 1""")).all()
    finally:
        engine.dispose()
    return dict(rows)


@pytest.fixture(scope="module")
def run(spread_stack):
    return _run(spread_stack, "all")


def test_netns_hosts_reach_the_servers_only_over_their_links(spread_stack):
    port = int(spread_stack.redis_url.rsplit(":", 1)[1].split("/")[0])
    for host in spread_stack.hosts:
        probe = ["ip", "netns", "exec", host.namespace, sys.executable, "-c",
                 "import socket, sys; s = socket.socket(); s.settimeout(2); "
                 "print(s.connect_ex((sys.argv[1], int(sys.argv[2]))))"]
        here = subprocess.run([*probe, "127.0.0.1", str(port)], capture_output=True, text=True, check=True)
        link = subprocess.run([*probe, host.gateway, str(port)], capture_output=True, text=True, check=True)
        assert here.stdout.strip() != "0", f"{host.name} reached Redis on its own loopback"
        assert link.stdout.strip() == "0", f"{host.name} cannot reach Redis on {host.gateway}"
    assert socket.gethostname() not in {host.name for host in spread_stack.hosts}


def test_netns_a_run_across_two_hosts_succeeds_with_every_candle_once(spread_stack, run):
    assert run["status"] == "SUCCESS", run
    stages = {(entry["instrument"], entry["stage"]): entry for entry in run["result"]}
    assert set(stages) == {(f"{s} 1h", stage) for s in SYMBOLS for stage in ("ohlc", "indicators", "signals")}
    assert all(entry["status"] == "ok" for entry in stages.values()), run["result"]
    assert all(stages[(f"{s} 1h", "ohlc")]["candles"] == 501 for s in SYMBOLS)  # 500 bars back + the open one
    engine = create_engine(spread_stack.database_url)
    with engine.connect() as conn:
        candles, distinct = conn.execute(text(
            "SELECT count(*), count(DISTINCT (instrument_id, timeframe, ts)) FROM candles")).one()
        indicators = conn.execute(text("SELECT count(*) FROM indicator_values")).scalar_one()
    engine.dispose()
    assert candles == distinct == len(SYMBOLS) * 501
    assert indicators == len(SYMBOLS) * 501


def test_netns_both_hosts_did_stage_work_and_each_stage_ran_where_its_queue_is(spread_stack, run):
    tasks = _stage_tasks(spread_stack.redis_url)
    assert {name.split(".")[0] for name, _ in tasks} == set(STAGE_QUEUES), tasks
    where = {(name.split(".")[0], worker.split("@")[1]) for name, worker in tasks}
    allowed = {(queue, host) for host, queues in HOST_QUEUES.items() for queue in queues}
    assert where <= allowed, f"a stage ran on a host that does not consume its queue: {where - allowed}"
    assert {host for _, host in where} == set(HOST_QUEUES), "both hosts did stage work"


def test_netns_each_host_reached_redis_and_postgres_from_its_own_address_within_its_budget(spread_stack, run):
    clients = redis.Redis.from_url(spread_stack.redis_url).client_list()
    redis_peers = {client["addr"].rsplit(":", 1)[0] for client in clients}
    connections = _connections_by_address(spread_stack.database_url)
    for host in spread_stack.hosts:
        assert host.address in redis_peers, f"no Redis client from {host.name} ({host.address})"
        assert connections.get(host.address, 0) >= 1, f"no Postgres connection from {host.name}: {connections}"
        # One pool process per worker (concurrency 1); the main processes hold no connection.
        budget = connection_budget(1, len(HOST_QUEUES[host.name]), int(POOL["DB_POOL_SIZE"]),
                                   int(POOL["DB_MAX_OVERFLOW"]))
        assert connections[host.address] <= budget, (host.name, connections)
