"""`aftercare preview --send-to ME`: a test of any template to the merchant through the shop's own
transport; a plugin's template asked for without --plugin, and a shop with no sender, in one line."""

import email
from email import policy
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from aftercare.cli.mail import preview

LOCAL_PLUGIN = """
from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)
"""


@click.group()
@click.option("--config", "config_path", default="aftercare.toml")
@click.pass_context
def cli(ctx, config_path):
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


cli.add_command(preview)


def project(folder: Path, mail: str, sender: str = 'sender = "Acme <hi@acme.example>"') -> None:
    (folder / "local").mkdir(exist_ok=True)
    (folder / "local" / "memory.py").write_text(LOCAL_PLUGIN)
    (folder / "aftercare.toml").write_text(f"""
plugins_folder = "local"

[mail]
{mail}

[mail.brand]
postal_address = "Acme SL, Calle Mayor 1, Madrid"

[[shops]]
id = "acme"
platform = "memory"
webhook_secret = "s3cr3t"
{sender}
""")


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_send_to_delivers_a_marked_test_through_smtp_to_the_merchant_only(tmp_path, monkeypatch, smtp_server):
    controller, handler = smtp_server
    smtp = f'transport = "smtp"\nsmtp = {{ host = "127.0.0.1", port = {controller.port}, security = "none" }}'
    project(tmp_path, smtp)
    monkeypatch.chdir(tmp_path)
    code, out, err = run("preview", "review_request", "--shop", "acme", "--plugin", "review_request",
                         "--locale", "es", "--send-to", "owner@acme.example")  # fmt: skip
    assert code == 0, (out, err)
    assert "sent a test to owner@acme.example through 127.0.0.1" in err
    (received,) = handler.received
    assert received.rcpt_tos == ["owner@acme.example"]  # never the sample order's customer
    message = email.message_from_bytes(received.data, policy=policy.default)
    assert message["To"] == "owner@acme.example" and message["Subject"].startswith("[test] ")
    assert message["Content-Language"] == "es"
    assert "Acme SL, Calle Mayor 1, Madrid" in message.get_body(("plain",)).get_content()


def test_send_to_with_the_outbox_transport_writes_the_test_there(tmp_path, monkeypatch):
    project(tmp_path, 'transport = "outbox"')
    monkeypatch.chdir(tmp_path)
    code, out, err = run("preview", "thank_you", "--shop", "acme", "--send-to", "owner@acme.example")
    assert code == 0, (out, err)
    (written,) = (tmp_path / "outbox").glob("*.eml")
    assert f"to {written}" in err
    message = email.message_from_bytes(written.read_bytes(), policy=policy.default)
    assert message["To"] == "owner@acme.example" and message["Subject"].startswith("[test] Thank you")
    code, _out, err = run("preview", "thank_you", "--shop", "acme", "--send-to", "nobody")
    assert code == 2 and err.strip() == "error: --send-to: not an email address: 'nobody'"


def test_a_plugins_template_without_plugin_suggests_it(tmp_path, monkeypatch):
    project(tmp_path, 'transport = "outbox"')
    monkeypatch.chdir(tmp_path)
    code, _out, err = run("preview", "coupon", "--shop", "acme")
    assert code == 2
    assert err.strip() == "error: no core template 'coupon': it belongs to a plugin, add --plugin coupon"
    code, _out, err = run("preview", "no_such_template", "--shop", "acme")
    assert code == 2 and err.startswith("error: no template 'no_such_template'") and len(err.splitlines()) == 1


@pytest.mark.parametrize("send_to", [[], ["--send-to", "owner@acme.example"]])
def test_no_sender_is_one_line_and_exit_2(tmp_path, monkeypatch, send_to):
    project(tmp_path, 'transport = "outbox"', sender="")
    monkeypatch.chdir(tmp_path)
    code, out, err = run("preview", "thank_you", "--shop", "acme", *send_to)
    assert code == 2 and out == ""
    assert err == "error: shop 'acme' has no sender: set `sender` for the shop or in [mail]\n"
    assert not (tmp_path / "outbox").exists()
