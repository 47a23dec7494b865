"""Polling sync: ask a shop for orders changed since its cursor.

The adapter derives the same events webhooks give, with the same dedupe
keys where it can, so a merchant may run webhooks, polling, or both: what
the inbox already holds is not stored again. Each page is committed with
its cursor and the adapter's remembered state in one transaction, so an
interrupted sync resumes where it stopped and never skips a change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from rich.progress import Progress

from aftercare.app import App
from aftercare.platform import PlatformError
from aftercare.queue import Enqueuer

log = logging.getLogger("aftercare.sync")

CURSOR = "poll"
#: Transient failures in a row (a long throttle the client gave back, a 5xx) sync waits out
#: and resumes from the last committed page before it gives up.
MAX_RESUMES = 10


@dataclass
class SyncReport:
    shop_id: str
    orders: int = 0
    events: int = 0
    new_events: int = 0


def sync_shop(
    app: App, queue: Enqueuer, shop_id: str, *, since: datetime | None = None, progress: bool = False
) -> SyncReport:
    store = app.store
    adapter = app.adapter(shop_id)
    report = SyncReport(shop_id)
    cursor = None if since is not None else store.get_cursor(shop_id, CURSOR)
    batches = adapter.poll(cursor, since)
    resumes = 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"sync {shop_id}", total=None)
        while True:
            # The adapter does its reading inside next(): its state changes join this transaction (Store).
            try:
                with store.transaction() as conn:
                    batch = next(batches, None)
                    if batch is None:
                        break
                    ids = store.add_events(conn, batch.events)
                    store.write_cursor(conn, shop_id, batch.cursor, CURSOR)
            except PlatformError as exc:
                # A wait the API client does not sleep inside a call (a long throttle): this is
                # sync's own thread, so it waits here and resumes after the last committed page.
                # Other errors the client has already retried: they end the sync with their reason.
                resumes += 1
                if not exc.transient or exc.retry_after is None or resumes > MAX_RESUMES:
                    raise
                wait = exc.retry_after
                log.warning("sync %s: %s; resuming in %.1fs", shop_id, exc.message, wait)
                time.sleep(wait)
                batches = adapter.poll(cursor, since)
                continue
            resumes, cursor, since = 0, batch.cursor, None
            new_ids = [i for i, new in ids if new]
            queue.dispatch_events(new_ids)
            report.orders += batch.orders_seen
            report.events += len(batch.events)
            report.new_events += len(new_ids)
            bar.update(task, completed=report.orders, total=batch.orders_total)
    return report
