"""Run priority: the operator's 0-9 scale (9 most urgent) and kombu Redis's reversed numbers."""

from __future__ import annotations

import pytest

from services.core.celery_app import app
from services.core.priority import DEFAULT_PRIORITY, PRIORITY_STEPS, broker_priority, check_priority


def test_the_most_urgent_run_gets_the_number_kombu_redis_pops_first():
    assert broker_priority(9) == 0
    assert broker_priority(0) == 9
    assert sorted(broker_priority(p) for p in range(10)) == PRIORITY_STEPS


@pytest.mark.parametrize("value", [-1, 10, "5", 5.0, True, None])
def test_anything_but_an_integer_from_0_to_9_is_refused_with_the_range(value):
    with pytest.raises(ValueError, match="from 0 to 9"):
        check_priority(value)


def test_every_level_has_its_own_list_and_unprioritised_messages_wait_like_a_default_run():
    transport = app.conf.broker_transport_options
    assert transport["priority_steps"] == list(range(10))
    assert transport["queue_order_strategy"] == "priority"
    assert app.conf.task_default_priority == broker_priority(DEFAULT_PRIORITY)
