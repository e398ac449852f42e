"""Candle sources: one class per kind of source behind a common base."""
