from aftercare.sandbox.testing import sandbox_shopify, sandbox_woocommerce, webhook_receiver  # noqa: F401
