"""WooCommerce adapter: REST v3 webhooks, polling and actions for one shop.

Registered through the ``register_adapters`` hook, as a third-party adapter
would be. See docs/adapters/woocommerce.md for the shop settings.
"""

from aftercare import hookimpl

from .adapter import WooCommerceAdapter
from .settings import WooCommerceSettings


@hookimpl
def register_adapters(register):
    register(WooCommerceAdapter)


__all__ = ["WooCommerceAdapter", "WooCommerceSettings", "register_adapters"]
