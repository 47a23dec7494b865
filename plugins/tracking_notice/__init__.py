"""The tracking_notice plugin (in progress)."""
