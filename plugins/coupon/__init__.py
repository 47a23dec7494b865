"""The coupon plugin (in progress)."""
