"""The console's charts in Chromium at 390 px (issue #20): every SVG text at least 11 px as drawn,
no two texts of a chart overlapping (real glyph boxes), and the page does not scroll sideways."""

from .conftest import log_in

MEASURE = """() => [...document.querySelectorAll('svg.chart')].map(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  const texts = [...svg.querySelectorAll('text')].map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, px: parseFloat(t.getAttribute('font-size')) * scale,
            left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  });
  return {title: svg.getAttribute('aria-label'), texts};
})"""


def overlaps(a, b):
    return (
        a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and a["top"] < b["bottom"] - 0.5
        and (b["top"] < a["bottom"] - 0.5)
    )


def test_charts_are_readable_at_390_px(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server["url"])
    page = context.new_page()
    try:
        log_in(page, "agency")  # one login: the other tests sign nora in up to her per-minute limit
        for url in ("/console/shops/north/surveys", "/console/shops/north/report?since=2020-01-01"):
            check(page, url)
    finally:
        context.close()


def check(page, url):
    page.goto(url)
    charts = page.evaluate(MEASURE)
    assert charts, (url, page.content()[-1500:])
    for chart in charts:
        for t in chart["texts"]:
            assert t["px"] >= 11, (chart["title"], t["text"], round(t["px"], 1))
        texts = [t for t in chart["texts"] if t["text"].strip()]
        clashes = [(a["text"], b["text"]) for i, a in enumerate(texts) for b in texts[i + 1 :] if overlaps(a, b)]
        assert not clashes, (chart["title"], clashes)
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
