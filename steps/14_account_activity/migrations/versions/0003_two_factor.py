"""Two-factor authentication: each account's TOTP secret, and its recovery codes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Only a schema change this time: the new columns are NULL for every
account that exists, which means two-factor off, as it was before. Each
owner turns it on when they choose; nobody is locked out by the upgrade.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # NULL: two-factor off. Text, as the encrypted secret has no fixed length.
    op.add_column("user", sa.Column("totp_secret", sa.Text(), nullable=True))
    # NULL: no code used yet.
    op.add_column("user", sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_code"),
    )


def downgrade():
    op.drop_table("recovery_codes")
    op.drop_column("user", "totp_last_step")
    op.drop_column("user", "totp_secret")
