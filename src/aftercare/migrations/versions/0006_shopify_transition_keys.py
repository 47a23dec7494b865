"""Shopify webhook events keyed by resource and transition, as polling keys them.

Until now a Shopify webhook event's dedupe key was the delivery's
X-Shopify-Event-Id, which every delivery of one merchant action shares (a
cancel with a refund lost its refund). New events are keyed like polling's
(``order:1:cancelled``, ``refund:9``); this rewrites the stored ones the same
way, so a retry of a delivery stored before the upgrade, or a poll of the same
change, is recognised. A row whose new key is already taken (the transition
was stored twice under two delivery keys, or once by polling) keeps its old
key: it is a duplicate already stored and dispatched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

events = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("shop_id", sa.String),
    sa.column("dedupe_key", sa.String),
    sa.column("source", sa.String),
    sa.column("body", sa.Text),
)


def transition_key(body: dict) -> str | None:
    """The key aftercare.adapters.shopify.keys gives this event now (spelled out here:
    a migration must not change when the adapter does)."""
    kind, order_id = body.get("kind"), (body.get("order") or {}).get("platform_id")
    subject = {"shipped": "shipment", "delivered": "shipment", "return_requested": "return_request",
               "refunded": "refund"}.get(kind)  # fmt: skip
    subject_id = (body.get(subject) or {}).get("platform_id") if subject else None
    if kind == "order_paid" and order_id:
        return f"order:{order_id}:paid"
    if kind == "order_cancelled" and order_id:
        return f"order:{order_id}:cancelled"
    if not subject_id:
        return None
    return {
        "shipped": f"fulfillment:{subject_id}:shipped",
        "delivered": f"fulfillment:{subject_id}:delivered",
        "return_requested": f"return:{subject_id}:requested",
        "refunded": f"refund:{subject_id}",
    }[kind]


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(events.c.id, events.c.shop_id, events.c.dedupe_key, events.c.body)
        .where(events.c.source == "webhook")
        .order_by(events.c.id)
    ).all()
    taken = {(shop_id, key) for shop_id, key in conn.execute(sa.select(events.c.shop_id, events.c.dedupe_key))}
    for row in rows:
        try:
            body = json.loads(row.body)
        except ValueError:
            continue
        if not isinstance(body, dict) or (body.get("order") or {}).get("platform") != "shopify":
            continue
        key = transition_key(body)
        if key is None or key == row.dedupe_key or (row.shop_id, key) in taken:
            continue
        body["dedupe_key"] = key
        conn.execute(
            sa.update(events).where(events.c.id == row.id).values(dedupe_key=key, body=json.dumps(body))
        )
        taken.discard((row.shop_id, row.dedupe_key))
        taken.add((row.shop_id, key))


def downgrade() -> None:
    # The Event-Ids the old keys were made of are not kept: the new keys stay (still unique).
    pass
