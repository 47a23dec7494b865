"""Console login attempts and sessions, kept in the store.

``login_attempts`` counts attempts per user name and per client address in a
window, shared by every serve process (a count in memory was per process, and
bypassed by parallel requests). ``console_sessions`` holds each signed-in
session, so logging out (or removing the user) ends it on the server, not
only in the browser.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("window_start", TS, nullable=False),
    )
    op.create_index("ix_login_attempts_window_start", "login_attempts", ["window_start"])
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_index("ix_console_sessions_user_name", "console_sessions", ["user_name"])


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("login_attempts")
