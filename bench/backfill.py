"""Backfill N orders from the sandbox Shopify shop through the real adapter's poll, at the rate limit.

The sandbox charges each GraphQL query to Shopify's leaky bucket (default: 1,000
points, restored at 50 points/s, Shopify's standard plan) and answers THROTTLED
when the bucket cannot pay. The adapter's client waits before a query the bucket
cannot hold and retries THROTTLED answers. This measures how close to the limit
that gets: query cost actually charged per second over the restore rate (aim:
at least 0.9), and THROTTLED answers seen vs left unhandled (must be 0).

    .venv/bin/python bench/backfill.py                       # 10,000 orders, about 80 minutes at 50/s
    .venv/bin/python bench/backfill.py --orders 2000 --restore-rate 200

Each 3-order poll page costs about 70 points, so the run takes roughly
orders / 3 * 70 / restore_rate seconds; the figure does not depend on the
length once a few hundred queries have run.
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import timedelta

from pydantic import SecretStr

from aftercare.adapters.shopify import ShopifyAdapter, ShopifySettings
from aftercare.clock import SystemClock
from aftercare.platform import MemoryShopState, PlatformError, ShopInfo
from aftercare.sandbox import ShopifySandbox


class Meter:
    """Points the bucket actually kept: what was taken minus the unused part given back."""

    def __init__(self, shop: ShopifySandbox) -> None:
        self.charged = 0.0
        self.lock = threading.Lock()
        take, give_back = shop.bucket.take, shop.bucket.give_back

        def metered_take(cost: float) -> bool:
            ok = take(cost)
            if ok:
                with self.lock:
                    self.charged += cost
            return ok

        def metered_give_back(points: float) -> None:
            give_back(points)
            with self.lock:
                self.charged -= max(0.0, points)

        shop.bucket.take, shop.bucket.give_back = metered_take, metered_give_back  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--bucket", type=float, default=1000, help="bucket size in points (default 1000)")
    parser.add_argument("--restore-rate", type=float, default=50, help="points restored per second (default 50)")
    args = parser.parse_args()

    with ShopifySandbox(bucket_size=args.bucket, restore_rate=args.restore_rate, seed=1) as shop:
        for n in range(args.orders):
            shop.create_order(email=f"customer-{n % 500}@example.com")
        adapter = ShopifyAdapter(
            ShopInfo(id="bench", webhook_secret=SecretStr(shop.secret)),
            ShopifySettings(**shop.adapter_settings()),
            MemoryShopState(),
            SystemClock().now,
        )
        meter = Meter(shop)
        print(
            f"backfill: {args.orders:,} orders, bucket {args.bucket:g} points restored at "
            f"{args.restore_rate:g}/s, {adapter.settings.poll_page_size} orders per query",
            flush=True,
        )
        started = time.monotonic()
        seen, queries, unhandled = 0, 0, 0
        try:
            for batch in adapter.poll(None, since=SystemClock().now() - timedelta(days=1)):
                seen += batch.orders_seen
                queries += 1
        except PlatformError as exc:  # a THROTTLED answer the client gave up on
            unhandled += 1
            print(f"backfill: stopped by {exc.message}")
        elapsed = time.monotonic() - started
        # The bucket starts full: those points came free, not from the restore rate.
        earned = max(0.0, meter.charged - args.bucket)
        print(f"backfill: {seen:,} orders in {queries:,} queries, {elapsed:.1f}s")
        print(
            f"backfill: {meter.charged:,.0f} points charged, {earned / elapsed:.1f} points/s beyond the initial "
            f"bucket = {earned / elapsed / args.restore_rate:.3f} of the restore rate"
        )
        print(f"backfill: THROTTLED answers seen {shop.throttled}, left unhandled {unhandled}")


if __name__ == "__main__":
    main()
