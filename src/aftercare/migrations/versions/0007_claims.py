"""Claims with a lease on events and actions, event retries, and the workers' heartbeats.

An event is claimed (``pending`` -> ``dispatching``) before its hooks run, as
an action is (``due`` -> ``running``); both claims name their worker and end
at ``claimed_until``, which the worker renews while it holds them. An event
whose dispatch failed waits until ``retry_at`` and ends ``failed`` after a
limit. ``workers`` keeps each worker's last heartbeat for ``/healthz``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
#: The default claim lease: an action running when this revision is applied keeps the claim it had.
DEFAULT_LEASE = timedelta(seconds=600)


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("claimed_until", TS, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("retry_at", TS, nullable=True))
        batch.add_column(sa.Column("reason", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("claimed_until", TS, nullable=True))
    actions = sa.table("actions", sa.column("id"), sa.column("state"), sa.column("updated_at", TS),
                       sa.column("claimed_until", TS))  # fmt: skip
    conn = op.get_bind()
    running = conn.execute(sa.select(actions.c.id, actions.c.updated_at).where(actions.c.state == "running")).all()
    for action_id, updated_at in running:
        conn.execute(
            sa.update(actions).where(actions.c.id == action_id).values(claimed_until=updated_at + DEFAULT_LEASE)
        )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("beat_at", TS, nullable=False),
        sa.Column("progress_at", TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("events") as batch:
        for column in ("reason", "retry_at", "attempts", "claimed_until", "claimed_by"):
            batch.drop_column(column)
