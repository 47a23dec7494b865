"""aftercare: after-sales automation for Shopify and WooCommerce shops.

Kept deliberately small: plugins import ``hookimpl`` from here, and importing
this package must not pull in the store, the queue or the receiver.
"""

import pluggy

__version__ = "0.1.0"

PROJECT = "aftercare"

hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["PROJECT", "__version__", "hookimpl", "hookspec"]
