"""A local plugin for the browser tests: the in-memory platform, and an order-note channel that
appends one line per execution to $AFTERCARE_TEST_LOG, or fails while the file $AFTERCARE_TEST_FAIL
exists (a relay that says no), so a test can fail an action, retry it, and count executions."""

import os
from pathlib import Path

from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)


@hookimpl
def register_channels(register):
    register("add_order_note", append_to_log)


def append_to_log(action, app):
    if Path(os.environ["AFTERCARE_TEST_FAIL"]).exists():
        raise RuntimeError("550 relay said no: mailbox unavailable")
    with open(os.environ["AFTERCARE_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {action.idempotency_key}\n")
    return {}


@hookimpl
def on_order_paid(event, ctx):
    ctx.add_order_note(f"paid: {event.order.number}", key="paid")
