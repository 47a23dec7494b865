"""Every mail of a demo week, opened in Chromium at a 375 px phone's width: nothing wider than the
screen, and no coupon code broken over two lines.

The week is the README's demo (both sandbox shops, every built-in plugin, their brands), played
in this process; each .eml's HTML part is loaded with every network request refused, so the
shops' logo URLs stay unfetched and nothing leaves the machine.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import pytest

from aftercare.sandbox.deployment import deployment, run_week

#: The codes the coupon plugin makes: PREFIX-XXXXX-XXXXX.
CODE = re.compile(r"\b[A-Z0-9]+-[A-Z0-9]{5}-[A-Z0-9]{5}\b")

#: For each coupon code drawn on the page (the hidden preheader has one too): the number of
#: lines it is laid out on and where its box ends; and how wide the page is.
MEASURE = """(pattern) => {
  const re = new RegExp(pattern, "g");
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.data.matchAll(re)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
      if (tops.size === 0) continue;  // not drawn: the hidden preheader
      const box = range.getBoundingClientRect();
      found.push({code: match[0], lines: tops.size, right: box.right, left: box.left});
    }
  }
  return {
    found,
    scrollWidth: document.documentElement.scrollWidth,
    bodyWidth: document.body.scrollWidth,
    width: window.innerWidth,
  };
}"""


@pytest.fixture(scope="module")
def demo_mails(tmp_path_factory):
    """The HTML of every mail of a (shortened) demo week, by outbox file name."""
    folder = tmp_path_factory.mktemp("demo-week")
    with deployment(folder) as running:
        run_week(running, orders_per_shop=8, days=6)
        paths = sorted(running.outbox.glob("*.eml"))
    mails = {}
    for path in paths:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        mails[path.name] = message.get_body(("html",)).get_content()
    return mails


@pytest.mark.timeout(300)
def test_every_demo_mail_fits_a_375px_phone_and_keeps_coupon_codes_whole(browser, demo_mails):
    templates = {name.rsplit("-", 1)[-1].removesuffix(".eml") for name in demo_mails}
    assert {"coupon", "reward_coupon", "satisfaction_survey", "newsletter_invite", "shipped"} <= templates, templates
    context = browser.new_context(viewport={"width": 375, "height": 800})
    context.route("**/*", lambda route: route.abort())  # no logo fetched, nothing leaves 127.0.0.1
    page = context.new_page()
    problems, codes = [], 0
    try:
        for name, html in demo_mails.items():
            page.set_content(html, wait_until="domcontentloaded")
            seen = page.evaluate(MEASURE, CODE.pattern)
            if seen["scrollWidth"] > seen["width"] or seen["bodyWidth"] > seen["width"]:
                problems.append(f"{name}: {seen['scrollWidth']} px wide on a {seen['width']} px screen")
            for code in seen["found"]:
                codes += 1
                if code["lines"] != 1:
                    problems.append(f"{name}: {code['code']} broken over {code['lines']} lines")
                if code["left"] < 0 or code["right"] > seen["width"]:
                    problems.append(f"{name}: {code['code']} runs off the screen ({code['right']:.0f} px)")
    finally:
        context.close()
    assert codes >= 2, "the week's coupon mails should show their codes"
    assert problems == []


def test_the_measure_catches_a_wrapped_code_and_an_overflowing_table(browser):
    """The check above can fail: a long code in a narrow cell wraps, a 600 px table overflows."""
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        page.set_content('<p style="width:80px;font:20px monospace;overflow-wrap:anywhere">THANKS-7Q2XM-4KD9P</p>'
                         '<table width="600"><tr><td>wide</td></tr></table>')  # fmt: skip
        seen = page.evaluate(MEASURE, CODE.pattern)
    finally:
        context.close()
    assert seen["found"][0]["lines"] > 1
    assert seen["scrollWidth"] > seen["width"]
