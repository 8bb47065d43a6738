"""Users and sessions: the schema steps 06 and 07 made with db.create_all().

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Written by hand, not by `flask db migrate`: on SQLite, autogenerate skips
an index on an expression such as lower(username) (with a warning), so a
migration generated there would leave out the very indexes that keep
names and addresses unique. (On PostgreSQL it writes them.)

A database from step 06 or 07 already holds these tables, made by
create_all(), but no alembic_version: each table is made only if it is
missing, so such a database upgrades in place, keeping its users.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    existing = sa.inspect(op.get_bind()).get_table_names()
    if "user" not in existing:
        op.create_table(
            "user",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("username", sa.String(length=32), nullable=False),
            sa.Column("email", sa.String(length=254), nullable=False),
            sa.Column("password_hash", sa.String(length=60), nullable=False),
            sa.Column("session_version", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        # Unique without regard to letter case: an index on lower(...).
        op.create_index("uq_user_username", "user", [sa.text("lower(username)")], unique=True)
        op.create_index("uq_user_email", "user", [sa.text("lower(email)")], unique=True)
    if "sessions" not in existing:
        op.create_table(
            "sessions",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("session_id", sa.String(length=255), nullable=False),
            sa.Column("data", sa.LargeBinary(), nullable=True),
            sa.Column("expiry", sa.DateTime(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("session_id"),
        )


def downgrade():
    op.drop_table("sessions")
    op.drop_index("uq_user_email", table_name="user")
    op.drop_index("uq_user_username", table_name="user")
    op.drop_table("user")
