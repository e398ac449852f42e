"""Taking a Postgres server's every connection slot, as a flood of clients would (faults scenario 8)."""

from __future__ import annotations

import psycopg2

__all__ = ["fill_connections"]


def fill_connections(dsn: str, held: list | None = None, most: int = 1000) -> list:
    """Open connections (added to `held`) until the server refuses one: its max_connections, less the
    superuser reserve. All closed again, and an AssertionError, if it takes `most` and more."""
    held = [] if held is None else held
    try:
        for _ in range(most):
            held.append(psycopg2.connect(dsn))
    except psycopg2.OperationalError as exc:
        assert "too many clients" in str(exc) or "remaining connection slots" in str(exc), exc
        return held
    for connection in held:
        connection.close()
    raise AssertionError(f"the server took {most} connections")
