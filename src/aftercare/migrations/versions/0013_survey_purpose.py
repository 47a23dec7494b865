"""Survey answers get a purpose: an order, or the customer's relationship with the shop.

``survey_answers.purpose``: ``order`` (about one order) or ``relationship`` (the periodic survey of
satisfaction_survey's ``every_months``), kept apart, so an order's own NPS answer and the
relationship NPS asked through the same order are two rows. Rows written before are ``order``.

Downgrading deletes the relationship answers: the older schema holds one answer per order and
kind, and has no way to tell them from the order's.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("survey_answers") as batch:
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False, server_default="order"))
        batch.drop_constraint("uq_survey_answers_shop_order_kind", type_="unique")
        batch.create_unique_constraint(
            "uq_survey_answers_shop_order_kind_purpose", ["shop_id", "order_id", "kind", "purpose"]
        )


def downgrade() -> None:
    answers = sa.table("survey_answers", sa.column("purpose"))
    op.get_bind().execute(sa.delete(answers).where(answers.c.purpose != "order"))
    with op.batch_alter_table("survey_answers") as batch:
        batch.drop_constraint("uq_survey_answers_shop_order_kind_purpose", type_="unique")
        batch.create_unique_constraint("uq_survey_answers_shop_order_kind", ["shop_id", "order_id", "kind"])
        batch.drop_column("purpose")
