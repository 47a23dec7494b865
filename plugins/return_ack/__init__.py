"""Return acknowledgement: the customer asked to return items; say we have it and what happens next.

On ``on_return_requested`` the plugin sends a transactional mail (it goes
even to customers who unsubscribed from marketing) with the items being
returned, the reason given, the shop's return policy (text lines and a link
from the settings) and the next steps, and leaves a private note on the order
for the staff. Each return request is acknowledged once, however often the
platform reports it.

The incident is already in the customer's history: the core records every
event per customer. Set ``tag`` to also tag the customer on the platform
(to spot frequent returners, say).
"""

from __future__ import annotations

from pydantic import HttpUrl

from aftercare import hookimpl
from aftercare.models import Event, LineItem, Order, ReturnRequest
from aftercare.settings import LocalizedLines, PluginSettings

#: Every mail of this plugin is transactional (see aftercare.mail.brand).
MARKETING_MAIL = False

#: Lines of text by language (``{en = [...], es = [...]}``), or one list for every language.
Lines = LocalizedLines


class Settings(PluginSettings):
    enabled: bool = False
    template: str = "return_ack"
    #: The shop's return policy page, linked from the mail (leave out: no link).
    policy_url: HttpUrl | None = None
    #: The policy in a few lines (time limit, condition of the items, who pays the postage).
    policy_lines: Lines = []
    #: What happens next, one step a line; empty: the template's own general steps.
    next_steps: Lines = []
    #: A private note on the order for the staff.
    add_note: bool = True
    #: Tag the customer with this on every return request ("": no tag).
    tag: str = ""


# -- hooks ------------------------------------------------------------------------------


@hookimpl
def on_return_requested(event: Event, ctx) -> None:
    order = event.order
    request = event.return_request or (order.returns[-1] if order.returns else None)
    key = f"return:{request.platform_id}" if request else "return"
    items = _returned_lines(order, request)
    settings = ctx.settings
    context = {
        "return_id": request.platform_id if request else "",
        "reason": _reason(request),
        "items": [{"title": line.title, "quantity": line.quantity, "sku": line.sku} for line in items],
        "policy_url": str(settings.policy_url) if settings.policy_url else "",
        "policy_lines": _in_language(settings.policy_lines, ctx.locale, ctx.shop.locale),
        "next_steps": _in_language(settings.next_steps, ctx.locale, ctx.shop.locale),
    }
    ctx.send_email(settings.template, transactional=True, key=key, context=context)
    if settings.add_note:
        ctx.add_order_note(_note(request, items, order), key=key)
    if settings.tag.strip():
        ctx.tag_customer(settings.tag.strip(), key=f"{settings.tag.strip()}:{key}:order:{order.platform_id}")


# -- helpers ----------------------------------------------------------------------------


def _returned_lines(order: Order, request: ReturnRequest | None) -> list[LineItem]:
    """The lines the request names; all of them when it names none (a whole-order return)."""
    wanted = set(request.line_item_ids) if request else set()
    chosen = [line for line in order.lines if line.platform_id in wanted]
    return chosen or list(order.lines)


def _reason(request: ReturnRequest | None) -> str:
    """The platform's reason codes (``size_too_small, defective``; templates translate them), without
    Shopify's ``unknown``, which says nothing to the customer."""
    if request is None:
        return ""
    parts = [part.strip() for part in request.reason.split(",")]
    return ", ".join(part for part in parts if part and part.lower() != "unknown")


def _in_language(lines: Lines, *locales: str) -> list[str]:
    """``es-ES`` tries ``es-ES``, ``es_ES``, ``es``; then the shop's language; then ``en``; then any."""
    if isinstance(lines, list):
        return lines
    by_language = {key.replace("_", "-").lower(): value for key, value in lines.items()}
    for locale in (*locales, "en"):
        tag = locale.replace("_", "-").lower()
        for candidate in (tag, tag.split("-")[0]):
            if candidate in by_language:
                return by_language[candidate]
    return next(iter(by_language.values()), [])


def _note(request: ReturnRequest | None, items: list[LineItem], order: Order) -> str:
    what = ", ".join(f"{line.quantity} × {line.title}" for line in items) or "the order"
    reason = f" ({request.reason})" if request and request.reason else ""
    number = f" {request.platform_id}" if request else ""
    return (
        f"Return{number} requested{reason}: {what}. "
        f"Acknowledgement with the return policy emailed to {order.customer.email}."
    )
