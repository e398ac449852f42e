"""The worker's `pool_memory` command: /proc status parsed to bytes, children that vanished left out."""

import pytest

from services.core.pool_memory import pool_children, process_memory, read_children

STATUS = "Name:\tcelery\nVmPeak:\t  900000 kB\nVmHWM:\t  350000 kB\nVmRSS:\t  301234 kB\nThreads:\t9\n"


def test_the_resident_set_and_its_peak_are_read_in_bytes():
    assert process_memory(STATUS) == {"rss_bytes": 301234 * 1024, "peak_rss_bytes": 350000 * 1024}


def test_a_unit_other_than_kb_is_an_error_not_a_wrong_number():
    with pytest.raises(ValueError, match="VmRSS in 'MB'"):
        process_memory("VmRSS:\t 12 MB\n")


def test_each_listed_child_is_read_and_one_gone_since_is_left_out(tmp_path):
    (tmp_path / "41").mkdir()
    (tmp_path / "41" / "status").write_text(STATUS)
    assert read_children([(0, 41), (1, 42)], proc=tmp_path) == [
        {"index": 0, "pid": 41, "rss_bytes": 301234 * 1024, "peak_rss_bytes": 350000 * 1024}]


def test_a_pool_without_child_processes_has_no_children():
    class ThreadsPool:
        _pool = None

    assert pool_children(ThreadsPool()) == []
