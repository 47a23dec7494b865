"""The platform's webhook subscriptions for a shop (``aftercare webhooks register|list|remove``).

A shop needs the topics of the event kinds its enabled plugins handle (a
plugin implementing ``on_shipped`` needs the platform's "shipped" topics),
pointing at ``public_url + /webhooks/SHOP_ID``. Only platform kinds count:
survey answers and opt-ins come from aftercare's own pages. Registering is
idempotent (the adapter keeps subscriptions that exist), and ``remove``
deletes only the subscriptions pointing at this deployment, never another
app's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aftercare.models import EventKind
from aftercare.platform import WebhookSubscription

if TYPE_CHECKING:
    from aftercare.app import App


def webhook_address(app: App, shop_id: str) -> str:
    return f"{app.config.public_url.rstrip('/')}/webhooks/{shop_id}"


def needed_kinds(app: App, shop_id: str) -> list[EventKind]:
    """The platform event kinds whose hooks the shop's enabled plugins implement."""
    shop = app.shop(shop_id)
    hooks = {hook for name in shop.enabled_plugins() for hook in app.plugins.info(name).hooks}
    return [kind for kind in EventKind if kind.hook in hooks and kind in shop.adapter_class.topics]


def needed_topics(app: App, shop_id: str) -> list[str]:
    topics = app.shop(shop_id).adapter_class.topics
    return sorted({topic for kind in needed_kinds(app, shop_id) for topic in topics[kind]})


def _rows(subscriptions: list[WebhookSubscription], address: str) -> list[dict[str, Any]]:
    return [
        {
            "id": s.platform_id,
            "topic": s.topic,
            "address": s.address,
            "ours": s.address == address,
            "status": s.status,
            "failure_count": s.failure_count,
        }
        for s in sorted(subscriptions, key=lambda s: (s.topic, s.address))
    ]


def register_subscriptions(app: App, shop_id: str) -> dict[str, Any]:
    """Subscribe the topics the shop's enabled plugins need (idempotent)."""
    address = webhook_address(app, shop_id)
    adapter = app.adapter(shop_id)
    before = adapter.list_webhooks()
    registered = adapter.register_webhooks(address, needed_kinds(app, shop_id))
    known = {s.platform_id for s in before}
    created = [s for s in registered if s.platform_id not in known]
    # A new subscription where one of ours stood: it replaced a disabled or paused one.
    replaced = [s for s in created if any((b.topic, b.address) == (s.topic, s.address) for b in before)]
    summary = (
        f"{shop_id}: {len(created)} created"
        + (f" ({len(replaced)} replacing disabled or paused ones)" if replaced else "")
        + f", {len(registered) - len(created)} already there -> {address}"
    )
    # Privacy topics no API subscribes (Shopify's compliance webhooks): the app's configuration names them.
    compliance = sorted(getattr(adapter, "compliance_topics", {}))
    if compliance:
        summary += (f"\n{shop_id}: {', '.join(compliance)} are not subscribed through the API: give {address} as"
                    " the compliance webhooks URL in the app's configuration (docs/adapters/shopify.md)")
    return {"shop": shop_id, "address": address, "created": len(created), "replaced": len(replaced),
            "subscriptions": _rows(registered, address), "compliance_topics": compliance,
            "summary": summary}  # fmt: skip


def list_subscriptions(app: App, shop_id: str) -> dict[str, Any]:
    """The shop's subscriptions, and the topics its plugins need that are missing."""
    address = webhook_address(app, shop_id)
    found = app.adapter(shop_id).list_webhooks()
    missing = sorted(set(needed_topics(app, shop_id)) - {s.topic for s in found if s.address == address})
    summary = f"{shop_id}: {len(found)} subscription(s); missing: {', '.join(missing) or 'none'}"
    return {"shop": shop_id, "address": address, "missing": missing, "subscriptions": _rows(found, address),
            "summary": summary}  # fmt: skip


def remove_subscriptions(app: App, shop_id: str) -> dict[str, Any]:
    """Delete the shop's subscriptions that point at this deployment (others are left alone)."""
    address = webhook_address(app, shop_id)
    removed = app.adapter(shop_id).remove_webhooks(address)
    return {"shop": shop_id, "address": address, "removed": removed, "summary": f"{shop_id}: {removed} removed"}
