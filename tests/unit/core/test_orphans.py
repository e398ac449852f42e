"""Which held messages a dead worker left: judged from their holders and the workers that answered."""

from __future__ import annotations

from services.core.pipeline.orphans import SAME_START_S, holdings, orphaned

NOW = 1_000_000.0
HELD = {"tag-a": "run.0.ohlc", "tag-b": "run.1.ohlc"}
HOLDERS = {"run.0.ohlc": ("ingest@a", 7, 5_000.0), "run.1.ohlc": ("ingest@b", 7, 6_000.0)}


def test_a_message_whose_holder_answers_as_the_same_process_stays_held():
    alive = {"ingest@a": (7, 5_000.0 + SAME_START_S), "ingest@b": (7, 6_000.0 - 1)}
    assert orphaned(HELD, HOLDERS, alive, {}, NOW, grace_s=0) == ([], {})


def test_a_missing_worker_makes_its_messages_suspects_first_and_hands_them_back_after_the_grace():
    alive = {"ingest@b": (7, 6_000.0)}
    restore, suspects = orphaned(HELD, HOLDERS, alive, {}, NOW, grace_s=45)
    assert (restore, suspects) == ([], {"tag-a": NOW})
    assert orphaned(HELD, HOLDERS, alive, suspects, NOW + 44, grace_s=45) == ([], {"tag-a": NOW})
    assert orphaned(HELD, HOLDERS, alive, suspects, NOW + 45, grace_s=45) == (["tag-a"], {})


def test_a_restarted_worker_under_the_same_name_and_pid_is_a_new_process():
    alive = {"ingest@a": (7, 5_000.0 + 3600), "ingest@b": (8, 6_000.0)}  # a: restarted; b: another pid
    assert orphaned(HELD, HOLDERS, alive, {}, NOW, grace_s=0)[0] == ["tag-a", "tag-b"]


def test_a_worker_back_before_the_grace_clears_the_suspicion():
    alive = {"ingest@a": (7, 5_000.0), "ingest@b": (7, 6_000.0)}
    assert orphaned(HELD, HOLDERS, alive, {"tag-a": NOW - 30}, NOW, grace_s=45) == ([], {})


def test_a_message_without_a_recorded_holder_is_left_alone_without_every_workers_list():
    alive = {"ingest@a": (7, 5_000.0), "ingest@b": (7, 6_000.0)}
    assert orphaned({"tag-x": "other"}, HOLDERS, alive, {}, NOW, grace_s=0) == ([], {})
    assert orphaned({"tag-x": "other"}, HOLDERS, alive, {}, NOW, grace_s=0, holding={"ingest@a": set()}) == ([], {})


def test_a_message_without_a_recorded_holder_that_a_worker_lists_stays_held():
    alive = {"ingest@a": (7, 5_000.0)}
    assert orphaned({"tag-x": "other"}, HOLDERS, alive, {}, NOW, grace_s=0, holding={"ingest@a": {"other"}}) == ([], {})


def test_a_message_without_a_recorded_holder_that_no_worker_lists_is_handed_back_after_the_grace():
    # The worker died between kombu filing the delivery and recording its holder.
    alive = {"ingest@a": (7, 5_000.0), "ingest@b": (7, 6_000.0)}
    holding = {"ingest@a": {"run.0.ohlc"}, "ingest@b": {"run.1.ohlc"}}
    held = {**HELD, "tag-x": "other"}
    restore, suspects = orphaned(held, HOLDERS, alive, {}, NOW, grace_s=45, holding=holding)
    assert (restore, suspects) == ([], {"tag-x": NOW})
    assert orphaned(held, HOLDERS, alive, suspects, NOW + 45, grace_s=45, holding=holding) == (["tag-x"], {})


def test_a_message_its_live_holder_no_longer_lists_is_a_suspect_and_handed_back_after_the_grace():
    alive = {"ingest@a": (7, 5_000.0), "ingest@b": (7, 6_000.0)}
    holding = {"ingest@a": set(), "ingest@b": {"run.1.ohlc"}}  # a forgot run.0.ohlc across a reconnect
    restore, suspects = orphaned(HELD, HOLDERS, alive, {}, NOW, grace_s=45, holding=holding)
    assert (restore, suspects) == ([], {"tag-a": NOW})
    assert orphaned(HELD, HOLDERS, alive, suspects, NOW + 45, grace_s=45, holding=holding) == (["tag-a"], {})


def test_a_worker_that_did_not_list_its_tasks_is_not_judged_to_have_forgotten_any():
    alive = {"ingest@a": (7, 5_000.0), "ingest@b": (7, 6_000.0)}
    assert orphaned(HELD, HOLDERS, alive, {}, NOW, grace_s=0, holding={"ingest@b": set()}) == (["tag-b"], {})


def test_holdings_joins_active_reserved_and_scheduled_of_the_workers_that_answered_all_three():
    active = {"ingest@a": [{"id": "t1"}], "ingest@b": [], "ingest@c": [{"id": "t9"}]}
    reserved = {"ingest@a": [{"id": "t2"}], "ingest@b": [{"id": "t3"}], "ingest@c": []}
    scheduled = {"ingest@a": [{"eta": "2024-03-01T00:00:00", "priority": 4, "request": {"id": "t4"}}], "ingest@b": []}
    assert holdings([active, reserved, scheduled]) == {"ingest@a": {"t1", "t2", "t4"}, "ingest@b": {"t3"}}
    assert holdings([active, None, scheduled]) == {}  # nobody answered `reserved`: no evidence at all
