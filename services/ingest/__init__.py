"""Ingest worker: fetch candles from exchanges, validate, store."""
