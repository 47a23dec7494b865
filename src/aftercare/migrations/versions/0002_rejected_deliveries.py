"""Keep signed deliveries the adapter could not read, raw, for inspection.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejected_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("shop_id", "delivery_id", name="uq_rejected_deliveries_shop_delivery"),
    )


def downgrade() -> None:
    op.drop_table("rejected_deliveries")
