"""Live checks: each shop's platform and SMTP relay, called with the shop's credentials.

``aftercare check --live`` and the console's "run the live checks" button both ask
this module, so the two say the same thing about the same shop.

A shop passes only if it can do its work, not merely log in: a production shop's mail
must have a sender (without one every mail fails when it is rendered, after a real
coupon may have been made on the platform; a dry-run shop gets a warning), and its platform keys must be allowed to act
(the adapter's ``check_live`` tries what the plugins need: Shopify's access scopes,
a no-op write with WooCommerce's key), not only to read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aftercare.mail.transports import SmtpTransport
from aftercare.platform import LiveWarning

if TYPE_CHECKING:
    from aftercare.app import App

NO_SENDER = "no sender: every mail would fail; set `sender` for the shop or in [mail]"
OUTBOX = "transport = 'outbox': mail is written to {folder}, not sent to customers"


def live_problems(app: App, shop_ids: list[str]) -> list[str]:
    """Each shop's sender, platform (``adapter.check_live``) and SMTP relay, one line per problem
    (a :class:`LiveWarning` line warns without failing).

    A relay shared by several shops is tried once and reported for each."""
    problems: list[str] = []
    relays: dict[str, list[str]] = {}
    for shop_id in shop_ids:
        try:
            found = app.adapter(shop_id).check_live()
        except Exception as exc:  # an adapter's bug must not hide the other shops' answers
            found = [f"{type(exc).__name__}: {exc}"]
        problems.extend(type(line)(f"{shop_id}: platform: {line}") for line in found)  # keeps LiveWarning
        settings = app.mail_settings(shop_id)
        shop = app.shop(shop_id)
        if not (shop.profile.sender or settings.sender):
            line = f"{shop_id}: mail: {NO_SENDER}"  # a dry run drops its mail before it is rendered: a warning
            problems.append(line if shop.config.production else LiveWarning(f"{line} once the shop is production"))
        if settings.transport == "smtp":
            key = settings.smtp.model_dump_json()
            if key not in relays:
                relays[key] = SmtpTransport(settings.smtp).check_live()
            problems.extend(f"{shop_id}: mail: {line}" for line in relays[key])
        elif shop.config.production:
            folder = app.config.resolve_path(settings.outbox_dir)
            problems.append(LiveWarning(f"{shop_id}: mail: {OUTBOX.format(folder=folder)}"))
    return problems
