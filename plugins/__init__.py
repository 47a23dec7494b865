"""Built-in plugins, installed as ``aftercare.plugins``.

Each is an ordinary pluggy plugin registered through the ``aftercare``
entry-point group and using only the public plugin API.
"""
