"""WooCommerce adapter (in progress)."""
