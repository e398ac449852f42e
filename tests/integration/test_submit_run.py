"""submit_run against a real Redis that takes the run's lock and refuses the queued record's write (what a
Redis at its maxmemory did in fault scenario 7): the call fails, and neither the lock nor a record is left."""

from __future__ import annotations

import pytest
import redis

from services.core import keys
from services.core.celery_app import app
from services.core.pipeline.runs import RunRequest, submit_run

pytestmark = pytest.mark.integration

USER, PASSWORD = "lock-only", "lock-only-secret"


@pytest.fixture()
def lock_only_client(redis_url):
    """A client allowed every command on the run locks, and only GET and DEL on run records: the lock's
    SET passes, the record's SET is refused (NOPERM) and its clean-up may still delete it."""
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", USER, "reset", "on", f">{PASSWORD}", "+@all",
                          f"~{keys.RUN_LOCK_PATTERN}", f"(~{keys.run_record('*')} +get +del)")
    limited = redis.Redis.from_url(redis_url, username=USER, password=PASSWORD)
    yield admin, limited
    limited.close()
    admin.execute_command("ACL", "DELUSER", USER)


def test_a_refused_record_write_leaves_no_lock_and_the_same_run_can_be_asked_again(lock_only_client):
    admin, limited = lock_only_client
    request = RunRequest("ohlc", symbol="BTC/USD")
    admin.delete(request.dedup_key())
    with pytest.raises(redis.exceptions.NoPermissionError):
        submit_run(app, limited, request)
    assert admin.get(request.dedup_key()) is None  # a lock left here would call the next ask a duplicate
    assert not list(admin.scan_iter(keys.run_record("*")))
    # The lock was taken before the refusal: the same client can take it again now.
    assert limited.set(request.dedup_key(), "next", nx=True)
