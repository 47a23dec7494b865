"""``aftercare report`` against a small history seeded by hand, every figure counted by hand.

The period is 2026-01-10 to 2026-01-19 (whole days, UTC). Who did what:

====== ========================================= ==========================================
who    orders paid (codes used)                   aftercare in the period
====== ========================================= ==========================================
ana    O1 Jan 11 (paid twice: webhook and poll),  mails about O1 (review_request, coupon),
       O4 Jan 15 with "ac-aaaaa-bbbbb"            coupon C1 "AC-AAAAA-BBBBB" Jan 12
bob    O2 Jan 12 with "OLD-CODE",                 mails about O2 (review_request, coupon),
       O5 Jan 25 with "BOB-CODE"                  coupon C2 "BOB-CODE" Jan 13, a return Jan 16
cy     O7 Jan 8 with "CY-CODE", O3 Jan 13         mail about O3 (review_request),
                                                  coupon C3 "CY-CODE" Jan 18
dee    O0 Jan 2                                   mail about O0 (tracking_notice)
====== ========================================= ==========================================

Outside the period or not done (none counts): coupon C0 "OLD-CODE" Jan 5, a mail on Jan 21,
a mail dropped by quiet hours, a failed coupon, a return on Jan 22, a CSAT answer on Jan 8.

Relationship NPS answers (the periodic survey, sent through O1, O2 and O3) on Jan 17, and one on
Jan 21: counted apart from the orders' NPS answers, though O1's and O2's share the order and kind.
"""

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime

from click.testing import CliRunner

from aftercare.actions import ActionState
from aftercare.app import App
from aftercare.cli import cli
from aftercare.clock import ManualClock
from aftercare.context import ActionSink, Context
from aftercare.dispatch import Dispatcher
from aftercare.models import ReturnRequest, SurveyAnswer, SurveyKind, SurveyPurpose
from aftercare.report import period, shop_report
from aftercare.settings import PluginSettings
from aftercare.testing import make_event, make_order

CONFIG = """
plugins_folder = "local"
database = "sqlite:///{db}"
queue = "sqlite:///{queue}"

[[shops]]
id = "test"
platform = "memory"
webhook_secret = "secret"
production = true
"""

MEMORY_PLATFORM = """
from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)
"""


def jan(day, hour=12):
    return datetime(2026, 1, day, hour, tzinfo=UTC)


class History:
    def __init__(self, app):
        self.app = app
        self.orders = {}

    def paid(self, name, email, day, codes=(), key=""):
        order = self.orders.get(name) or make_order(name, email=email, discount_codes=tuple(codes))
        self.orders[name] = order
        self.app.clock.set(jan(day))
        Dispatcher(self.app).dispatch(make_event("order_paid", order, occurred_at=jan(day), key=key or f"paid:{name}"))

    def returned(self, name, day):
        order = replace(self.orders[name], returns=(ReturnRequest(f"r-{name}-{day}", jan(day)),))
        Dispatcher(self.app).dispatch(make_event("return_requested", order, occurred_at=jan(day), key=f"ret:{day}"))

    def action(self, plugin, name, day, *, coupon="", state=ActionState.DONE, key=""):
        """An action of ``plugin`` about order ``name``, ending in ``state`` on ``day``."""
        sink = ActionSink()
        event = make_event("order_paid", self.orders[name])
        ctx = Context(event=event, plugin=plugin, hook="on_order_paid", shop=self.app.shop("test").profile,
                      settings=PluginSettings(), clock=self.app.now, sink=sink)  # fmt: skip
        request = ctx.create_coupon(percent=10, key=key or "coupon") if coupon else ctx.send_email(key or plugin)
        store = self.app.store
        with store.transaction() as conn:
            store.add_actions(conn, [request])
        [record] = store.actions_by_keys([request.idempotency_key])
        self.app.clock.set(jan(day))
        assert store.claim_action(record.id)
        store.finish_action(record.id, state, result={"code": coupon} if coupon else {})

    def answer(self, name, kind, score, day, purpose=SurveyPurpose.ORDER):
        self.app.clock.set(jan(day))
        order = self.orders.get(name) or make_order(name)
        with self.app.store.transaction() as conn:
            self.app.store.record_survey_answer(
                conn, shop_id="test", order_id=order.platform_id, email=order.customer.email,
                answer=SurveyAnswer(SurveyKind(kind), score, jan(day), purpose=purpose), source="survey page",
            )  # fmt: skip


def seed(app):
    h = History(app)
    h.paid("O0", "dee@example.com", 2)
    h.paid("O7", "cy@example.com", 8, ["CY-CODE"])
    h.paid("O1", "ana@example.com", 11)
    h.paid("O1", "ana@example.com", 11, key="poll:O1")  # the same order seen twice
    h.paid("O2", "bob@example.com", 12, ["OLD-CODE"])
    h.paid("O3", "cy@example.com", 13)
    h.paid("O4", "ana@example.com", 15, ["ac-aaaaa-bbbbb"])
    h.paid("O5", "bob@example.com", 25, ["BOB-CODE"])
    h.returned("O2", 16)
    h.returned("O3", 22)

    h.action("coupon", "O0", 5, coupon="OLD-CODE", key="old")  # issued before the period
    h.action("tracking_notice", "O0", 10)
    h.action("review_request", "O1", 12)
    h.action("coupon", "O1", 12)
    h.action("coupon", "O1", 12, coupon="AC-AAAAA-BBBBB")
    h.action("review_request", "O2", 13)
    h.action("coupon", "O2", 13)
    h.action("coupon", "O2", 13, coupon="BOB-CODE")
    h.action("review_request", "O3", 14)
    h.action("coupon", "O3", 18, coupon="CY-CODE")
    h.action("coupon", "O3", 18, coupon="FAILED-CODE", state=ActionState.FAILED, key="failed")
    h.action("usage_tips", "O3", 15, state=ActionState.DROPPED)  # quiet hours, say
    h.action("warranty_reminder", "O1", 21)  # after the period

    h.answer("O1", "csat", 5, 11)
    h.answer("O2", "csat", 2, 12)
    h.answer("O3", "csat", 4, 14)
    h.answer("O0", "csat", 1, 10)
    h.answer("O9", "csat", 5, 8)  # before the period
    for name, score in (("O1", 10), ("O2", 9), ("O3", 8), ("O0", 6)):
        h.answer(name, "nps", score, 16)
    for name, score in (("O1", 2), ("O2", 3), ("O3", 5)):
        h.answer(name, "ces", score, 17)
    for name, score, day in (("O1", 3, 17), ("O2", 10, 17), ("O3", 9, 17), ("O4", 0, 21)):
        h.answer(name, "nps", score, day, SurveyPurpose.RELATIONSHIP)


EXPECTED = {
    "emails_sent": {"coupon": 2, "review_request": 3, "tracking_notice": 1},
    "coupons_issued": 3,  # C1, C2, C3 (C0 is older, the failed one was never issued)
    "coupons_redeemed": 2,  # C1 in O4 (any case), C2 in O5 after the period; C3's code was used before it
    "mailed_customers": 4,  # ana, bob, cy, dee
    "repeat_customers": 2,  # ana (O4 after O1), bob (O5 after O2); cy's O7 and dee's nothing do not count
    "repeat_purchase_rate": 50.0,
    "csat_answers": 4,
    "csat": 50.0,  # 5 and 4 of 5, 2, 4, 1
    "nps_answers": 4,
    "nps": 25.0,  # promoters 10, 9 (2 of 4) minus detractor 6 (1 of 4)
    "ces_answers": 3,
    "ces": 3.33,  # (2 + 3 + 5) / 3
    "relationship_nps_answers": 3,  # O1, O2, O3 on Jan 17 (O4's is after the period)
    "relationship_nps": 33.3,  # promoters 10, 9 (2 of 3) minus detractor 3 (1 of 3); the orders' NPS stays 25
    "paid_orders": 4,  # O1, O2, O3, O4
    "returns": 1,  # O2 on Jan 16
    "complaints": 2,  # CSAT 2 and 1
    "tgw": 75.0,  # (1 + 2) per 4 orders, per 100
}


def test_every_figure_matches_the_hand_count(aftercare_app):
    app = aftercare_app()
    seed(app)
    since, until = period(datetime(2026, 1, 10).date(), datetime(2026, 1, 19).date(), "UTC", app.now())
    assert (since, until) == (jan(10, 0), jan(20, 0))
    report = shop_report(app.store, "test", since, until)
    figures = report.as_dict()
    assert {k: figures[k] for k in EXPECTED} == EXPECTED


def test_an_empty_period_has_no_rates(aftercare_app):
    app = aftercare_app()
    seed(app)
    report = shop_report(app.store, "test", jan(1, 0), jan(2, 0))
    assert (report.emails_sent, report.coupons_issued, report.paid_orders) == ({}, 0, 0)
    assert (report.repeat_purchase_rate, report.csat, report.nps, report.ces, report.tgw) == (None,) * 5
    assert (report.relationship_nps_answers, report.relationship_nps) == (0, None)


def test_period_is_whole_days_in_the_shops_time_zone():
    since, until = period(datetime(2026, 1, 10).date(), datetime(2026, 1, 10).date(), "Europe/Madrid", jan(30))
    assert (since, until) == (datetime(2026, 1, 9, 23, tzinfo=UTC), datetime(2026, 1, 10, 23, tzinfo=UTC))
    # Without dates: the 30 whole days up to the end of today, so what was done at `now` counts too.
    since, until = period(None, None, "UTC", jan(30))
    assert (since, until) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC))
    since, until = period(None, None, "Europe/Madrid", datetime(2026, 1, 30, 23, 30, tzinfo=UTC))  # 00:30 on the 31st
    assert (since, until) == (datetime(2026, 1, 1, 23, tzinfo=UTC), datetime(2026, 1, 31, 23, tzinfo=UTC))


def test_command_prints_json_csv_and_a_table(tmp_path, monkeypatch):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "memory_platform.py").write_text(MEMORY_PLATFORM)
    config = tmp_path / "aftercare.toml"
    config.write_text(CONFIG.format(db=tmp_path / "a.db", queue=tmp_path / "q.db"))
    app = App.from_file(config, clock=ManualClock(jan(1)))
    app.store.upgrade()
    seed(app)
    app.close()
    monkeypatch.chdir(tmp_path)

    def run(*args):
        result = CliRunner().invoke(cli, ["-c", str(config), "report", "--since", "2026-01-10",
                                          "--until", "2026-01-19", *args])  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.output

    [shop] = json.loads(run("--json"))
    assert shop["shop_id"] == "test" and {k: shop[k] for k in EXPECTED} == EXPECTED

    rows = list(csv.DictReader(io.StringIO(run("--csv"))))
    values = {row["figure"]: row["value"] for row in rows}
    assert values["emails_sent.review_request"] == "3" and values["tgw"] == "75.0" and values["nps"] == "25.0"
    assert (values["relationship_nps"], values["relationship_nps_answers"]) == ("33.3", "3")
    assert {row["since"] for row in rows} == {"2026-01-10T00:00:00+00:00"}

    table = run("--shop", "test")
    assert "repeat-purchase rate" in table and "50% (2 of 4 mailed customers)" in table
    assert "relationship NPS" in table and "33.3 (3 answers)" in table

    bad = CliRunner().invoke(cli, ["-c", str(config), "report", "--shop", "nope"])
    assert bad.exit_code == 2 and "no shop 'nope'" in bad.output
    far = CliRunner().invoke(cli, ["-c", str(config), "report", "--until", "9999-12-31"])
    assert far.exit_code == 2 and "--until: 9999-12-31 is out of range" in far.output and "Traceback" not in far.output
