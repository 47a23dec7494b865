"""The Twilio sandbox answers the text channel as Twilio's Messages API does: 201 and a message SID
for the account's own Basic auth, Twilio's error codes otherwise; it keeps what it accepted. The
channel's own code (aftercare.mail.sms) posts to it over HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
import requests

from aftercare.config.sms import SmsSettings
from aftercare.mail.sms import TextChannel
from aftercare.platform import PlatformError
from aftercare.sandbox.twilio import TwilioSandbox


@pytest.fixture
def twilio():
    with TwilioSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def channel(twilio, monkeypatch):
    for name, value in twilio.environment().items():
        monkeypatch.setenv(name, value)
    made = TextChannel()
    yield made
    made.close()


def settings(twilio) -> SmsSettings:
    return SmsSettings(enabled=True, from_number="+15005550006", **twilio.sms_settings())


def test_the_channel_posts_a_text_and_the_sandbox_keeps_it(twilio, channel):
    answer = channel.post(settings(twilio), {"To": "+34612345678", "From": "+15005550006", "Body": "¡En camino!"})

    assert answer["sid"].startswith("SM") and len(answer["sid"]) == 34 and answer["status"] == "queued"
    assert answer["account_sid"] == twilio.account_sid and answer["to"] == "+34612345678"
    (message,) = twilio.messages
    assert (message.sid, message.to, message.from_, message.body) == (
        answer["sid"], "+34612345678", "+15005550006", "¡En camino!"
    )  # fmt: skip
    listed = requests.get(
        f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Messages.json",
        auth=(twilio.account_sid, twilio.auth_token), timeout=5,
    ).json()  # fmt: skip
    assert [m["sid"] for m in listed["messages"]] == [answer["sid"]]


def test_other_credentials_are_refused_as_twilio_refuses_them_and_nothing_is_kept(twilio, channel, monkeypatch):
    monkeypatch.setenv(twilio.sms_settings()["auth_token_env"], "not-the-token")
    with pytest.raises(PlatformError) as refused:
        channel.post(settings(twilio), {"To": "+34612345678", "From": "+15005550006", "Body": "hi"})
    assert "Twilio refused the account SID or auth token (20003: Authenticate)" in str(refused.value)
    assert not refused.value.transient and "not-the-token" not in str(refused.value)

    url = f"{twilio.url}/2010-04-01/Accounts/AC{'0' * 32}/Messages.json"  # the right token, another account's path
    answer = requests.post(url, data={"To": "+1", "Body": "x"}, auth=(twilio.account_sid, twilio.auth_token), timeout=5)
    assert answer.status_code == 401 and answer.json()["code"] == 20003
    assert twilio.messages == []


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": "+15005550006", "Body": "hi"}, 21604),
        ({"To": "+34612345678", "Body": "hi"}, 21603),
        ({"To": "+34612345678", "From": "+15005550006"}, 21602),
    ],
)
def test_an_incomplete_message_gets_twilios_code(twilio, channel, form, code):
    with pytest.raises(PlatformError) as refused:
        channel.post(settings(twilio), form)
    assert f"Twilio refused the message: {code}:" in str(refused.value)
    assert twilio.messages == []


def test_each_sandbox_makes_up_its_own_account():
    first, second = TwilioSandbox(), TwilioSandbox()
    assert first.account_sid != second.account_sid and first.auth_token != second.auth_token
    assert first.account_sid.startswith("AC") and len(first.account_sid) == 34
