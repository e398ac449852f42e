"""The read-only Postgres role Grafana's Market dashboard connects as, brought up to date on every migrate."""

from __future__ import annotations

import logging
import sys

from psycopg2 import sql
from psycopg2.extensions import encrypt_password
from sqlalchemy import create_engine

from services.core.config import get_settings
from services.core.exceptions import ConfigurationError
from services.core.logging import configure_logging
from services.core.secrets import weakness

__all__ = ["READER_ROLE", "READER_SCHEMA", "READER_TABLES", "READER_SETTINGS", "reader_statements",
           "ensure_reader_role", "main"]

log = logging.getLogger(__name__)

READER_ROLE = "candleflow_reader"
READER_SCHEMA = "public"
# Exactly what the Market dashboard reads (monitoring/grafana/dashboards/candleflow-market.json);
# a table added to it must be added here, since nothing else is readable.
READER_TABLES = ("instruments", "candles", "indicator_values", "signals")
# Session defaults of the role: a dashboard query can neither write (even if a grant slipped in)
# nor hold the database for long.
READER_SETTINGS = {"default_transaction_read_only": "on", "statement_timeout": "30s"}
# Serialises concurrent migrate runs (a scaled or restarted service): CREATE ROLE is not
# transactional against another session's check-then-create. Any constant unique to this step.
_ADVISORY_LOCK = 0x63660001


def reader_statements(role: str, password_verifier: str, database: str, exists: bool,
                      schema: str = READER_SCHEMA, tables: tuple[str, ...] = READER_TABLES) -> list[sql.Composed]:
    """The statements that leave `role` able to log in and SELECT `tables`, and nothing more.

    Privileges are revoked before they are granted, so a table dropped from `tables` (or a grant
    made by hand) does not outlive the next migrate.
    """
    role_id, schema_id = sql.Identifier(role), sql.Identifier(schema)
    statements = [] if exists else [sql.SQL("CREATE ROLE {} LOGIN").format(role_id)]
    # The verifier, never the password: the plain text then appears in no server log.
    statements.append(sql.SQL("ALTER ROLE {} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD {}")
                      .format(role_id, sql.Literal(password_verifier)))
    statements += [sql.SQL("ALTER ROLE {} SET {} = {}").format(role_id, sql.Identifier(name), sql.Literal(value))
                   for name, value in READER_SETTINGS.items()]
    statements += [
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema_id, role_id),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema_id, role_id),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema_id, role_id),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role_id),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, role_id),
        sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier(schema, table) for table in tables), role_id),
    ]
    return statements


def ensure_reader_role(database_url: str, password: str, role: str = READER_ROLE) -> None:
    """Create `role` if missing and set its password and grants (idempotent, one transaction)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            dbapi = conn.connection.dbapi_connection
            with dbapi.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
                cursor.execute("SELECT current_database(), EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)",
                               (role,))
                database, exists = cursor.fetchone()
                # libpq's own hashing (as psql's \password does): SCRAM-SHA-256 with SASLprep.
                verifier = encrypt_password(password, role, dbapi, "scram-sha-256")
                for statement in reader_statements(role, verifier, database, exists):
                    cursor.execute(statement)
    finally:
        engine.dispose()
    log.info("%s role %s: SELECT on %s", "updated" if exists else "created", role, ", ".join(READER_TABLES))


def main() -> int:
    """`python -m services.core.reader_role`, run by compose/app/start-migrate after the schema upgrade."""
    try:
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)
        reason = weakness(settings.grafana_db_password)
        # Empty is refused everywhere: Postgres would store no password and Grafana could not log in.
        if reason is not None and (settings.environment not in ("dev", "test") or not settings.grafana_db_password):
            raise ConfigurationError(f"GRAFANA_DB_PASSWORD {reason} (use e.g. `openssl rand -hex 32`; "
                                     "see docs/security.md)")
        ensure_reader_role(settings.database_url, settings.grafana_db_password)
    except ConfigurationError as exc:
        print(f"reader role: {exc}", file=sys.stderr)
        return 2
    print(f"reader role {READER_ROLE} ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
