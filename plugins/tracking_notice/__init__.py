"""Tracking notices: a mail per parcel when it ships, and an optional one when it arrives.

``on_shipped`` sends the transactional mail ``shipped`` with the carrier, the
tracking number and a tracking link: the platform's own URL when it gives
one, else the carrier's tracking page built from ``carrier_urls`` (UPS, USPS,
FedEx, DHL, GLS, DPD, Correos, SEUR, MRW, Speedy, Econt and others are built
in; add or override any in TOML). Each parcel of an order gets its own notice
(the action key names the shipment), and a repeated webhook adds nothing.

``on_delivered`` sends ``delivered`` ("your parcel has arrived") when
``delivered_notice = true``, also once per parcel.
"""

from __future__ import annotations

import re
from string import Formatter
from urllib.parse import quote

from pydantic import Field, field_validator

from aftercare import hookimpl
from aftercare.models import Event, Order, Shipment
from aftercare.settings import PluginSettings

#: Every mail of this plugin is transactional (see aftercare.mail.brand).
MARKETING_MAIL = False

#: Public tracking pages, by carrier. Names are compared word by word, without
#: case or punctuation, and the longest name whose words start the platform's
#: carrier name wins ("DHL Express" -> ``dhl``, "Correos Express" -> ``correos
#: express``, "Upsilon" -> nothing).
CARRIER_URLS: dict[str, str] = {
    "ups": "https://www.ups.com/track?tracknum={tracking_number}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={tracking_number}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={tracking_number}",
    "dhl": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={tracking_number}&submit=1",
    "dhl ecommerce": "https://webtrack.dhlecs.com/?trackingnumber={tracking_number}",
    "gls": "https://gls-group.com/track/{tracking_number}",
    "dpd": "https://tracking.dpd.de/status/en_US/parcel/{tracking_number}",
    "tnt": "https://www.tnt.com/express/en_gc/site/shipping-tools/tracking.html?searchType=con&cons={tracking_number}",
    "royal mail": "https://www.royalmail.com/track-your-item#/tracking-results/{tracking_number}",
    "canada post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={tracking_number}",
    "correos": "https://www.correos.es/es/es/herramientas/localizador/envios/detalle?tracking-number={tracking_number}",
    "correos express": "https://s.correosexpress.com/c?n={tracking_number}",
    "seur": "https://www.seur.com/livetracking/?segOnlineIdentificador={tracking_number}",
    "mrw": "https://www.mrw.es/seguimiento_envios/MRW_resultados_consultas.asp?modo=nacional&envio={tracking_number}",
    "nacex": "https://www.nacex.es/seguimientoDetalle.do?agencia_origen=&numero_albaran={tracking_number}",
    "speedy": "https://www.speedy.bg/bg/track-shipment?shipmentNumber={tracking_number}",
    "econt": "https://www.econt.com/services/track-shipment/{tracking_number}",
    "bulgarian posts": "https://www.bgpost.bg/IPSWebTracking/IPSWeb_item_events.asp?itemid={tracking_number}",
}

_PLACEHOLDERS = {"tracking_number"}


class Settings(PluginSettings):
    enabled: bool = False
    #: Also send ``delivered`` when the platform or carrier reports a parcel delivered.
    delivered_notice: bool = False
    #: Carrier name -> tracking page with ``{tracking_number}``; added to (and
    #: overriding) the built-in :data:`CARRIER_URLS`. Used only when the platform
    #: gives no tracking URL of its own.
    carrier_urls: dict[str, str] = {}
    #: Also text the parcel's tracking link (template ``shipped.sms``), where the shop has
    #: turned texts on (``[mail.sms]``); transactional, to the order's phone.
    sms: bool = False
    #: Up to this many products the shop relates to the parcel's (Shopify's complementary
    #: products, WooCommerce's cross-sells and upsells) in the delivered notice, read when it
    #: is sent and shown only to customers who opted in to marketing mail; 0: none.
    complementary_products: int = Field(0, ge=0, le=6)

    @field_validator("carrier_urls")
    @classmethod
    def _templates_name_the_tracking_number(cls, value: dict[str, str]) -> dict[str, str]:
        for carrier, template in value.items():
            fields = {name for _text, name, _spec, _conv in Formatter().parse(template) if name is not None}
            if fields != _PLACEHOLDERS or not template.startswith(("https://", "http://")):
                raise ValueError(
                    f"carrier_urls[{carrier!r}] must be an http(s) URL with exactly the placeholder "
                    f"{{tracking_number}}, got {template!r}"
                )
        return value


@hookimpl
def on_shipped(event, ctx):
    shipment = event.shipment
    if shipment is None:
        return
    parcel = _parcel(event, shipment, ctx.settings)
    ctx.send_email("shipped", transactional=True, key=f"shipped:{shipment.platform_id}", context=parcel)
    if ctx.settings.sms:
        ctx.send_sms("shipped", transactional=True, key=f"shipped:{shipment.platform_id}", context=parcel)


@hookimpl
def on_delivered(event, ctx):
    shipment = event.shipment
    if shipment is None or not ctx.settings.delivered_notice:
        return
    context = _parcel(event, shipment, ctx.settings)
    if ctx.settings.complementary_products:
        lines = shipment.line_item_ids or [line.platform_id for line in event.order.lines]
        context["complementary_products"] = ctx.complementary_products(ctx.settings.complementary_products, lines=lines)
    ctx.send_email("delivered", transactional=True, key=f"delivered:{shipment.platform_id}", context=context)


# -- helpers -------------------------------------------------------------------------


def tracking_url(shipment: Shipment, carrier_urls: dict[str, str] | None = None) -> str:
    """The platform's tracking URL, else the carrier's page for the number, else ''."""
    if shipment.tracking_url:
        return shipment.tracking_url
    if not (shipment.carrier and shipment.tracking_number):
        return ""
    templates = {_words(name): url for name, url in {**CARRIER_URLS, **(carrier_urls or {})}.items()}
    carrier = _words(shipment.carrier)
    matches = [name for name in templates if name and carrier[: len(name)] == name]
    if not matches:
        return ""
    return templates[max(matches, key=len)].format(tracking_number=quote(shipment.tracking_number.strip(), safe=""))


def _parcel(event: Event, shipment: Shipment, settings: Settings) -> dict:
    """The mail's variables: this parcel, what is in it, and where it is."""
    return {
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "tracking_url": tracking_url(shipment, settings.carrier_urls),
        "shipped_at": shipment.shipped_at.isoformat() if shipment.shipped_at else None,
        "delivered_at": shipment.delivered_at.isoformat() if shipment.delivered_at else None,
        "items": _items(event.order, shipment),
    }


def _items(order: Order, shipment: Shipment) -> list[dict]:
    """The lines in this parcel (all of the order's when the platform does not say)."""
    ids = set(shipment.line_item_ids)
    lines = [line for line in order.lines if line.platform_id in ids] or list(order.lines)
    return [{"title": line.title, "quantity": line.quantity} for line in lines]


def _words(name: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", name.lower()))
