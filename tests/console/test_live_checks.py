""" "Run the live checks" (and `aftercare check --live`) fail a shop that cannot do its work: no
sender for its mail, or platform keys that may read but not write (issue #20)."""

from click.testing import CliRunner

from aftercare.cli import cli
from aftercare.live import live_problems
from aftercare.platform import LiveWarning
from aftercare.sandbox.testing import sandbox_woocommerce  # noqa: F401  (the fixture)

from .conftest import csrf_of, login


def test_a_shop_without_a_sender_fails_the_live_checks_in_the_console(client, console_app):
    login(client, "agency")
    csrf = csrf_of(client.get("/console/shops/south").text)
    page = client.post("/console/shops/south", data={"csrf": csrf}).text
    assert "This shop cannot do its work" in page and "south: mail: no sender: every mail would fail" in page
    assert "answered as expected" not in page
    found = live_problems(console_app, ["south"])
    assert [line for line in found if not isinstance(line, LiveWarning) and "no sender" in line]


def test_a_shop_that_can_send_passes_and_its_outbox_is_only_a_warning(client, console_app):
    login(client, "nora")
    csrf = csrf_of(client.get("/console/shops/north").text)
    page = client.post("/console/shops/north", data={"csrf": csrf}).text
    assert "answered as expected, and the shop can send" in page and "cannot do its work" not in page
    assert "warning: north: mail: transport = &#39;outbox&#39;: mail is written to" in page


def woo_config(tmp_path, woo):
    settings = "\n".join(f'{k} = "{v}"' for k, v in woo.adapter_settings().items())
    path = tmp_path / "aftercare.toml"
    shop = 'id = "woo-shop"\nplatform = "woocommerce"\nwebhook_secret = "woo-secret"\nproduction = true'
    path.write_text(f'[mail]\nsender = "Shop <shop@example.com>"\n\n[[shops]]\n{shop}\n{settings}\n')
    return path


def test_a_woocommerce_key_that_can_only_read_fails_the_live_checks(tmp_path, sandbox_woocommerce):  # noqa: F811
    path = woo_config(tmp_path, sandbox_woocommerce)
    passing = CliRunner().invoke(cli, ["--config", str(path), "check", "--live"])
    assert passing.exit_code == 0, passing.output  # a Read/Write key: the empty batch changes nothing
    assert sandbox_woocommerce.coupons() == []
    sandbox_woocommerce.key_permissions = "read"
    failing = CliRunner().invoke(cli, ["--config", str(path), "check", "--live"])
    assert failing.exit_code == 2
    assert "error: woo-shop: platform: the API key cannot write" in failing.output
    assert "give the key Read/Write permissions" in failing.output
