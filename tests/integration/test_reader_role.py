"""The dashboard's reader role on a real Postgres: logs in with its password, reads its tables, changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.core.reader_role import READER_ROLE, READER_TABLES, ensure_reader_role, main

pytestmark = pytest.mark.integration

PASSWORD = "r3ader-pass'word\"; DROP ROLE candleflow; --"  # quotes and SQL: must arrive as one literal
READER_HBA = f"host all {READER_ROLE} 127.0.0.1/32 scram-sha-256\n"


@pytest.fixture(scope="module")
def password_login(database_url) -> Iterator[None]:
    """The suite's server trusts every login; the reader must give its password, as it does in compose."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        hba = Path(conn.execute(text("SHOW hba_file")).scalar_one())
        original = hba.read_text()
        hba.write_text(READER_HBA + original)  # first match wins: the reader's line before `trust`
        conn.execute(text("SELECT pg_reload_conf()"))
    yield
    with engine.connect() as conn:
        hba.write_text(original)
        conn.execute(text("SELECT pg_reload_conf()"))
    engine.dispose()


def reader_connection(database_url: str, password: str = PASSWORD):
    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, dbname=url.database, user=READER_ROLE, password=password)
    conn.autocommit = True
    return conn


def run(conn, statement: str) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(statement)
        return cursor.fetchall() if cursor.description else []


def drop_reader(engine) -> None:
    """No reader role, so the next step creates it (the role outlives the suite's per-test truncation)."""
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": READER_ROLE}).first():
            conn.execute(text(f"DROP OWNED BY {READER_ROLE}"))
            conn.execute(text(f"DROP ROLE {READER_ROLE}"))


@pytest.fixture()
def reader(engine, database_url, password_login):
    """The role made by the migrate step, logged in with its password, over a database with one instrument."""
    drop_reader(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO instruments (exchange, symbol, timeframes) "
                          "VALUES ('binance', 'BTC/USD', '{1h}')"))
    ensure_reader_role(database_url, PASSWORD)
    conn = reader_connection(database_url)
    yield conn
    conn.close()


@pytest.mark.parametrize("table", READER_TABLES)
def test_the_reader_selects_each_dashboard_table_seeing_what_the_owner_sees(reader, engine, table):
    query = f"SELECT count(*) FROM {table}"
    with engine.connect() as conn:
        owner_count = conn.execute(text(query)).scalar_one()

    assert run(reader, query) == [(owner_count,)]


def test_the_reader_sees_the_rows(reader):
    assert run(reader, "SELECT exchange, symbol FROM instruments") == [("binance", "BTC/USD")]


@pytest.mark.parametrize("statement", [
    "INSERT INTO instruments (exchange, symbol, timeframes) VALUES ('x', 'A/B', '{1h}')",
    "UPDATE instruments SET active = false",
    "DELETE FROM signals",
    "TRUNCATE candles",
    "CREATE TABLE public.scratch (id int)",
    "CREATE TEMP TABLE scratch (id int)",
    "SELECT * FROM pipeline_runs",
    "SELECT * FROM fetch_ledger",
])
def test_the_reader_may_not_write_create_or_read_other_tables(reader, statement):
    with pytest.raises(psycopg2.Error) as refused:
        run(reader, statement)
    # Refused for want of a privilege, or by the read-only session default: never a syntax slip.
    assert refused.value.pgcode in ("42501", "25006"), refused.value


def test_writes_are_refused_by_privilege_even_outside_a_read_only_session(reader):
    run(reader, "SET default_transaction_read_only = off")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run(reader, "INSERT INTO instruments (exchange, symbol, timeframes) VALUES ('x', 'A/B', '{1h}')")


def test_the_role_has_no_attributes_beyond_login_and_its_session_defaults(reader, engine):
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconfig "
            "FROM pg_roles WHERE rolname = :role"), {"role": READER_ROLE}).one()
    assert tuple(row[:6]) == (True, False, False, False, False, False)
    assert sorted(row.rolconfig) == ["default_transaction_read_only=on", "statement_timeout=30s"]


def test_a_wrong_password_is_refused(reader, database_url):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        reader_connection(database_url, password="not-the-password")


def test_running_it_again_is_fine_and_takes_a_new_password(reader, database_url, engine):
    ensure_reader_role(database_url, PASSWORD)
    ensure_reader_role(database_url, "second-password-7a1c9e")

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        reader_connection(database_url)
    second = reader_connection(database_url, "second-password-7a1c9e")
    assert run(second, "SELECT count(*) FROM instruments") == [(1,)]
    second.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname IN (:r, 'candleflow')"),
                            {"r": READER_ROLE}).scalar_one() == 2


def test_a_grant_made_by_hand_does_not_outlive_the_next_migrate(reader, database_url, engine):
    with engine.begin() as conn:
        conn.execute(text(f"GRANT SELECT, INSERT ON pipeline_runs TO {READER_ROLE}"))
    ensure_reader_role(database_url, PASSWORD)

    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        run(reader, "SELECT * FROM pipeline_runs")


def test_production_refuses_a_placeholder_password_naming_the_variable(monkeypatch, server_settings, capsys):
    from services.core import config

    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("GRAFANA_DB_PASSWORD", "CHANGE_ME")
    config.get_settings.cache_clear()

    assert main() == 2
    assert "GRAFANA_DB_PASSWORD is a placeholder" in capsys.readouterr().err


def test_the_command_creates_the_role_from_the_settings(monkeypatch, server_settings, engine, database_url,
                                                        password_login, capsys):
    from services.core import config

    drop_reader(engine)
    monkeypatch.setenv("GRAFANA_DB_PASSWORD", "from-the-environment-42b7")
    config.get_settings.cache_clear()

    assert main() == 0
    assert f"reader role {READER_ROLE} ready" in capsys.readouterr().out
    conn = reader_connection(database_url, "from-the-environment-42b7")
    assert run(conn, "SELECT count(*) FROM candles") == [(0,)]
    conn.close()


def test_an_empty_password_is_refused_even_in_development(monkeypatch, server_settings, capsys):
    from services.core import config

    monkeypatch.setenv("GRAFANA_DB_PASSWORD", "")
    config.get_settings.cache_clear()

    assert main() == 2
    assert "GRAFANA_DB_PASSWORD is not set" in capsys.readouterr().err
