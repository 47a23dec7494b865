"""The ``send_sms`` and ``send_whatsapp`` channels: texts over Twilio's Messages API.

Registered through ``register_channels`` like the mail channel (a plugin can
replace either). Off until a shop turns ``[mail.sms]`` on. For each due text,
in this order, each with the reason it records:

- the shop's texts are off, or the order has no usable number: dropped;
- the customer's SMS consent (the platform's, apart from email's): an
  unsubscribed number gets nothing; a marketing text needs ``subscribed``;
- a marketing text counts with marketing mails in the shop's frequency cap and
  waits out its quiet hours (:func:`aftercare.mail.policy.check_pace`);
- the body: ``<locale>/<template>.sms`` from the same template folders as mail
  (SMS), or the shop's approved WhatsApp template filled from the context.

Twilio answers 201 with the message's SID; its refusals are permanent
(``21610``, the number replied STOP: dropped as no consent), 429 and 5xx are
retried. The account SID and token come from the environment variables
``[mail.sms]`` names; neither appears in a reason or a log line.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2
import requests

from aftercare import hookimpl
from aftercare.actions import ActionDropped, ActionJob, ActionKind, ActionRecord, ReasonCode
from aftercare.config.sms import SmsSettings
from aftercare.mail import policy
from aftercare.mail.templates import (
    TemplateError,
    default_context,
    environment,
    format_locale_for,
    locale_chain,
    template_roots,
)
from aftercare.models import ConsentState, Order
from aftercare.platform import PlatformError

if TYPE_CHECKING:
    from aftercare.app import App

#: Twilio's "the recipient replied STOP to this sender": never retried, the customer said no.
UNSUBSCRIBED_RECIPIENT = 21610
_DIGITS = re.compile(r"\+?\d[\d ()-]{5,}\d")


@hookimpl
def register_channels(register):
    channel = TextChannel()
    register(ActionKind.SEND_SMS.value, channel, refuses=channel.refuses)
    register(ActionKind.SEND_WHATSAPP.value, channel, refuses=channel.refuses)


class TextChannel:
    """The executor of both kinds; one HTTP session per app, reused across texts."""

    def __init__(self) -> None:
        self._session: requests.Session | None = None
        self._lock = threading.Lock()

    def __call__(self, job: ActionJob) -> dict[str, Any]:
        action, app = job.action, job.app
        settings = job.mail_settings.sms
        whatsapp = action.kind is ActionKind.SEND_WHATSAPP
        p = action.payload
        check_send(job)
        form = {"To": p["to"]}
        if whatsapp:
            form |= whatsapp_form(app, action, job.order, settings)
        else:
            form |= {"Body": render_sms(app, action, job.order)}
            if settings.messaging_service_sid:
                form["MessagingServiceSid"] = settings.messaging_service_sid
            else:
                form["From"] = settings.from_number
        answer = self.post(settings, form)
        return {"sid": answer.get("sid", ""), "status": answer.get("status", ""), "to": p["to"]}

    def refuses(self, job: ActionJob) -> ActionDropped | None:
        """Whether the text would be refused for good if it went now: off, no number, no consent, frequency cap."""
        return policy.refused_for_good(lambda: check_send(job))

    def post(self, settings: SmsSettings, form: Mapping[str, str]) -> dict[str, Any]:
        """POST one message to Twilio; its answer, or PlatformError in our own words."""
        sid, token = credentials(settings)
        url = f"{settings.api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        try:
            response = self.session().post(url, data=dict(form), auth=(sid, token), timeout=settings.timeout_seconds)
        except requests.RequestException as exc:
            # Only the exception's kind: its text holds the URL, which holds the account SID.
            raise PlatformError(f"Twilio unreachable: {type(exc).__name__}", transient=True) from None
        if response.status_code in (200, 201):
            return _json(response)
        raise refusal(response)

    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = requests.Session()
            return self._session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()


def check_send(job: ActionJob) -> None:
    """Raise :class:`ActionDropped` or :class:`ActionDeferred` if the text must not go now (the
    module's list, up to the body)."""
    action, settings, p = job.action, job.mail_settings.sms, job.action.payload
    if not settings.enabled:
        raise ActionDropped("texts are off for this shop ([mail.sms] enabled = false)", ReasonCode.CHANNEL_OFF)
    if action.kind is ActionKind.SEND_WHATSAPP and not settings.whatsapp_from:
        raise ActionDropped("WhatsApp is off for this shop ([mail.sms] has no whatsapp_from)", ReasonCode.CHANNEL_OFF)
    if not p.get("to"):
        raise ActionDropped(f"no number to text: {p.get('phone_problem') or 'none given'}", ReasonCode.NO_RECIPIENT)
    transactional = bool(p.get("transactional", False))
    check_consent(job.order, transactional)
    if not transactional:
        policy.check_pace(job.app, action, job.mail_settings, customer=action.customer_email)


def credentials(settings: SmsSettings) -> tuple[str, str]:
    sid, token = os.environ.get(settings.account_sid_env, ""), os.environ.get(settings.auth_token_env, "")
    missing = [name for name, value in ((settings.account_sid_env, sid), (settings.auth_token_env, token)) if not value]
    if missing:
        raise PlatformError(f"texts: the environment variable {' and '.join(missing)} is not set", transient=False)
    return sid, token


def check_consent(order: Order | None, transactional: bool) -> None:
    """SMS consent is the platform's, kept apart from email's: STOP means no text at all;
    marketing texts need an explicit yes."""
    state = order.customer.sms_consent if order is not None else ConsentState.UNKNOWN
    if state is ConsentState.UNSUBSCRIBED:
        raise ActionDropped("the customer unsubscribed from texts", ReasonCode.NO_CONSENT)
    if not transactional and state is not ConsentState.SUBSCRIBED:
        raise ActionDropped(f"no consent to marketing texts (the platform says {state.value})", ReasonCode.NO_CONSENT)


def refusal(response: requests.Response) -> Exception:
    """Twilio's error answer as our error: its code and message, numbers masked."""
    body = _json(response)
    code, message = body.get("code"), _DIGITS.sub("<number>", str(body.get("message", "")))[:200]
    if code == UNSUBSCRIBED_RECIPIENT:
        return ActionDropped("the number replied STOP to the shop's sender (Twilio 21610)", ReasonCode.NO_CONSENT)
    said = f"{code}: {message}" if code else f"HTTP {response.status_code}"
    if response.status_code == 401:
        return PlatformError(f"Twilio refused the account SID or auth token ({said})", transient=False)
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return PlatformError(f"Twilio busy: {said}", transient=True, retry_after=wait)
    return PlatformError(f"Twilio refused the message: {said}", transient=False)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- the body -----------------------------------------------------------------------------


def render_sms(app: App, action: ActionRecord, order: Order | None) -> str:
    """``<locale>/<template>.sms``, found as mail templates are (shop, bundle, plugin, core
    folders; the reader's locale, then the shop's), rendered with the mail's variables."""
    p = action.payload
    shop = app.shop(action.shop_id).profile
    roots = template_roots(app, action.shop_id, action.plugin)
    chain = locale_chain(p.get("locale", ""), shop.locale)
    name = f"{p['template']}.sms"
    locale = next((loc for loc in chain if any((r.path / loc / name).is_file() for r in roots)), None)
    if locale is None:
        raise TemplateError(f"no text template {name!r} for locales {', '.join(chain)}")
    chain = chain[chain.index(locale) :]
    env = environment(roots, chain, format_locale_for(p.get("locale", ""), locale), shop.timezone)
    variables = {**default_context(order, shop), **p.get("context", {}), "locale": locale}
    try:
        return " ".join(env.get_template(name).render(variables).split())
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{name} ({locale}): {type(exc).__name__}: {exc}") from None


def whatsapp_form(app: App, action: ActionRecord, order: Order | None, settings: SmsSettings) -> dict[str, str]:
    """The approved template's SID and its variables, each a Jinja expression over the mail's variables."""
    p = action.payload
    approved = settings.whatsapp_templates.get(p["template"])
    if approved is None:
        raise ActionDropped(
            f"no approved WhatsApp template for {p['template']!r} ([mail.sms.whatsapp_templates])",
            ReasonCode.CHANNEL_OFF,
        )
    shop = app.shop(action.shop_id).profile
    env = environment([], [], format_locale_for(p.get("locale", ""), shop.locale), shop.timezone)
    variables = {**default_context(order, shop), **p.get("context", {})}
    values = {}
    for n, expression in enumerate(approved.variables, start=1):
        try:
            values[str(n)] = str(env.compile_expression(expression, undefined_to_none=False)(variables))
        except jinja2.TemplateError as exc:
            raise TemplateError(f"WhatsApp variable {n} of {p['template']!r} ({expression}): {exc}") from None
    return {
        "To": f"whatsapp:{p['to']}",
        "From": f"whatsapp:{settings.whatsapp_from}",
        "ContentSid": approved.content_sid,
        "ContentVariables": json.dumps(values, ensure_ascii=False),
    }
