"""The review_request plugin (in progress)."""
