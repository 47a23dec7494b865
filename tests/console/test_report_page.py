"""The console's report: the period takes in what was done this very hour, the figures are the CLI's
(``aftercare.report.shop_reports``), and a redeemed coupon counts (issue #20)."""

import re
from dataclasses import replace

from aftercare.dispatch import Dispatcher, execute_due
from aftercare.report import rows, shop_reports
from aftercare.testing import make_event, make_order

from .conftest import later, login
from .test_search_and_messages import Mailer, mail_app, mail_client  # noqa: F401  (fixtures)


def figure(page, name):
    match = re.search(rf"<tr><td>{re.escape(name)}</td><td>([^<]*)</td></tr>", page)
    assert match, name
    return match.group(1)


def test_mail_done_this_minute_counts_and_the_page_matches_the_cli(mail_client, mail_app):  # noqa: F811
    order = make_order("1", shop_id="north")
    mail_app.adapter("north").put_order(order)
    Dispatcher(mail_app).dispatch(make_event("order_paid", order, occurred_at=mail_app.now(), key="p1"))
    execute_due(mail_app)  # done at exactly app.now(): a period ending "now" left it out
    login(mail_client, "nora")
    page = mail_client.get("/console/shops/north/report").text
    assert figure(page, "emails sent: mailer") == "1" and figure(page, "coupons issued") == "1"
    (cli,) = shop_reports(mail_app, "north", None, None)  # what `aftercare report --shop north` prints
    assert cli.emails_sent == {"mailer": 1}
    for name, value in rows(cli):
        assert figure(page, name) == value.replace("&", "&amp;"), name
    today = mail_app.now().date().isoformat()
    assert f'name="until" value="{today}"' in page


def test_a_coupon_used_on_a_later_order_counts_as_redeemed(mail_client, mail_app):  # noqa: F811
    first = make_order("1", shop_id="north")
    mail_app.adapter("north").put_order(first)
    Dispatcher(mail_app).dispatch(make_event("order_paid", first, occurred_at=mail_app.now(), key="p1"))
    execute_due(mail_app)
    (coupon,) = [a for a in mail_app.store.order_actions("north", "order-1") if a.kind.value == "create_coupon"]
    code = coupon.result.get("code") or coupon.payload["code"]
    later(mail_app, 3)
    second = replace(make_order("2", shop_id="north"), discount_codes=(f" {code.lower()} ",))
    mail_app.adapter("north").put_order(second)
    Dispatcher(mail_app).dispatch(make_event("order_paid", second, occurred_at=mail_app.now(), key="p2"))
    login(mail_client, "nora")
    page = mail_client.get("/console/shops/north/report").text
    assert figure(page, "coupons redeemed") == "1"
