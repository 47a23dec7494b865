"""The usage_tips plugin (in progress)."""
