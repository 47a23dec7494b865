"""The newsletter_optin plugin (in progress)."""
