"""The suppression list: addresses a shop must not mail, and why.

Two reasons put an address here. ``unsubscribed``: the customer used the
unsubscribe link; marketing mail stops, transactional mail (a tracking notice)
still goes out. ``bounced``: the receiving server refused the address for good
(a 5xx recipient error); nothing is sent to it any more, because mailing dead
addresses ruins the sender's reputation for every other customer.

Entries are per shop: in an agency deployment one client's list says nothing
about another's. The table lives on :data:`aftercare.store.metadata` and is
created by the migration ``0003``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from aftercare.store import UTCDateTime, insert_new, metadata

if TYPE_CHECKING:
    from aftercare.app import App


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


suppressions = sa.Table(
    "mail_suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("shop_id", "email", "reason", name="uq_mail_suppressions_shop_email_reason"),
)


@dataclass(frozen=True, slots=True)
class Suppression:
    email: str
    reason: SuppressionReason
    detail: str
    created_at: datetime


def normalise(email: str) -> str:
    return email.strip().lower()


def suppress(app: App, shop_id: str, email: str, reason: SuppressionReason, detail: str = "") -> bool:
    """Put ``email`` on the shop's list; False if it was already there for this reason."""
    row = {
        "shop_id": shop_id,
        "email": normalise(email),
        "reason": reason.value,
        "detail": detail,
        "created_at": app.now(),
    }
    with app.store.transaction() as conn:
        return bool(insert_new(conn, suppressions, [row], ("shop_id", "email", "reason")))


def lift(app: App, shop_id: str, email: str, reason: SuppressionReason) -> bool:
    """Take ``email`` off the list for ``reason`` (a confirmed new opt-in, a fixed mailbox)."""
    with app.store.transaction() as conn:
        deleted = conn.execute(
            sa.delete(suppressions).where(
                suppressions.c.shop_id == shop_id,
                suppressions.c.email == normalise(email),
                suppressions.c.reason == reason.value,
            )
        )
        return deleted.rowcount > 0


def suppressions_for(app: App, shop_id: str, email: str) -> list[Suppression]:
    query = (
        sa.select(suppressions)
        .where(suppressions.c.shop_id == shop_id, suppressions.c.email == normalise(email))
        .order_by(suppressions.c.id)
    )
    with app.store.engine.connect() as conn:
        return [
            Suppression(row.email, SuppressionReason(row.reason), row.detail, row.created_at)
            for row in conn.execute(query)
        ]
