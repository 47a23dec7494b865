"""Shopify adapter: verifies webhooks, maps payloads, polls and acts through the Admin GraphQL API.

Registered through the ``register_adapters`` hook and the ``aftercare`` entry
point, exactly as a third-party adapter would be. See docs/adapters/shopify.md.
"""

from aftercare import hookimpl

from .adapter import ShopifyAdapter
from .settings import ShopifySettings

__all__ = ["ShopifyAdapter", "ShopifySettings", "register_adapters"]


@hookimpl
def register_adapters(register):
    register(ShopifyAdapter)
