"""Sent marks: an action whose channel did its work, before its record says so.

A relay's acceptance of a mail is written to ``sent_marks`` (by the action's
idempotency key, with the Message-ID) in its own transaction the moment the
channel returns; the transaction that records the action done deletes it. A
run of the action that finds its mark (the record was what failed: a dropped
connection, a database away for longer than the retries) records it done
without calling the channel again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_marks",
        sa.Column("idempotency_key", sa.String(512), primary_key=True),
        sa.Column("message_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sent_marks")
