"""Sandbox shops: a local Shopify and WooCommerce that the real adapters talk to.

Each is an HTTP server on 127.0.0.1 that speaks the part of the platform's API
the adapters use, keeps its state in memory, and sends the platform's webhooks
(topics, headers, signatures, payload shapes, retry rules). Tests, the demo
and ``aftercare sandbox`` use them instead of a real shop; :class:`TwilioSandbox`
stands in for Twilio's Messages API where texts go. See docs/sandbox.md.
"""

from __future__ import annotations

from .base import Item, SandboxShop
from .shopify import ShopifySandbox
from .state import MoveError, UnknownRecord
from .twilio import TwilioSandbox
from .woocommerce import WooCommerceSandbox

SHOPS: dict[str, type[SandboxShop]] = {"shopify": ShopifySandbox, "woocommerce": WooCommerceSandbox}

__all__ = [
    "SHOPS",
    "Item",
    "MoveError",
    "SandboxShop",
    "ShopifySandbox",
    "TwilioSandbox",
    "UnknownRecord",
    "WooCommerceSandbox",
]
