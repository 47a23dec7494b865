"""Whether a mail may go now: suppression, consent, frequency cap, minimum gap, quiet hours.

Checked by the channel just before sending, in this order, each with the
reason it records: a bounced address gets nothing; an unsubscribed one gets
transactional mail only; marketing mail beyond the shop's frequency cap is
dropped; marketing mail due less than ``min_gap_hours`` after the customer's
last marketing mail waits until the gap is over (deferred, not dropped: a
survey, an opt-in invitation and a reward coupon that fall due in the same
hour go out hours apart instead of together); marketing mail due during the
shop's quiet hours waits for the morning (in the shop's time zone, on the
app's clock). Transactional mail neither waits for the gap nor counts for it.

The suppression list (the store's ``mail_suppressions``, per shop: in an
agency deployment one client's list says nothing about another's) holds two
reasons. ``unsubscribed``: the customer used the unsubscribe link
(:meth:`aftercare.store.Store.record_unsubscribe` records it with their
consent); marketing mail stops, transactional mail (a tracking notice) still
goes out. ``bounced``: the receiving server refused the address for good (a
5xx recipient error); nothing is sent to it any more, because mailing dead
addresses ruins the sender's reputation for every other customer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aftercare.actions import ActionDeferred, ActionDropped, ActionRecord, ReasonCode
from aftercare.config.mail import MailSettings
from aftercare.models import ConsentState, normalise_email
from aftercare.store import SuppressionReason

if TYPE_CHECKING:
    from aftercare.app import App


def check_send(app: App, action: ActionRecord, settings: MailSettings) -> None:
    """Raise :class:`ActionDropped` or :class:`ActionDeferred` if ``action`` must not be sent now."""
    to = normalise_email(action.payload["to"])
    transactional = bool(action.payload.get("transactional", False))
    for entry in app.store.suppressions(action.shop_id, to):
        if entry.reason is SuppressionReason.BOUNCED:
            raise ActionDropped(f"suppressed: bounced {to} ({entry.detail})", ReasonCode.SUPPRESSED)
        if not transactional:
            raise ActionDropped(f"suppressed: unsubscribed {to} ({entry.detail})", ReasonCode.SUPPRESSED)
    if transactional:
        return
    if app.store.current_consent(action.shop_id, to) is ConsentState.UNSUBSCRIBED:
        raise ActionDropped(f"suppressed: unsubscribed {to} (marketing consent withdrawn)", ReasonCode.NO_CONSENT)
    check_pace(app, action, settings, customer=action.customer_email or to)


def check_pace(app: App, action: ActionRecord, settings: MailSettings, *, customer: str) -> None:
    """The shop's frequency cap, minimum gap and quiet hours for a marketing message of any channel
    (a mail, a text): :class:`ActionDropped` past the cap, :class:`ActionDeferred` within the gap
    after the customer's last marketing message or during quiet hours."""
    if settings.frequency_cap:
        since = app.now() - timedelta(days=settings.frequency_days)
        sent = app.store.marketing_mails_sent(action.shop_id, customer, since, exclude=action.id)
        if sent >= settings.frequency_cap:
            raise ActionDropped(
                f"frequency cap: {sent} marketing messages to this customer in the last "
                f"{settings.frequency_days} days (at most {settings.frequency_cap})",
                ReasonCode.FREQUENCY_CAP,
            )
    if settings.min_gap_hours:
        gap = timedelta(hours=settings.min_gap_hours)
        last = app.store.last_marketing_message_at(action.shop_id, customer, before_id=action.id)
        if last is not None and app.now() < last + gap:
            raise ActionDeferred(
                last + gap,
                f"minimum gap: the last marketing message to this customer went at {last:%Y-%m-%d %H:%M} UTC; "
                f"waiting {settings.min_gap_hours:g} h after it",
                ReasonCode.MIN_GAP,
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


def refused_for_good(check: Callable[[], object]) -> ActionDropped | None:
    """The drop ``check()`` raises, or None when it passes or only defers the message (the minimum gap,
    quiet hours: it still goes, later). A channel's ``refuses`` (hookspecs ``register_channels``)."""
    try:
        check()
    except ActionDeferred:
        return None
    except ActionDropped as refusal:
        return refusal
    return None


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
