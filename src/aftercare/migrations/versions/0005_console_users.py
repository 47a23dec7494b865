"""Console accounts, and the indexes the console's pages read through.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

INDEXES = (
    ("ix_events_shop_received", "events", ["shop_id", "received_at"]),
    ("ix_events_shop_topic_received", "events", ["shop_id", "topic", "received_at"]),
    ("ix_actions_shop_state_id", "actions", ["shop_id", "state", "id"]),
    ("ix_actions_state_id", "actions", ["state", "id"]),
)


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("shops", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("name", name="uq_console_users_name"),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("console_users")
