"""The return_ack plugin (in progress)."""
