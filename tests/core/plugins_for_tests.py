"""Small plugins the core tests register: each is an ordinary pluggy plugin."""

from __future__ import annotations

from aftercare import hookimpl
from aftercare.settings import PluginSettings


class ThankYou:
    """Coupon plus a thank-you mail carrying its code; a note a week later."""

    name = "thank_you"

    class Settings(PluginSettings):
        percent: int = 10

    @hookimpl
    def on_order_paid(self, event, ctx):
        coupon = ctx.create_coupon(percent=ctx.settings.percent)
        ctx.send_email("thank_you", context={"code": coupon.payload["code"]}, after=coupon)
        ctx.later(days=7).add_order_note("a week has passed", key="week")

    @hookimpl
    def on_order_cancelled(self, event, ctx):
        ctx.cancel("week", reason="order cancelled")


class Broken:
    name = "broken"

    def __init__(self):
        self.calls = 0
        self.fail = True

    @hookimpl(tryfirst=True)
    def on_order_paid(self, event, ctx):
        self.calls += 1
        ctx.tag_order("half-made")  # discarded: the hook raises after asking
        if self.fail:
            raise RuntimeError("boom")


class Mailbox:
    """A send_email channel that keeps what it was given (the mail channel's stand-in)."""

    name = "mailbox"

    def __init__(self):
        self.sent = []

    @hookimpl
    def register_channels(self, register):
        register("send_email", self.send)

    def send(self, action, app):
        self.sent.append(action.payload)
        return {"message_id": f"<{action.id}@test>"}
