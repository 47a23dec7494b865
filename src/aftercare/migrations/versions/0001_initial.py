"""The first schema: inbox, hook runs, outbox, consent, customer history, adapter state, cursors.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False, server_default=""),
        sa.Column("source", sa.String(32), nullable=False, server_default="webhook"),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("shop_id", "dedupe_key", name="uq_events_shop_dedupe"),
    )
    op.create_index("ix_events_shop_order", "events", ["shop_id", "order_id"])
    op.create_index("ix_events_state", "events", ["state"])

    op.create_table(
        "hook_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("actions_requested", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duration_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("ran_at", TS, nullable=False),
    )
    op.create_index("ix_hook_runs_event", "hook_runs", ["event_id"])

    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(512), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("customer_email", sa.String(320), nullable=False, server_default=""),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("rechecks", sa.String(128), nullable=False, server_default=""),
        sa.Column("depends_on", sa.String(512), nullable=False, server_default=""),
        sa.Column("hook", sa.String(64), nullable=False, server_default=""),
        sa.Column("event_key", sa.String(255), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_actions_state_due", "actions", ["state", "due_at"])
    op.create_index("ix_actions_shop_order", "actions", ["shop_id", "order_id"])
    op.create_index("ix_actions_customer", "actions", ["shop_id", "customer_email"])

    op.create_table(
        "consent",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_index("ix_consent_shop_email", "consent", ["shop_id", "email"])

    op.create_table(
        "customer_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("event_kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
    )
    op.create_index("ix_customer_history_shop_email", "customer_history", ["shop_id", "email"])

    op.create_table(
        "adapter_state",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.JSON, nullable=True),
    )
    op.create_table(
        "cursors",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("cursors", "adapter_state", "customer_history", "consent", "actions", "hook_runs", "events"):
        op.drop_table(table)
