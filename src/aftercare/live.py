"""Live checks: each shop's platform and SMTP relay, called with the shop's credentials.

``aftercare check --live`` and the console's "run the live checks" button both ask
this module, so the two say the same thing about the same shop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aftercare.mail.transports import SmtpTransport

if TYPE_CHECKING:
    from aftercare.app import App


def live_problems(app: App, shop_ids: list[str]) -> list[str]:
    """Each shop's platform (``adapter.check_live``) and SMTP relay, one line per problem.

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
        if settings.transport == "smtp":
            key = settings.smtp.model_dump_json()
            if key not in relays:
                relays[key] = SmtpTransport(settings.smtp).check_live()
            problems.extend(f"{shop_id}: mail: {line}" for line in relays[key])
    return problems
