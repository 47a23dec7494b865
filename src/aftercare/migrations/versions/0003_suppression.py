"""The mail suppression list: unsubscribed and bounced addresses per shop.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mail_suppressions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("shop_id", "email", "reason", name="uq_mail_suppressions_shop_email_reason"),
    )


def downgrade() -> None:
    op.drop_table("mail_suppressions")
