"""The shop's brand in its mail: what the layout gets as ``brand``, CSS inlining, and the checks.

``[mail.brand]`` (:class:`aftercare.config.mail.BrandSettings`, merged per shop
like the rest of ``[shops.mail]``) gives the logo, the accent colour, the
shop's URL, the postal address and the support contact. The one layout
(``_mail_frame.html``, shared by every locale) puts the logo and the accent
colour in the header, the address and the support contact in the footer.

The layout keeps its rules in a ``<style>`` block, which many clients strip
(Gmail's apps without a Google account, Outlook's Word engine ignores most of
it): :func:`inline_css` moves every rule into ``style=""`` attributes with
css-inline, the merchant's ``brand.css`` after the layout's own so it wins.
css-inline (Rust, html5ever's parser) rather than premailer: premailer is
unmaintained since 2021 and pulls lxml and cssutils; css-inline is one wheel
with no dependencies, never fetches a remote stylesheet here
(``load_remote_stylesheets=False``), and keeps Outlook's conditional comments.

Why the postal address is a ``check`` error and not a load error: a running
deployment that upgrades must keep sending its transactional mail (tracking
notices, return acknowledgements) while the merchant adds the address; a
production shop whose enabled plugins send marketing mail and that has no
``postal_address`` fails ``aftercare check`` (which a deploy runs first).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftercare.config.mail import BrandSettings

if TYPE_CHECKING:
    from aftercare.app import App

#: A plugin says whether it sends marketing mail with ``MARKETING_MAIL = True`` or ``False`` at module
#: level; one that does not say is taken to when it ships mail templates of its own.
MARKETING_ATTRIBUTE = "MARKETING_MAIL"


class BrandError(Exception):
    """The brand's CSS file cannot be read; says which file."""


def brand_context(brand: BrandSettings, shop_name: str) -> dict[str, Any]:
    """``brand`` in every template: the settings, plus what the layout derives from them."""
    accent = brand.accent_color
    return {
        "name": shop_name,
        "logo_url": brand.logo_url,
        "logo_width": brand.logo_width,
        "accent": accent,
        #: Text on the accent colour: white on a dark accent, near-black on a light one (WCAG luminance).
        "on_accent": "#ffffff" if _luminance(accent) < 0.45 else "#111827",
        #: Links in the text: the accent when it reads on white (contrast 4.5:1, WCAG AA), else blue.
        "link": accent if _luminance(accent) <= 0.18 else "#1d4ed8",
        "shop_url": brand.shop_url,
        "address_lines": [line.strip() for line in brand.postal_address.splitlines() if line.strip()],
        "support_email": brand.support_email,
        "support_url": brand.support_url,
    }


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def brand_css(app: App, brand: BrandSettings) -> str:
    """The merchant's CSS file, read (relative to the config file); "" when none is set."""
    if not brand.css:
        return ""
    path = app.config.resolve_path(brand.css)
    try:
        return _read(path, path.stat().st_mtime_ns)
    except OSError as exc:
        raise BrandError(f"[mail.brand] css: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BrandError(f"[mail.brand] css: {path} is not UTF-8 text") from None


@lru_cache(maxsize=32)
def _read(path: Path, _mtime: int) -> str:
    return path.read_text(encoding="utf-8")


def inline_css(html: str, extra_css: str = "") -> str:
    """Every rule of the HTML's ``<style>`` blocks (and ``extra_css`` after them) moved into
    ``style`` attributes; the ``<style>`` blocks are dropped. No remote stylesheet is fetched."""
    import css_inline  # one wheel, loaded only when a mail is composed

    inliner = css_inline.CSSInliner(load_remote_stylesheets=False, extra_css=extra_css or None)
    return inliner.inline(html)


def marketing_plugins(app: App, shop_id: str) -> list[str]:
    """The shop's enabled plugins that may send marketing mail."""
    from aftercare.mail.templates import plugin_templates

    found = []
    for name in app.shop(shop_id).enabled_plugins():
        plugin = app.plugins.pm.get_plugin(name)
        declared = getattr(plugin, MARKETING_ATTRIBUTE, None)
        if declared is True or (declared is None and plugin_templates(app, name) is not None):
            found.append(name)
    return found


def brand_problems(app: App) -> list[str]:
    """One line per shop whose brand cannot go out: no postal address on a production shop that
    sends marketing mail, or a CSS file that cannot be read."""
    problems = []
    for shop in app.shops.values():
        index = app.config.shop_index(shop.id)
        brand = app.mail_settings(shop.id).brand
        senders = marketing_plugins(app, shop.id)
        if shop.config.production and senders and not brand.postal_address.strip():
            problems.append(
                f"shops[{index}].mail.brand.postal_address: shop {shop.id!r} is in production and sends "
                f"marketing mail ({', '.join(senders)}), which must carry the sender's postal address "
                f"(EU rules, CAN-SPAM): set it in [shops.mail.brand] or [mail.brand]"
            )
        try:
            brand_css(app, brand)
        except BrandError as exc:
            problems.append(f"shops[{index}].mail.brand.css: {str(exc).removeprefix('[mail.brand] css: ')}")
    return problems
