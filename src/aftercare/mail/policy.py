"""Whether a mail may go now: suppression, consent, frequency cap, quiet hours.

Checked by the channel just before sending, in this order, each with the
reason it records: a bounced address gets nothing; an unsubscribed one gets
transactional mail only; marketing mail beyond the shop's frequency cap is
dropped; marketing mail due during the shop's quiet hours waits for the
morning (in the shop's time zone, on the app's clock).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from aftercare.actions import ActionDeferred, ActionDropped, ActionKind, ActionRecord, ActionState, ReasonCode
from aftercare.config.mail import MailSettings
from aftercare.mail.suppression import SuppressionReason, normalise, suppressions_for
from aftercare.models import ConsentState
from aftercare.store import actions

if TYPE_CHECKING:
    from aftercare.app import App


def check_send(app: App, action: ActionRecord, settings: MailSettings) -> None:
    """Raise :class:`ActionDropped` or :class:`ActionDeferred` if ``action`` must not be sent now."""
    to = normalise(action.payload["to"])
    transactional = bool(action.payload.get("transactional", False))
    for entry in suppressions_for(app, action.shop_id, to):
        if entry.reason is SuppressionReason.BOUNCED:
            raise ActionDropped(f"suppressed: bounced {to} ({entry.detail})", ReasonCode.SUPPRESSED)
        if not transactional:
            raise ActionDropped(f"suppressed: unsubscribed {to} ({entry.detail})", ReasonCode.SUPPRESSED)
    if transactional:
        return
    if app.store.current_consent(action.shop_id, to) is ConsentState.UNSUBSCRIBED:
        raise ActionDropped(f"suppressed: unsubscribed {to} (marketing consent withdrawn)", ReasonCode.NO_CONSENT)
    if settings.frequency_cap:
        since = app.now() - timedelta(days=settings.frequency_days)
        sent = marketing_sent(app, action.shop_id, action.customer_email or to, since, exclude=action.id)
        if sent >= settings.frequency_cap:
            raise ActionDropped(
                f"frequency cap: {sent} marketing emails to this customer in the last "
                f"{settings.frequency_days} days (at most {settings.frequency_cap})",
                ReasonCode.FREQUENCY_CAP,
            )
    timezone = app.shop(action.shop_id).profile.timezone
    until = quiet_until(app.now(), timezone, settings.quiet_hours_start, settings.quiet_hours_end)
    if until is not None:
        start, end = settings.quiet_hours_start, settings.quiet_hours_end
        raise ActionDeferred(
            until,
            f"quiet hours {start:%H:%M}-{end:%H:%M} {timezone}: waiting until {end:%H:%M} local time",
            ReasonCode.QUIET_HOURS,
        )


def marketing_sent(app: App, shop_id: str, customer_email: str, since: datetime, exclude: int = 0) -> int:
    """Marketing (non-transactional) mails sent to this customer since ``since``."""
    query = (
        sa.select(sa.func.count())
        .select_from(actions)
        .where(
            actions.c.shop_id == shop_id,
            actions.c.customer_email == normalise(customer_email),
            actions.c.kind == ActionKind.SEND_EMAIL.value,
            actions.c.state == ActionState.DONE.value,
            actions.c.updated_at >= since,
            actions.c.id != exclude,
            actions.c.payload["transactional"].as_boolean() == sa.false(),
        )
    )
    with app.store.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def quiet_until(now: datetime, timezone: str, start: time, end: time) -> datetime | None:
    """When quiet hours end if ``now`` falls in them (local times, spanning midnight or not), else None."""
    if start == end:
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    quiet = (start <= clock < end) if start < end else (clock >= start or clock < end)
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)
