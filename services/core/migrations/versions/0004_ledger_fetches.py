"""Fetch ledger: count fetches of a window apart from the requests each fetch made."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fetch_ledger", sa.Column("fetches", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("fetch_ledger", "fetches")
