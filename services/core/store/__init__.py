"""Shared store access: reading market data, instruments, watermarks, bulk idempotent writes."""
