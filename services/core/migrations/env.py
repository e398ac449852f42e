"""Alembic environment: runs migrations against the configured database."""

from alembic import context
from sqlalchemy import create_engine, pool

from services.core.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Upgrade inside one transaction on a dedicated connection."""
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
