"""A deployment of several client shops on the in-memory platform, each with its bundle."""

import textwrap

import pytest

from aftercare.app import App
from aftercare.clock import ManualClock
from aftercare.config import load_config
from aftercare.plugin_manager import PluginManager
from aftercare.testing import START, memory_platform

THANKS_PLUGIN = '''
"""A client's own plugin: a thank-you mail whose greeting is a setting."""

from aftercare import hookimpl
from aftercare.settings import PluginSettings


class Settings(PluginSettings):
    greeting: str = "Thanks"


@hookimpl
def on_order_paid(event, ctx):
    ctx.send_email("thanks", context={"greeting": ctx.settings.greeting})
'''

TEMPLATE = {
    "thanks.subject.txt": "{greeting} from {bundle}",
    "thanks.txt": "{{{{ greeting }}}}, {{{{ customer.first_name }}}}! ({bundle} text)",
    "thanks.html": "<p>{{{{ greeting }}}}, {{{{ customer.first_name }}}}! ({bundle} html)</p>",
}


def write_bundle(root, name, toml="", plugin=THANKS_PLUGIN, templates=True):
    """bundles/NAME with bundle.toml, a local plugin ``thanks`` and its English templates."""
    folder = root / "bundles" / name
    (folder / "plugins").mkdir(parents=True)
    (folder / "bundle.toml").write_text(textwrap.dedent(toml))
    if plugin:
        (folder / "plugins" / "thanks.py").write_text(plugin)
    if templates:
        (folder / "templates" / "en").mkdir(parents=True)
        for filename, text in TEMPLATE.items():
            (folder / "templates" / "en" / filename).write_text(text.format(bundle=name, greeting="Hi"))
        # What the plugin passes, so `check` and `bundle check` can render the templates.
        (folder / "templates" / "samples.json").write_text('{"thanks": {"greeting": "Hi"}}')
    return folder


def make_app(config_path, *extra, clock=None):
    manager = PluginManager.load(extra=[("memory-platform", memory_platform), *extra])
    app = App(load_config(config_path), clock=clock or ManualClock(START), plugins=manager)
    app.store.upgrade()
    return app


@pytest.fixture
def apps():
    made = []

    def make(config_path, *extra, clock=None):
        app = make_app(config_path, *extra, clock=clock)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


from aftercare.sandbox.testing import sandbox_shopify, sandbox_woocommerce, webhook_receiver  # noqa: E402, F401

from ..mail.conftest import smtp_server  # noqa: E402, F401
