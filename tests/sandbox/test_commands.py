"""``aftercare sandbox order ...`` drives a running sandbox shop through /_sandbox."""

from click.testing import CliRunner

from aftercare.sandbox.commands import sandbox


def test_order_commands_create_and_move_orders(sandbox_woocommerce):
    runner = CliRunner(env={"AFTERCARE_SANDBOX_URL": sandbox_woocommerce.url})

    created = runner.invoke(sandbox, ["order", "create", "--locale", "bg", "--count", "2"])
    order_id = created.output.split()[0]
    shipped = runner.invoke(sandbox, ["order", "ship", order_id, "--carrier", "Speedy", "--tracking-number", "62001"])
    refused = runner.invoke(sandbox, ["order", "cancel", order_id])
    listed = runner.invoke(sandbox, ["order", "list"])

    assert created.exit_code == 0 and len(created.output.splitlines()) == 2
    assert shipped.exit_code == 0 and '"tracking_number": "62001"' in shipped.output
    assert refused.exit_code == 1 and "has shipped" in refused.output
    assert "Speedy 62001" in listed.output
    assert sandbox_woocommerce.state.order(int(order_id)).locale == "bg"


def test_running_without_a_platform_explains_itself():
    result = CliRunner().invoke(sandbox, [])
    assert result.exit_code == 2 and "--platform" in result.output
