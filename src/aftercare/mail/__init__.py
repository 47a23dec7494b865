"""Email: the ``send_email`` channel, templates, transports, consent and unsubscribe."""
