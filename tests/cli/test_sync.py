"""``sync_shops``: a shop that fails is reported with what was stored before it failed (the CLI's
test_errors checks that the next shop is synced); a shop that never answered a page is given up
on after two resumes, one that did after ten."""

from aftercare.platform import PlatformError, PollBatch
from aftercare.sync import MAX_RESUMES, MAX_RESUMES_UNANSWERED, sync_shops
from aftercare.testing import make_event, make_order
from aftercare.worker import Worker


def polls(app, shop_id, pages_before_failing):
    """The shop's poll: ``pages_before_failing`` pages, then a 1 ms pause the client gives back, for ever."""
    asked = []

    def poll(cursor, since=None):
        asked.append(cursor)
        start = int(cursor or 0)
        for n in range(start, pages_before_failing):
            order = make_order(f"{shop_id}-{n}", shop_id=shop_id)
            yield PollBatch([make_event("order_paid", order, key=f"{shop_id}-{n}")], cursor=str(n + 1), orders_seen=1)
        raise PlatformError("the platform is down", transient=True, retry_after=0.001)

    app.adapter(shop_id).poll = poll
    return asked


def test_a_failing_shop_is_reported_and_given_up_on_sooner_if_it_never_answered(aftercare_app):
    app = aftercare_app()
    never = polls(app, "test", 0)
    reports = sync_shops(app, Worker(app).queue, ["test"])
    assert [(r.shop_id, r.orders, r.error) for r in reports] == [("test", 0, "the platform is down")]
    assert len(never) == 1 + MAX_RESUMES_UNANSWERED  # the first try and its resumes

    answered = polls(app, "test", 2)
    [report] = sync_shops(app, Worker(app).queue, ["test"])
    assert (report.orders, report.new_events, report.failed) == (2, 2, True)
    assert len(answered) == 1 + MAX_RESUMES and app.store.get_cursor("test") == "2"
