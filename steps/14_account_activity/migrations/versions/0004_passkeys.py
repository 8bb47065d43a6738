"""Passkeys: each user's WebAuthn user handle, and their passkeys' public keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

A schema change only: every existing account has no passkey (and no
handle, made with its first passkey), and logs in as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    # NULL: no passkey yet (the handle is made with the first one).
    op.add_column("user", sa.Column("webauthn_id", sa.LargeBinary(length=64), nullable=True))
    op.create_table(
        "passkeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(length=1023), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id", name="uq_passkeys_credential_id"),
    )


def downgrade():
    op.drop_table("passkeys")
    op.drop_column("user", "webauthn_id")
