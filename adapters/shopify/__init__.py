"""Shopify adapter (in progress)."""
