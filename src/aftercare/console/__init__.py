"""The console: web pages where merchants and agencies see, explain and steer what aftercare does.

Served by the ASGI app (:mod:`aftercare.asgi`) under ``/console`` when ``[console]
enabled = true`` (``docs/console.md``). Everything it shows is read from the
store and the config, the same records the CLI and the report read.

Its ``[console]`` settings model is :mod:`aftercare.config.console`, beside the
config that validates it.
"""
