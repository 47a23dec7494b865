"""Polling sync: ask a shop for orders changed since its cursor.

The adapter derives the same events webhooks give, with the same dedupe
keys where it can, so a merchant may run webhooks, polling, or both: what
the inbox already holds is not stored again. Each page is committed with
its cursor and the adapter's remembered state in one transaction, so an
interrupted sync resumes where it stopped and never skips a change.

:func:`sync_shops` syncs several shops and goes on past one that fails (a
platform that cannot be reached, refuses the keys or sends what the adapter
cannot read): each report says what was read and, for a failed shop, why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rich.progress import Progress

from aftercare.app import App
from aftercare.platform import PayloadError, PlatformError
from aftercare.queue import Enqueuer

log = logging.getLogger("aftercare.sync")

CURSOR = "poll"
#: Transient failures in a row (a long throttle the client gave back, a 5xx) sync waits out
#: and resumes from the last committed page before it gives up.
MAX_RESUMES = 10
#: ... and how many before the shop has answered one page in this sync: a shop that cannot be
#: reached at all (refused, unknown host) is given up on in seconds, for the next shop's turn.
MAX_RESUMES_UNANSWERED = 2


@dataclass
class SyncReport:
    shop_id: str
    orders: int = 0
    events: int = 0
    new_events: int = 0
    #: Why the shop's sync stopped early (empty when it read everything); what was read before stays stored.
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)


def sync_shops(
    app: App, queue: Enqueuer, shop_ids: Iterable[str], *, since: datetime | None = None, progress: bool = False
) -> list[SyncReport]:
    """:func:`sync_shop` for each shop in turn; a shop that fails is reported and the next one
    synced. A database error stops them all (no shop could be stored)."""
    reports = []
    for shop_id in shop_ids:
        report = SyncReport(shop_id)
        try:
            sync_shop(app, queue, shop_id, since=since, progress=progress, report=report)
        except PlatformError as exc:
            report.error = exc.message
        except PayloadError as exc:
            report.error = str(exc)
        if report.error:
            log.warning("sync %s failed after %d order(s): %s", shop_id, report.orders, report.error)
        reports.append(report)
    return reports


def sync_shop(
    app: App,
    queue: Enqueuer,
    shop_id: str,
    *,
    since: datetime | None = None,
    progress: bool = False,
    report: SyncReport | None = None,
) -> SyncReport:
    """Sync one shop; a platform error ends it (raised), with ``report`` (if given) counting what
    was stored before."""
    store = app.store
    adapter = app.adapter(shop_id)
    report = report if report is not None else SyncReport(shop_id)
    answered = False
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
                limit = MAX_RESUMES if answered else MAX_RESUMES_UNANSWERED
                if not exc.transient or exc.retry_after is None or resumes > limit:
                    raise
                wait = exc.retry_after
                log.warning("sync %s: %s; resuming in %.1fs", shop_id, exc.message, wait)
                time.sleep(wait)
                batches = adapter.poll(cursor, since)
                continue
            resumes, cursor, since, answered = 0, batch.cursor, None, True
            new_ids = [i for i, new in ids if new]
            queue.dispatch_events(new_ids)
            report.orders += batch.orders_seen
            report.events += len(batch.events)
            report.new_events += len(new_ids)
            bar.update(task, completed=report.orders, total=batch.orders_total)
    return report
