"""The warranty_reminder plugin (in progress)."""
