"""``aftercare sandbox``: run a sandbox shop, and drive a running one from the shell.

``aftercare sandbox --platform shopify`` serves a shop in the foreground and
prints what to put in a ``[[shops]]`` block. The ``order`` subcommands talk to
that running shop through its ``/_sandbox`` control endpoints, found with
``--url`` or ``AFTERCARE_SANDBOX_URL``.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click
import requests

from aftercare.cli.common import UserError, reports_user_errors
from aftercare.sandbox import SHOPS
from aftercare.sandbox.shopify import DEFAULT_SCOPES

URL_ENV = "AFTERCARE_SANDBOX_URL"


@click.group("sandbox", invoke_without_command=True)
@click.option("--platform", type=click.Choice(sorted(SHOPS)), help="Which platform's API to serve.")
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--secret", help="Shopify: the app secret signing webhooks; WooCommerce: the default webhook secret.")
@click.option("--orders", type=int, default=0, help="Start with this many realistic orders.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the made-up customers and baskets.")
@click.option("--auth", type=click.Choice(["static", "client_credentials", "install"]), default="static",
              show_default=True, help="Shopify: which login the printed keys use.")  # fmt: skip
@click.option("--read-all-orders", is_flag=True, help="Shopify: grant read_all_orders (else 60 days of orders).")
@click.option("--redact-customer-data", is_flag=True, help="Shopify: withhold names, emails and addresses.")
@click.pass_context
def sandbox(
    ctx: click.Context,
    platform: str | None,
    port: int,
    secret: str | None,
    orders: int,
    seed: int,
    auth: str,
    read_all_orders: bool,
    redact_customer_data: bool,
) -> None:
    """Run a local Shopify or WooCommerce shop that aftercare's adapters can talk to."""
    if ctx.invoked_subcommand is not None:
        return
    if platform is None:
        raise click.UsageError("choose a shop with --platform shopify|woocommerce (or use a subcommand)")
    options: dict[str, Any] = {"seed": seed}
    if secret:
        options["secret"] = secret
    if platform == "shopify":
        options["auth"] = auth
    if platform != "shopify" and (read_all_orders or redact_customer_data):
        raise click.UsageError("--read-all-orders and --redact-customer-data are Shopify options")
    if read_all_orders:
        options["scopes"] = (*DEFAULT_SCOPES, "read_all_orders")
    if redact_customer_data:
        options["redact_customer_data"] = True
    shop = SHOPS[platform](**options)
    url = shop.start(port)
    for _ in range(orders):
        shop.create_order()
    click.echo(f"Sandbox {platform} shop on {url}\n")
    click.echo("Point a shop at it in your config:\n")
    click.echo("[[shops]]")
    click.echo(f'id = "sandbox-{platform}"')
    click.echo(f'platform = "{platform}"')
    click.echo(f'webhook_secret = "{shop.describe()["webhook_secret"]}"')
    for key, value in shop.adapter_settings().items():
        click.echo(f"{key} = {json.dumps(value)}")
    if platform == "shopify" and auth != "static":
        click.echo("# and a secret_key at the top of the file (aftercare init writes one)")
    click.echo(f"\nDrive it from another shell:\n  export {URL_ENV}={url}")
    click.echo("  aftercare sandbox order create --locale es")
    click.echo("  aftercare sandbox order ship ORDER_ID\n\nCtrl-C stops it.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause() if hasattr(signal, "pause") else input()
    except (KeyboardInterrupt, SystemExit, EOFError):
        pass
    finally:
        shop.stop()
        click.echo("\nstopped")


def _call(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    try:
        answer = requests.request(method, f"{url.rstrip('/')}/_sandbox{path}", json=body, timeout=30)
    except requests.RequestException as exc:
        raise UserError(f"no sandbox shop at {url}: {exc}") from None
    try:
        data = answer.json()
    except ValueError:
        raise UserError(f"{url} answered HTTP {answer.status_code} without JSON: is it a sandbox shop?") from None
    if answer.status_code >= 400:
        raise UserError(data.get("error") or str(data))
    return data


url_option = click.option("--url", envvar=URL_ENV, required=True, help=f"The running sandbox shop (or ${URL_ENV}).")


@sandbox.group()
def order() -> None:
    """Create orders and move them through their life on a running sandbox shop."""


@order.command("create")
@url_option
@click.option("--email")
@click.option("--first-name")
@click.option("--last-name")
@click.option("--locale", type=click.Choice(["en", "es", "bg"]))
@click.option("--currency")
@click.option("--unpaid", is_flag=True, help="Leave it pending payment.")
@click.option("--guest", is_flag=True, help="WooCommerce: a guest checkout (no customer record).")
@click.option("--count", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the orders as the sandbox made them.")
@reports_user_errors
def order_create(url, email, first_name, last_name, locale, currency, unpaid, guest, count, as_json) -> None:  # noqa: ANN001
    """Create orders; unspecified details are made up realistically."""
    spec = {"email": email, "first_name": first_name, "last_name": last_name, "locale": locale, "currency": currency}
    body = {k: v for k, v in spec.items() if v} | {"paid": not unpaid, "guest": guest, "count": count}
    made_orders = _call(url, "POST", "/orders", body)
    if as_json:
        click.echo(json.dumps(made_orders, indent=2, ensure_ascii=False))
        return
    for made in made_orders:
        click.echo(f"{made['id']}  #{made['number']}  {made['email']}  {made['total']} {made['currency']}")


def _move(name: str, help_text: str, *options: Any):
    @reports_user_errors
    def command(url: str, order_id: str, **kwargs: Any) -> None:
        result = _call(url, "POST", f"/orders/{order_id}/{name}", kwargs)
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))

    command.__doc__ = help_text + " Prints the order's new state as JSON."
    for option in reversed(options):
        command = option(command)
    command = click.argument("order_id")(command)
    return order.command(name)(url_option(command))


_move("pay", "Mark a pending order paid.")
_move(
    "ship",
    "Ship every line in one parcel with tracking.",
    click.option("--carrier"),
    click.option("--tracking-number"),
    click.option("--tracking-url"),
)
_move("deliver", "The carrier reports the parcel delivered.", click.option("--fulfillment-id"))
_move("return", "The customer asks to return the order.", click.option("--reason", default="unwanted"))
_move(
    "refund", "Refund the order (all that is left unless --amount).", click.option("--amount"), click.option("--reason")
)
_move(
    "cancel",
    "Cancel an order that has not shipped (--refund: refund what was paid in the same action).",
    click.option("--reason", default="customer"),
    click.option("--refund", is_flag=True, default=None),
)


@order.command("list")
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_user_errors
def order_list(url: str, as_json: bool) -> None:
    """The shop's orders and where each one is."""
    made_orders = _call(url, "GET", "/orders")
    if as_json:
        click.echo(json.dumps(made_orders, indent=2, ensure_ascii=False))
        return
    for made in made_orders:
        state = "cancelled" if made["cancelled"] else "paid" if made["paid"] else "pending"
        shipped = ", ".join(
            f"{s['carrier']} {s['tracking_number']}{' delivered' if s['delivered'] else ''}" for s in made["shipments"]
        )
        click.echo(
            f"{made['id']}  #{made['number']}  {made['email']}  {made['total']} {made['currency']}  {state}  {shipped}"
        )


@sandbox.command("deliveries")
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_user_errors
def deliveries(url: str, as_json: bool) -> None:
    """Every webhook the shop sent and how it was answered."""
    attempts = _call(url, "GET", "/deliveries")
    if as_json:
        click.echo(json.dumps(attempts, indent=2, ensure_ascii=False))
        return
    for attempt in attempts:
        outcome = "ok" if attempt["ok"] else attempt["error"]
        click.echo(f"{attempt['at']}  {attempt['topic']:<28} #{attempt['attempt']}  {outcome}  {attempt['url']}")
