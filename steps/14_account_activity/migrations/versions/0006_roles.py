"""Roles, and what the admin area shows and does: when an account was disabled, when it last logged in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

New columns that may be empty, and a new table: every account logs in as
before, none is disabled, and nobody is an admin until the operator says
so (`flask roles grant USERNAME admin`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("user", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("user", sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_roles_user_name"),
    )


def downgrade():
    op.drop_table("roles")
    op.drop_column("user", "last_login_at")
    op.drop_column("user", "disabled_at")
