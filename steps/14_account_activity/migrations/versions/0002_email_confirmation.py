"""Email confirmation: when each account's address was confirmed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

A schema change and a data change in one migration. The new column is
empty (NULL, not confirmed) for every row; but the accounts that exist
already were made when signing up needed no confirmation, and their
owners must still be able to log in. So the migration also marks each of
them confirmed, at the time of the upgrade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The table as this migration sees it, not the app's model: the model
# changes in later steps, and a migration must do the same thing forever.
user = sa.table("user", sa.column("confirmed_at", sa.DateTime(timezone=True)))


def upgrade():
    # Nullable: NULL is "not confirmed yet", for sign-ups from now on.
    op.add_column("user", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    # Every account made before this step counts as confirmed.
    op.execute(user.update().values(confirmed_at=sa.func.current_timestamp()))


def downgrade():
    op.drop_column("user", "confirmed_at")
