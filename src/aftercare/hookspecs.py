"""Hook specifications: the reference for everyone who writes a plugin.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose
names are the ones below. pluggy passes arguments by name, so an
implementation may accept only the arguments it needs::

    from aftercare import hookimpl

    @hookimpl
    def on_delivered(event, ctx):
        ctx.later(days=7).send_email("review_request", key="review")

Post-sale hooks get ``(event, ctx)``:

``event``
    an :class:`aftercare.models.Event`: its ``kind``, the ``order`` as the
    platform last reported it, the ``shipment``, ``return_request`` or
    ``refund`` it is about (and for a carrier's problem report the
    ``exception``), and when it ``occurred_at``.
``ctx``
    an :class:`aftercare.context.Context` bound to this plugin and the event's
    shop: ``ctx.settings`` (this plugin's settings for the shop), ``ctx.now()``
    and the action requests (``send_email``, ``create_coupon``,
    ``add_order_note``, ``tag_customer``, ``tag_order``,
    ``set_marketing_consent``, ``later``, ``cancel``).

A hook sends nothing itself: it asks ``ctx`` for actions, which the core
stores with an idempotency key and executes afterwards (or only records, in a
dry run). A hook that raises is recorded as failed for this plugin and event;
the other plugins still run, and ``aftercare`` can retry it alone.

A plugin declares its settings as a pydantic model named ``Settings`` (a
subclass of :class:`aftercare.settings.PluginSettings`) at module level; the
merchant tunes it under ``[plugins.<name>]`` and per shop under
``[shops.plugins.<name>]``.
"""

from __future__ import annotations

from aftercare import hookspec

# -- post-sale hooks ----------------------------------------------------------


@hookspec
def on_order_paid(event, ctx):
    """The order is paid (Shopify ``orders/paid``; WooCommerce ``date_paid`` set
    or status processing/completed). Fires once per order.

    Typical use: a thank-you note, a coupon for the next purchase, a usage tip
    scheduled for later.
    """


@hookspec
def on_shipped(event, ctx):
    """A parcel left: ``event.shipment`` has carrier, tracking number and URL.

    Fires once per shipment, so an order shipped in two parcels gives two
    calls. Typical use: a tracking notice (transactional).
    """


@hookspec
def on_delivered(event, ctx):
    """The platform or the carrier reports ``event.shipment`` delivered.

    Not every shop gets carrier events: a plugin that needs delivery also
    schedules a fallback from ``on_shipped`` ("14 days after shipping") and,
    here, requests the same key with ``ctx.later(days=7, reschedule=True)``:
    a fallback still due moves to the new time, one that already went out
    stays done, so the customer gets one mail either way.
    """


@hookspec
def on_return_requested(event, ctx):
    """The customer asked to return items: ``event.return_request`` says which
    and why. Typical use: an acknowledgement (transactional) and cancelling
    review requests still due for the order.
    """


@hookspec
def on_order_cancelled(event, ctx):
    """The order was cancelled. Delayed actions of the order are re-checked
    when they fire and dropped anyway; use this to cancel them early or to
    say sorry.
    """


@hookspec
def on_refunded(event, ctx):
    """Money went back to the customer: ``event.refund`` has the amount.
    Full or partial; check ``event.order.financial_status`` for which.
    """


@hookspec
def on_shipment_exception(event, ctx):
    """The carrier reports a problem with ``event.shipment``, or that it waits to
    be collected: ``event.exception`` has the ``problem`` (a
    :class:`aftercare.models.ShipmentProblem`: ``attempted_delivery``,
    ``delayed``, ``failure``, ``exception``, ``on_hold``, ``return_to_sender``,
    ``ready_for_pickup``), when it ``happened_at``, the carrier's ``message``
    and, when the platform gives it, the ``location`` where the parcel is (for
    ``ready_for_pickup``: where to collect it).

    Shopify: a fulfillment event (``fulfillment_events/create``) with one of
    those statuses; WooCommerce: a tracking plugin's carrier state in the
    order's meta (TrackShip). Fires once per parcel and problem, so a delay
    followed by a failed attempt gives two calls, and the same problem reported
    twice gives one. Typical use: a transactional notice at once saying what
    happened and what to do, a note for the staff, an apology coupon.
    """


# -- customer hooks (from aftercare's own pages) --------------------------------


@hookspec
def on_survey_answered(event, ctx):
    """The customer confirmed an answer on a survey page (links made with
    ``ctx.survey_link``): ``event.answer`` has the kind (csat, nps, ces), the
    score, any comment and the purpose (``order``, or ``relationship`` for a
    survey about the shop as a whole, kept apart from the order's own). Fires when an order's answer of a kind is first
    given, and again when it changes (another score, or a comment added on the
    thank-you page), with the answer as it now is; the same answer confirmed
    twice fires once. Key the actions you ask (a follow-up note once per order
    and kind), and a change adds only what is new. Typical use: a note and a
    tag for follow-up on a low score, a staff alert, a coupon as thanks.
    """


@hookspec
def on_optin_confirmed(event, ctx):
    """The customer confirmed a newsletter invitation (a link made with
    ``ctx.optin_link``); the consent is already recorded with time and source.
    ``event.order`` is the order whose mail carried the invitation. Typical
    use: ``ctx.set_marketing_consent(...)`` to tell the platform, a welcome
    coupon.
    """


# -- registration hooks -------------------------------------------------------


@hookspec
def register_adapters(register):
    """Add shop platforms. Call ``register(AdapterClass)`` for each; the class
    subclasses :class:`aftercare.platform.Adapter` and names its ``platform``
    (``"shopify"``), the value of ``platform`` in a shop's config.
    """


@hookspec
def register_channels(register):
    """Add ways to execute actions. Call ``register(kind, executor)`` where
    ``kind`` is an action kind (``"send_email"``) and ``executor`` a callable
    ``executor(job) -> dict`` that performs one action and returns what to keep
    as its result. ``job`` (:class:`~aftercare.actions.ActionJob`) carries the
    :class:`~aftercare.actions.ActionRecord` (``job.action``), the app
    (``job.app``), and what the dispatcher loads for it at most once, only if
    read: ``job.order`` (the order as the event that caused the action carried
    it) and ``job.mail_settings`` (the shop's merged ``[mail]``). An executor
    written the earlier way, ``executor(action, app)``, is still called so for
    one more release. It raises :class:`aftercare.platform.PlatformError` on failure
    (transient ones are retried with backoff),
    :class:`aftercare.actions.ActionDeferred` to run later without counting a
    failure (quiet hours), or :class:`aftercare.actions.ActionDropped` to drop
    it with a reason (a suppressed address). The last registration of a kind
    wins, so a plugin can replace the built-in mailer.

    A message channel may pass ``refuses=check``: ``check(job)`` returns the
    :class:`~aftercare.actions.ActionDropped` the channel would raise for good
    if it ran the action now (suppression, consent, frequency cap), or None
    (it would send, or only defer); it sends and changes nothing. Before a
    coupon is made, the dispatcher asks it about each message waiting for the
    coupon, and drops the coupon when every one would be refused. A channel
    registered without it is never asked.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``aftercare`` CLI. ``cli`` is the click group."""
