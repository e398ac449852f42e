"""DATABASE_URL: whatever Postgres scheme a hosting service hands out connects through psycopg2."""

import pytest

from services.core.config import load_settings
from services.core.exceptions import ConfigurationError


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2", "POSTGRESQL"])
def test_every_postgres_scheme_is_normalised_to_the_psycopg2_driver(monkeypatch, scheme):
    monkeypatch.setenv("DATABASE_URL", f"{scheme}://user:p%40ss@db.example:6543/market?sslmode=require")
    assert load_settings().database_url == "postgresql+psycopg2://user:p%40ss@db.example:6543/market?sslmode=require"


def test_the_normalised_url_loads_the_psycopg2_dialect_not_psycopg_3(monkeypatch):
    from sqlalchemy.engine import make_url

    monkeypatch.setenv("DATABASE_URL", "postgresql://candleflow@localhost/candleflow")
    assert make_url(load_settings().database_url).get_dialect().driver == "psycopg2"


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg", "pg8000"])
def test_another_driver_is_refused_with_the_scheme_to_use_instead(monkeypatch, driver):
    monkeypatch.setenv("DATABASE_URL", f"postgresql+{driver}://candleflow@localhost/candleflow")
    with pytest.raises(ConfigurationError, match=rf"DATABASE_URL.*driver '{driver}'.*postgresql\+psycopg2://"):
        load_settings()


@pytest.mark.parametrize("url", ["mysql://x@localhost/db", "localhost:5432/candleflow", "postgresqlx://x"])
def test_a_url_that_is_not_postgres_is_refused(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigurationError, match=r"DATABASE_URL.*must be a postgresql:// URL"):
        load_settings()
