"""Window planning covers a range exactly, in bar-aligned pieces within the exchange limit."""

from services.core.timeframe import Timeframe
from services.ingest.windows import align_down, expected_bars, is_closed, plan_windows

H = 3_600_000
HOURLY = Timeframe.parse("1h")


def test_windows_cover_the_range_without_gaps_or_overlap():
    windows = plan_windows(0, 2500 * H, HOURLY, 1000)
    assert windows == [(0, 1000 * H), (1000 * H, 2000 * H), (2000 * H, 2500 * H)]


def test_an_unaligned_since_starts_at_the_next_whole_bar():
    assert plan_windows(H + 5, 3 * H, HOURLY, 10) == [(2 * H, 3 * H)]


def test_an_empty_range_gives_no_windows():
    assert plan_windows(5 * H, 5 * H, HOURLY, 10) == []


def test_expected_bars_stop_at_the_bar_containing_now():
    assert expected_bars(0, 10 * H, HOURLY, now_ms=3 * H + 1) == 4
    assert expected_bars(0, 10 * H, HOURLY, now_ms=100 * H) == 10
    assert expected_bars(5 * H, 10 * H, HOURLY, now_ms=H) == 0


def test_a_bar_closes_when_the_clock_reaches_its_end():
    assert not is_closed(0, HOURLY, H - 1)
    assert is_closed(0, HOURLY, H)


def test_a_timestamp_aligns_down_to_the_open_of_its_bar():
    assert align_down(3 * H + 59 * 60_000, HOURLY) == 3 * H
    assert align_down(3 * H, HOURLY) == 3 * H
    assert align_down(3 * H + 1, Timeframe.parse("15m")) == 3 * H
