"""Postgres out of connections: the read routes answer 503 saying the database is unavailable, and serve again
once connections are free; the process does not crash."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.integration.api.rows import add_candles, add_instrument
from tests.utils.connections import fill_connections

pytestmark = pytest.mark.integration


def _take_every_connection(engine, database_url: str) -> list:
    """Open connections until the server refuses one (its max_connections, less the superuser reserve)."""
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    with engine.connect() as conn:
        limit = int(conn.execute(text("SHOW max_connections")).scalar_one())
    engine.dispose()  # the app's pool must open a new connection, as after a restart
    return fill_connections(dsn, most=limit + 1)  # a superuser may take the reserved slots too


def test_a_full_database_gives_503_on_reads_and_the_routes_recover(client, engine, database_url):
    add_candles(engine, add_instrument(engine), 3)
    held = _take_every_connection(engine, database_url)
    try:
        refused = client.get("/api/candles?symbol=BTC/USD")
        assert refused.status_code == 503, refused.get_json()
        assert refused.get_json()["message"] == "the database is unavailable; try again shortly"
    finally:
        for connection in held:
            connection.close()
    served = client.get("/api/candles?symbol=BTC/USD")
    assert served.status_code == 200 and served.get_json()["count"] == 3
