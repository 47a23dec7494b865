"""``aftercare demo``: a week of two sandbox shops through aftercare, in seconds."""

from __future__ import annotations

from pathlib import Path

import click

from aftercare.demo import run_demo


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("aftercare-demo"),
    show_default=True,
    help="Where the store, the queue and the .eml files go (emptied first).",
)
@click.option("--orders", "orders_per_shop", type=click.IntRange(3, 100), default=18, show_default=True,
              help="Orders per shop.")  # fmt: skip
@click.option("--days", type=click.IntRange(1, 30), default=7, show_default=True, help="Simulated days.")
@click.option("--seed", type=int, default=8, show_default=True, help="Another seed tells another story.")
@click.option(
    "--keep-serving",
    is_flag=True,
    help="Afterwards keep the shops, receiver and console running (Ctrl-C stops them) with a console user.",
)
def demo(folder: Path, orders_per_shop: int, days: int, seed: int, keep_serving: bool) -> None:
    """A week of two sandbox shops (Shopify and WooCommerce) through aftercare, in seconds.

    Runs the real receiver, worker, store, queue and adapters on 127.0.0.1 with
    every built-in plugin on, moves one clock forward hour by hour, and prints
    what happened. Nothing is left running.
    """
    run_demo(folder, orders_per_shop, days, seed, keep_serving)
