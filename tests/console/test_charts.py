"""The console's SVG charts at phone width (issue #20): whole-number ticks on counts, labels that
never overlap, a single point shown as its figure, panels only for the survey kinds a shop uses."""

import itertools
import re
from datetime import timedelta

import pytest

from aftercare.console.charts import FONT, GLYPH, WIDTH, bar_chart, count_ticks, line_chart, scale_ticks
from aftercare.models import SurveyAnswer, SurveyKind, SurveyPurpose
from aftercare.testing import START

from .conftest import login

PLUGINS = ["coupon", "newsletter_optin", "review_request", "satisfaction_survey", "tracking_notice", "usage_tips"]


def texts(svg):
    """(x, y, anchor, text) of every visible text element (a <title> inside is not drawn)."""
    found = []
    for attrs, body in re.findall(r"<text ([^>]*)>(.*?)</text>", str(svg)):
        body = re.sub(r"<title>.*?</title>", "", body)
        x, y = (float(re.search(rf'{k}="([-\d.]+)"', attrs).group(1)) for k in ("x", "y"))
        anchor = re.search(r'text-anchor="(\w+)"', attrs)
        size = float(re.search(r'font-size="([\d.]+)"', attrs).group(1))
        found.append((x, y, anchor.group(1) if anchor else "start", body, size))
    return found


def boxes(svg):
    """Each text's horizontal extent and its line, from the same glyph width the charts assume."""
    out = []
    for x, y, anchor, body, size in texts(svg):
        width = len(body) * size * GLYPH
        left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
        out.append((round(y), left, left + width, body))
    return out


def overlapping(svg):
    by_line = {}
    for y, left, right, body in boxes(svg):
        by_line.setdefault(y, []).append((left, right, body))
    clashes = []
    for items in by_line.values():
        items.sort()
        clashes += [(a[2], b[2]) for a, b in itertools.pairwise(items) if b[0] < a[1]]
    return clashes


@pytest.mark.parametrize("top", [1, 3, 5, 7, 12, 25, 78, 151, 999])
def test_count_axes_tick_at_whole_numbers(top):
    ticks = count_ticks(top)
    assert all(float(t).is_integer() for t in ticks) and ticks[0] == 0 and ticks[-1] >= top
    assert len(ticks) <= 6 and len({b - a for a, b in itertools.pairwise(ticks)}) == 1


def test_score_axes_divide_their_scale_evenly():
    assert scale_ticks(1, 7) == [1, 2, 3, 4, 5, 6, 7]
    assert scale_ticks(-100, 100) == [-100, -50, 0, 50, 100]
    assert scale_ticks(0, 100) == [0, 20, 40, 60, 80, 100]


def test_text_is_at_least_11_px_when_the_chart_is_358_px_wide():
    chart = bar_chart("Emails sent per plugin", PLUGINS, [12, 3, 28, 9, 40, 2])
    scale = (358 - 10) / WIDTH  # a 390 px phone less the page's padding and the chart's own
    assert min(size for *_rest, size in texts(chart)) * scale >= 11
    assert FONT * scale >= 11


def test_long_labels_turn_the_bars_sideways_and_nothing_overlaps():
    chart = bar_chart("Emails sent per plugin", PLUGINS, [12, 3, 28, 9, 40, 2])
    assert not overlapping(chart)
    assert all(p[:10] in str(chart) for p in PLUGINS)
    grouped = bar_chart("Coupons", ["issued", "redeemed"], [41, 0])
    ticks = [body for _x, _y, anchor, body, _size in texts(grouped) if anchor == "end"]
    assert not overlapping(grouped) and ticks == ["0", "10", "20", "30", "40", "50"]
    scores = bar_chart("NPS scores (40 answers)", [str(s) for s in range(11)], [3, 0, 1, 2, 4, 3, 5, 7, 2, 8, 5])
    assert not overlapping(scores)


def test_a_line_of_one_point_is_its_figure_and_week():
    labels = [(START + timedelta(weeks=w)).strftime("%d %b") for w in range(12)]
    one = line_chart("CSAT per week", labels, {"CSAT": [None] * 11 + [80.0]}, high=100, unit="%",
                     counts={"CSAT": [0] * 11 + [10]})  # fmt: skip
    assert "<path" not in str(one) and "<circle" not in str(one)
    assert ">80%</text>" in str(one) and f"CSAT, week of {labels[-1]} · 10 answers" in str(one)
    none = line_chart("NPS per week", labels, {"NPS": [None] * 12}, low=-100, high=100)
    assert "No answers in these weeks." in str(none)
    two = line_chart("CSAT per week", labels, {"CSAT": [None] * 10 + [50.0, 80.0]}, high=100)
    assert "<path" in str(two) and not overlapping(two)


def test_the_surveys_page_has_panels_only_for_the_kinds_the_shop_uses(client, console_app):
    login(client, "nora")
    with console_app.store.transaction() as conn:
        for n, score in enumerate((5, 4, 2)):
            console_app.store.record_survey_answer(conn, shop_id="north", order_id=f"o{n}", email="a@example.com",
                                                   answer=SurveyAnswer(SurveyKind.CSAT, score, START),
                                                   source="test")  # fmt: skip
    page = client.get("/console/shops/north/surveys").text
    assert page.count('<svg class="chart"') == 2  # CSAT per week and CSAT scores: no NPS, no CES panels
    assert "NPS" not in page and "CES" not in page
    assert "the only week with answers" in page  # three answers in one week: a figure, not a line of one dot


def test_relationship_nps_has_panels_of_its_own_never_mixed_into_the_order_surveys(client, console_app):
    login(client, "nora")
    answers = [(SurveyKind.CSAT, 5, SurveyPurpose.ORDER), (SurveyKind.CSAT, 4, SurveyPurpose.ORDER),
               (SurveyKind.NPS, 10, SurveyPurpose.RELATIONSHIP), (SurveyKind.NPS, 3, SurveyPurpose.RELATIONSHIP),
               (SurveyKind.NPS, 9, SurveyPurpose.RELATIONSHIP)]  # fmt: skip
    with console_app.store.transaction() as conn:
        for n, (kind, score, purpose) in enumerate(answers):
            console_app.store.record_survey_answer(
                conn, shop_id="north", order_id=f"o{n}", email="a@example.com", source="test",
                answer=SurveyAnswer(kind, score, START, "Slow replies" if score == 3 else "", purpose),
            )  # fmt: skip
    page = client.get("/console/shops/north/surveys").text
    assert re.findall(r'<svg class="chart"[^>]* aria-label="([^"]*)"', page) == [  # no post-order NPS panel
        "CSAT per week (% of 4 and 5)", "Relationship NPS per week",
        "CSAT scores (2 answers)", "Relationship NPS scores (3 answers)",
    ]  # fmt: skip
    assert "33.3" in page  # the relationship NPS of 10, 3, 9: its own figure (two promoters, one detractor of 3)
    assert "nps (relationship)" in page  # the comment says which survey it answers


def test_a_shop_asking_the_relationship_survey_gets_its_panels_before_any_answer(tmp_path):
    from aftercare.console.web import survey_panels
    from aftercare.plugins import satisfaction_survey

    from .conftest import make_app

    settings = {"enabled": True, "kind": "csat", "every_months": 6}
    app = make_app(tmp_path, plugins=[("satisfaction_survey", satisfaction_survey)],
                   plugin_config={"satisfaction_survey": settings})  # fmt: skip
    try:
        assert survey_panels(app, "north", []) == [(SurveyPurpose.ORDER, SurveyKind.CSAT),
                                                   (SurveyPurpose.RELATIONSHIP, SurveyKind.NPS)]  # fmt: skip
    finally:
        app.close()
    app = make_app(tmp_path / "off", plugins=[("satisfaction_survey", satisfaction_survey)],
                   plugin_config={"satisfaction_survey": {"enabled": True, "kind": "nps"}})  # fmt: skip
    try:
        assert survey_panels(app, "north", []) == [(SurveyPurpose.ORDER, SurveyKind.NPS)]
    finally:
        app.close()


def test_the_plugins_page_shows_values_plainly_not_as_python_reprs(tmp_path, password_hash):
    from starlette.testclient import TestClient

    from aftercare.asgi import create_asgi_app
    from aftercare.plugins import coupon
    from aftercare.queue import Enqueuer

    from .conftest import add_user, make_app

    app = make_app(tmp_path, plugins=[("coupon", coupon)],
                   plugin_config={"coupon": {"enabled": True, "prefix": "THANKS",
                                             "reward_for": ["optin_confirmed", "survey_answered"]}})  # fmt: skip
    add_user(app, "nora", ["north"], password_hash)
    with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1") as c:
        login(c, "nora")
        page = c.get("/console/shops/north/plugins").text
    app.close()
    assert "<code>THANKS</code>" in page and "<code>optin_confirmed, survey_answered</code>" in page
    assert "<code>10</code>" in page and "<code>-</code>" in page  # value, minimum_spend
    values = re.findall(r"<td><code>(.*?)</code></td>", page)
    assert values and not [v for v in values if v.startswith(("[", "{", "&#39;")) or "Decimal(" in v], values
