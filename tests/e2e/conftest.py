"""Shared pieces of the end-to-end tests: a deployment around one clock, and a way to let hours pass."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from aftercare.sandbox.deployment import Deployment, deployment, read_mail
from aftercare.sandbox.testing import FAST_RETRIES


@pytest.fixture
def deploy(tmp_path):
    """``deploy(shop_id=platform, ...)``: a running deployment of those shops, stopped at teardown."""
    with_stack = []

    def start(shops, **options):
        options.setdefault("sandbox_options", {sid: {"retry_delays": FAST_RETRIES} for sid, p in shops.items()
                                               if p == "shopify"})  # fmt: skip
        context = deployment(tmp_path / "deployment", shops=shops, **options)
        running = context.__enter__()
        with_stack.append(context)
        return running

    yield start
    for context in reversed(with_stack):
        context.__exit__(None, None, None)


def hours(running: Deployment, count: int) -> None:
    """Let ``count`` hours pass one by one, as the demo does, settling after each."""
    for _ in range(count):
        running.advance(timedelta(hours=1))


def mail_keys(running: Deployment) -> Counter[str]:
    """Each .eml file's idempotency key: a key seen twice is a mail sent twice."""
    return Counter(read_mail(path).key for path in sorted(running.outbox.glob("*.eml")))
