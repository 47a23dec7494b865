"""A local plugin for the process tests: the in-memory platform, and an order-note
channel that appends one line per execution to $AFTERCARE_TEST_LOG (slowly if
$AFTERCARE_TEST_SLOW says so), so a test can count executions across processes."""

import os
import time

from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)


@hookimpl
def register_channels(register):
    register("add_order_note", append_to_log)


def append_to_log(action, app):
    time.sleep(float(os.environ.get("AFTERCARE_TEST_SLOW", "0")))
    with open(os.environ["AFTERCARE_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {action.idempotency_key}\n")
    return {}


@hookimpl
def on_order_paid(event, ctx):
    ctx.add_order_note(f"paid: {event.order.number}", key="paid")
    ctx.add_order_note(f"thanks sent: {event.order.number}", key="thanks")
