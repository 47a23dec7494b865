"""Built-in shop adapters, installed as ``aftercare.adapters``.

Each registers through the ``register_adapters`` hook and the ``aftercare``
entry-point group, exactly as a third-party adapter would.
"""
