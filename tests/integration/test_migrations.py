"""The Alembic migrations build exactly the schema the SQLAlchemy models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from services.core.migrate import upgrade_database
from services.core.models import Base

pytestmark = pytest.mark.integration


def test_models_and_migrations_agree(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def _head() -> str:
    from alembic.script import ScriptDirectory

    from services.core.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    assert head is not None and head >= "0005", "one head, and the newest migration is counted"
    return head


def test_migrating_an_up_to_date_database_again_is_a_no_op(database_url):
    upgrade_database(database_url)
    upgrade_database(database_url)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
    engine.dispose()
