"""Templates: locale fallback, overrides, plugin folders, check_templates, and the two commands."""

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from aftercare import serialize
from aftercare.cli.mail import preview, templates
from aftercare.config.mail import MailSettings, SmtpSettings, merge_shop_settings
from aftercare.mail import channel
from aftercare.mail.templates import (
    BUILTIN,
    check_templates,
    default_context,
    list_templates,
    locale_chain,
    mail_context,
    render_email,
)
from aftercare.mail.unsubscribe import InvalidToken, make_token, read_token
from aftercare.testing import make_order

from .conftest import SENDER


def render(app, template="thank_you", locale="es", plugin="", **context):
    shop = app.shop("test").profile
    variables = mail_context(default_context(make_order(), shop), {"code": "X-1", **context},
                             transactional=False, unsubscribe_url="https://s.example/u/t")  # fmt: skip
    return render_email(app, "test", template, locale=locale, context=variables, plugin=plugin)


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_locale_chain_goes_from_the_reader_to_the_shop_to_english():
    assert locale_chain("es-ES", "bg") == ["es_ES", "es", "bg", "en"]
    assert locale_chain("", "bg") == ["bg", "en"]
    assert locale_chain("xx-nonsense", "") == ["xx", "en"]


def test_unknown_locale_falls_back_to_the_shop_then_english(aftercare_app):
    app = aftercare_app(shop={"locale": "bg"})
    assert render(app, locale="de").locale == "bg"
    assert render(aftercare_app(), locale="de").locale == "en"
    spain = render(app, locale="es-ES")
    assert spain.locale == "es" and "59,90\xa0€" in spain.text


def test_a_shop_overrides_one_file_and_keeps_the_rest(aftercare_app, tmp_path):
    write(tmp_path / "acme", "es/thank_you.subject.txt", "¡Gracias, {{ customer.first_name }}!")
    app = aftercare_app(shop={"mail": {"templates_dir": "acme"}})
    rendered = render(app)
    assert rendered.subject == "¡Gracias, Ana!"
    assert rendered.files["text"] == BUILTIN / "es" / "thank_you.txt"
    assert render(app, locale="en").subject.startswith("Thank you")  # the language beats the override


def test_a_plugin_brings_its_own_templates(aftercare_app, tmp_path):
    class Reviews:
        name = "reviews"
        TEMPLATES = tmp_path / "reviews-templates"

    write(Reviews.TEMPLATES, "en/review.subject.txt", "Rate {{ order.number }}")
    write(Reviews.TEMPLATES, "en/review.txt", "{% extends '_layout.txt' %}{% block content %}Stars?{% endblock %}")
    write(Reviews.TEMPLATES, "en/review.html", "{% extends '_layout.html' %}{% block content %}★{% endblock %}")
    app = aftercare_app(Reviews())
    rendered = render(app, "review", locale="bg", plugin="reviews")
    assert rendered.locale == "en" and rendered.subject == "Rate 1001"
    assert "https://s.example/u/t" in rendered.text  # the built-in layout around the plugin's content
    rows = [r for r in list_templates(app) if r["template"] == "review" and r["locale"] == "en"]
    assert rows[0]["plugin"] == "reviews" and rows[0]["parts"]["subject"]["source"] == "plugin reviews"


def test_built_in_templates_pass_the_check(aftercare_app):
    assert check_templates(aftercare_app()) == []


def test_check_reports_syntax_errors_and_unknown_variables_with_path_and_line(aftercare_app, tmp_path):
    broken = write(
        tmp_path / "acme", "es/thank_you.html", "{% extends '_layout.html' %}\n{% block content %}\n{% if %}\n"
    )
    unknown = write(tmp_path / "acme", "en/how_was_it.txt", "Hello\n{{ coupon_code }}\n")
    app = aftercare_app(shop={"mail": {"templates_dir": "acme"}})
    problems = check_templates(app)
    assert any(p.startswith(f"{broken}:3: syntax error") for p in problems), problems
    assert any(p.startswith(f"{unknown}:2: UndefinedError") and "coupon_code" in p for p in problems), problems
    assert len(problems) == 2


def test_check_reports_a_syntax_error_in_a_text_template(aftercare_app, tmp_path):
    broken = write(tmp_path / "acme", "es/shipped.sms", "Tu pedido {{ order.number }} {% if %}\n")
    problems = check_templates(aftercare_app(shop={"mail": {"templates_dir": "acme"}}))
    assert problems == [f"{broken}:1: syntax error: Expected an expression, got 'end of statement block'"]


def test_unsubscribe_tokens_are_bound_to_their_shop(aftercare_app):
    app = aftercare_app()
    token = make_token(app, "test", "Ana@Example.com", "es")
    link = read_token(app, token)
    assert (link.shop_id, link.email, link.locale) == ("test", "ana@example.com", "es")
    other = aftercare_app(shop={"webhook_secret": "another-shops-secret"})
    with pytest.raises(InvalidToken):
        read_token(other, token)
    shared = {"secret_key": "one-key-for-the-deployment"}
    assert read_token(
        aftercare_app(shop={"mail": shared}), make_token(aftercare_app(shop={"mail": shared}), "test", "a@b.c")
    )


def test_shop_mail_settings_override_key_by_key_and_refuse_clear_text_to_a_remote_relay():
    deployment = MailSettings(transport="smtp", smtp=SmtpSettings(host="smtp.example.com", username="u", password="p"))
    shop = MailSettings.model_validate({"frequency_cap": 1, "smtp": {"port": 2525}})
    merged = merge_shop_settings(deployment, shop)
    assert (merged.transport, merged.frequency_cap, merged.smtp.host, merged.smtp.port) == (
        "smtp",
        1,
        "smtp.example.com",
        2525,
    )
    assert merged.smtp.username == "u" and merged.quiet_hours_start == deployment.quiet_hours_start
    with pytest.raises(ValidationError, match="only to a relay on this machine"):
        merge_shop_settings(deployment, MailSettings.model_validate({"smtp": {"security": "none"}}))
    assert SmtpSettings(security="none").effective_port == 25 and SmtpSettings().effective_port == 587


# -- the commands ------------------------------------------------------------------

LOCAL_PLUGIN = """
from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)
"""

CONFIG = """
plugins_folder = "local"

[mail]
templates_dir = "house"

[[shops]]
id = "acme"
platform = "memory"
webhook_secret = "s3cr3t"
sender = "ACME <hi@acme.example>"
locale = "es"
timezone = "Europe/Madrid"

[shops.mail]
templates_dir = "acme-templates"
"""


@click.group()
@click.option("--config", "config_path", default="aftercare.toml")
@click.pass_context
def cli(ctx, config_path):
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


cli.add_command(templates)
cli.add_command(preview)


@pytest.fixture
def project(tmp_path, monkeypatch):
    write(tmp_path, "local/memory.py", LOCAL_PLUGIN)
    write(tmp_path, "aftercare.toml", CONFIG)
    write(tmp_path, "acme-templates/es/thank_you.subject.txt", "¡Gracias, {{ customer.first_name }}! Código {{ code }}")
    write(tmp_path, "house/en/how_was_it.txt", "{% extends '_layout.txt' %}{% block content %}House{% endblock %}")
    write(tmp_path, "order.json", serialize.dumps(make_order(shop_id="acme")))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_templates_list_shows_which_file_wins(project):
    code, out = run("templates", "list", "--shop", "acme", "--json")
    assert code == 0, out
    rows = {(r["template"], r["locale"]): r for r in json.loads(out)}
    es = rows[("thank_you", "es")]["parts"]
    assert es["subject"] == {"path": str(project / "acme-templates/es/thank_you.subject.txt"), "source": "shop"}
    assert es["html"]["source"] == "built-in"
    assert rows[("how_was_it", "en")]["parts"]["text"]["source"] == "deployment"
    assert rows[("how_was_it", "bg")]["parts"]["text"]["source"] == "built-in"
    code, out = run("templates", "list")
    assert code == 0 and "thank_you" in out
    code, out = run("templates", "list", "--shop", "nope")
    assert code == 2


def test_preview_renders_what_would_be_sent_and_writes_the_html(project):
    code, out = run("preview", "thank_you", "--shop", "acme", "--order", "order.json", "--locale", "es",
                    "--html", "out.html", "--eml", "out.eml")  # fmt: skip
    assert code == 0, out
    assert "Subject: ¡Gracias, Ana! Código THANKS-7Q2XM" in out
    assert "From: ACME <hi@acme.example>" in out and "List-Unsubscribe: <http://127.0.0.1:8000/unsubscribe/" in out
    assert "Gracias por tu pedido 1001" in out and "59,90\xa0€" in out
    assert "Lo que pediste" in (project / "out.html").read_text(encoding="utf-8")
    assert b"X-Aftercare-Key: acme/preview/send_email/order:order-1001/thank_you" in (project / "out.eml").read_bytes()
    code, out = run("preview", "thank_you", "--shop", "acme", "--context", '{"code": "MINE"}', "--transactional")
    assert code == 0 and "MINE" in out and "List-Unsubscribe" not in out
    code, out = run("preview", "no_such_template", "--shop", "acme")
    assert code == 2


def test_the_core_registers_the_mail_channel(aftercare_app):
    app = aftercare_app(shop={"sender": SENDER})
    assert isinstance(app.plugins.channels()["send_email"], channel.MailChannel)


@pytest.mark.parametrize(
    ("locale", "footer", "unsubscribe"),
    [
        ("en", "You receive this email because you ordered from", "Unsubscribe from these emails"),
        ("es", "Recibes este correo porque hiciste un pedido en", "Darte de baja de estos correos"),
        ("bg", "Получавате този имейл, защото сте поръчали от", "Отписване от тези имейли"),
    ],
)
def test_every_locale_frames_its_mail_with_its_own_footer(aftercare_app, locale, footer, unsubscribe):
    rendered = render(aftercare_app(), locale=locale)
    assert f'<html lang="{locale}" ' in rendered.html
    assert footer in rendered.html and unsubscribe in rendered.html
    assert 'href="https://s.example/u/t"' in rendered.html
