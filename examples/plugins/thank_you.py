"""A coupon for the next purchase, a mail with its code, and a check-in a week after delivery."""

from datetime import timedelta

from aftercare import hookimpl
from aftercare.settings import PluginSettings


class Settings(PluginSettings):
    percent: int = 10
    valid_days: int = 30


@hookimpl
def on_order_paid(event, ctx):
    days = timedelta(days=ctx.settings.valid_days)
    coupon = ctx.create_coupon(percent=ctx.settings.percent, expires_in=days)
    ctx.send_email("thank_you", context={"code": coupon.payload["code"]}, after=coupon)


@hookimpl
def on_delivered(event, ctx):
    ctx.later(days=7).send_email("how_was_it", key="how-was-it")
