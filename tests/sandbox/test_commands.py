"""``aftercare sandbox order ...`` drives a running sandbox shop through /_sandbox."""

from click.testing import CliRunner

from aftercare.cli.sandbox import sandbox


def test_order_commands_create_and_move_orders(sandbox_woocommerce):
    runner = CliRunner(env={"AFTERCARE_SANDBOX_URL": sandbox_woocommerce.url})

    created = runner.invoke(sandbox, ["order", "create", "--locale", "bg", "--count", "2"])
    order_id = created.output.split()[0]
    shipped = runner.invoke(sandbox, ["order", "ship", order_id, "--carrier", "Speedy", "--tracking-number", "62001"])
    refused = runner.invoke(sandbox, ["order", "cancel", order_id])
    listed = runner.invoke(sandbox, ["order", "list"])

    assert created.exit_code == 0 and len(created.output.splitlines()) == 2
    assert shipped.exit_code == 0 and '"tracking_number": "62001"' in shipped.output
    assert refused.exit_code == 2 and "has shipped" in refused.output  # one line, exit 2, as every command
    assert "Speedy 62001" in listed.output
    assert sandbox_woocommerce.state.order(int(order_id)).locale == "bg"


def test_running_without_a_platform_explains_itself():
    result = CliRunner().invoke(sandbox, [])
    assert result.exit_code == 2 and "--platform" in result.output


def test_cancel_with_refund_sends_both_topics_under_one_event_id(sandbox_shopify, webhook_receiver):
    from aftercare.models import EventKind

    from .test_shopify_sandbox import adapter_for

    kinds = [EventKind.ORDER_CANCELLED, EventKind.REFUNDED]
    adapter_for(sandbox_shopify).register_webhooks(webhook_receiver.url, kinds)
    runner = CliRunner(env={"AFTERCARE_SANDBOX_URL": sandbox_shopify.url})
    order_id = runner.invoke(sandbox, ["order", "create"]).output.split()[0]
    cancelled = runner.invoke(sandbox, ["order", "cancel", order_id, "--refund"])
    sandbox_shopify.flush()

    assert cancelled.exit_code == 0, cancelled.output
    order = sandbox_shopify.state.order(int(order_id))
    assert order.cancelled_at is not None and order.refunded == order.total
    sent = {r.headers["x-shopify-topic"]: r.headers for r in webhook_receiver.received}
    assert set(sent) == {"orders/cancelled", "refunds/create"}
    assert len({h["x-shopify-event-id"] for h in sent.values()}) == 1
    assert len({h["x-shopify-webhook-id"] for h in sent.values()}) == 2


def test_shopify_only_options_are_refused_for_woocommerce():
    result = CliRunner().invoke(sandbox, ["--platform", "woocommerce", "--read-all-orders"])
    assert result.exit_code == 2 and "Shopify options" in result.output
