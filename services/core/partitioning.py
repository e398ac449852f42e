"""Candle partitions as values: the span one partition covers (CANDLE_PARTITION_INTERVAL) and CANDLE_RETENTION."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from services.core.timeframe import Timeframe

__all__ = ["INTERVALS", "PartitionInterval", "parse_interval", "parse_retention", "Span", "gaps"]

_CLIP = 40


@dataclass(frozen=True)
class PartitionInterval:
    """A calendar span in UTC: `months` months, or `days` days aligned to a Monday, as Postgres' date_trunc
    aligns them (`unit`), so a floor computed here and one computed in SQL name the same partition."""

    unit: str
    months: int = 0
    days: int = 0

    def floor(self, instant: datetime) -> datetime:
        """The start of the span holding `instant`."""
        day = instant.astimezone(UTC).date()
        if self.months:
            month0 = (day.year * 12 + day.month - 1) // self.months * self.months
            start = date(month0 // 12, month0 % 12 + 1, 1)
        else:
            start = day - timedelta(days=(day - _A_MONDAY).days % self.days)
        return datetime(start.year, start.month, start.day, tzinfo=UTC)

    def after(self, start: datetime) -> datetime:
        """The start of the span after the one starting at `start` (a floor)."""
        if self.months:
            month0 = start.year * 12 + start.month - 1 + self.months
            return datetime(month0 // 12, month0 % 12 + 1, 1, tzinfo=UTC)
        return start + timedelta(days=self.days)


_A_MONDAY = date(2001, 1, 1)  # weeks start on Monday, as date_trunc('week') and ISO say
# The spans a partition may cover, by the name CANDLE_PARTITION_INTERVAL takes (Postgres' date_trunc units).
INTERVALS = {interval.unit: interval for interval in (
    PartitionInterval("day", days=1),
    PartitionInterval("week", days=7),
    PartitionInterval("month", months=1),
    PartitionInterval("quarter", months=3),
    PartitionInterval("year", months=12),
)}


def parse_interval(text: str) -> PartitionInterval:
    """The interval CANDLE_PARTITION_INTERVAL names; ValueError lists the names it takes."""
    try:
        return INTERVALS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown partition interval {text[:_CLIP]!r}: use one of {', '.join(INTERVALS)}") from None


_RETENTION_RE = re.compile(r"([1-9][0-9]{0,5})d")


def parse_retention(text: str) -> dict[str, timedelta]:
    """CANDLE_RETENTION ("1m=90d,5m=365d") as timeframe → how long its bars are kept; empty keeps everything."""
    kept: dict[str, timedelta] = {}
    for clause in (part.strip() for part in text.split(",")):
        if not clause:
            continue
        timeframe, sep, days = (part.strip() for part in clause.partition("="))
        if not sep:
            raise ValueError(f"{clause[:_CLIP]!r} is not timeframe=days (e.g. 1m=90d)")
        Timeframe.parse(timeframe)  # its ValueError names the malformed timeframe
        match = _RETENTION_RE.fullmatch(days)
        if not match:
            raise ValueError(f"{timeframe} keeps {days[:_CLIP]!r}: give whole days from 1d to 999999d, e.g. 90d")
        if timeframe in kept:
            raise ValueError(f"{timeframe} is given twice")
        kept[timeframe] = timedelta(days=int(match.group(1)))
    return kept


@dataclass(frozen=True, order=True)
class Span:
    """[start, end) of one range partition."""

    start: datetime
    end: datetime


def gaps(wanted: list[Span], existing: list[Span]) -> list[Span]:
    """The parts of `wanted` no existing span covers, in order: what to create without overlapping
    partitions made under another interval (CANDLE_PARTITION_INTERVAL changed) or by hand."""
    missing = []
    for span in sorted(set(wanted)):
        start = span.start
        for held in sorted(existing):
            if held.end <= start or held.start >= span.end:
                continue
            if held.start > start:
                missing.append(Span(start, held.start))
            start = max(start, held.end)
            if start >= span.end:
                break
        if start < span.end:
            missing.append(Span(start, span.end))
    return missing
