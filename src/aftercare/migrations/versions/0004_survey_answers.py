"""Survey answers confirmed on the customer pages: one per shop, order and survey kind.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shop_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("answered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("shop_id", "order_id", "kind", name="uq_survey_answers_shop_order_kind"),
    )
    op.create_index("ix_survey_answers_shop_answered", "survey_answers", ["shop_id", "answered_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_answers_shop_answered", table_name="survey_answers")
    op.drop_table("survey_answers")
