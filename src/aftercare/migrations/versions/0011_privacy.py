"""Privacy: erasures recorded without the person, and the platforms' privacy requests.

``erasures`` keeps, per shop ("" for every shop), a keyed hash (HMAC-SHA256
under a key derived from ``secret_key``) of an erased customer's normalised
email, so a later webhook or sync about them is recognised and dropped at
ingest. ``privacy_requests`` keeps Shopify's compliance webhooks
(``customers/redact``, ``customers/data_request``, ``shop/redact``) until the
worker has done them; a done request keeps no email.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("erased_at", TS, nullable=False),
        sa.UniqueConstraint("shop_id", "email_hash", name="uq_erasures_shop_hash"),
    )
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("delivery_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.UniqueConstraint("shop_id", "delivery_id", name="uq_privacy_requests_shop_delivery"),
    )
    op.create_index("ix_privacy_requests_state", "privacy_requests", ["state"])


def downgrade() -> None:
    op.drop_index("ix_privacy_requests_state", table_name="privacy_requests")
    op.drop_table("privacy_requests")
    op.drop_table("erasures")
