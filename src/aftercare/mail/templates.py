"""Mail templates: where they are found, in which language, and how they render.

A template is three files in a locale folder of a templates root::

    <root>/<locale>/<name>.subject.txt    one line (whitespace is collapsed)
    <root>/<locale>/<name>.txt            the plain-text part
    <root>/<locale>/<name>.html           the HTML part (autoescaped)

Files whose name starts with ``_`` (``_layout.html``, ``_layout.txt``) are
shared pieces that templates ``{% extends %}``. A root may hold
``samples.json``: ``{"<name>": {<variables the plugin passes>}}``, used by
``check_templates`` and ``aftercare preview`` to render without a real send.

Roots, first match wins (so a shop overrides any single file by dropping one
of the same name into its folder):

1. the shop's ``[shops.mail] templates_dir``;
2. the ``templates/`` folder of the shop's bundle (a client's look, shared by its shops);
3. the deployment's ``[mail] templates_dir`` (an agency's house style);
4. the templates of the plugin that asked for the mail: its module's
   ``TEMPLATES`` attribute, or a ``templates/`` folder beside a package
   plugin's ``__init__.py``;
5. the built-in ones in ``aftercare/mail/templates``.

Locale comes before root: a Spanish customer gets the built-in Spanish
template rather than a shop's English override. The chain is the mail's
locale (``es-ES`` then ``es``), the shop's locale, then ``en``.
"""

from __future__ import annotations

import functools
import json
import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from babel.units import format_unit

from aftercare.config.mail import BrandSettings
from aftercare.context import ShopProfile
from aftercare.mail.brand import brand_context
from aftercare.models import Customer, FinancialStatus, LineItem, Money, Order, Shipment, ShipmentStatus

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.bundles import Bundle

BUILTIN = Path(__file__).parent / "templates"
PARTS = {"subject": ".subject.txt", "text": ".txt", "html": ".html"}
SAMPLES_FILE = "samples.json"
FALLBACK_LOCALE = "en"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class TemplateError(Exception):
    """A template is missing, incomplete or does not render; says which file and line."""


@dataclass(frozen=True, slots=True)
class Root:
    path: Path
    source: str  # "shop", "bundle NAME", "deployment", "plugin NAME", "built-in"


@dataclass(frozen=True, slots=True)
class Resolved:
    """Which file wins for each part of one template in one locale."""

    template: str
    locale: str
    files: dict[str, Path]
    sources: dict[str, str]


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    template: str
    locale: str
    subject: str
    text: str
    html: str
    files: dict[str, Path] = field(default_factory=dict)


# -- where templates are ---------------------------------------------------------


def template_roots(app: App, shop_id: str | None, plugin: str = "") -> list[Root]:
    """The search path for a mail of ``plugin`` sent by shop ``shop_id``, first match first."""
    roots: list[Root] = []
    if shop_id is not None and app.shop(shop_id).config.mail.templates_dir:
        roots.append(Root(app.config.resolve_path(app.shop(shop_id).config.mail.templates_dir), "shop"))
    bundle = app.shop(shop_id).bundle if shop_id is not None else None
    if bundle is not None and bundle.templates.is_dir():
        roots.append(bundle_root(bundle))
    if app.config.mail.templates_dir:
        roots.append(Root(app.config.resolve_path(app.config.mail.templates_dir), "deployment"))
    folder = plugin_templates(app, plugin) if plugin else None
    if folder is not None:
        roots.append(Root(folder, f"plugin {plugin}"))
    roots.append(Root(BUILTIN, "built-in"))
    return roots


def bundle_root(bundle: Bundle) -> Root:
    return Root(bundle.templates, f"bundle {bundle.name}")


def plugin_templates(app: App, name: str) -> Path | None:
    """A plugin's templates folder: its ``TEMPLATES`` attribute, or ``templates/`` beside a package."""
    plugin = app.plugins.pm.get_plugin(name)
    if plugin is None:
        return None
    explicit = getattr(plugin, "TEMPLATES", None)
    if explicit:
        return Path(explicit)
    location = Path(app.plugins.info(name).location) if app.plugins.info(name).location else None
    if location is not None and location.name == "__init__.py" and (location.parent / "templates").is_dir():
        return location.parent / "templates"
    return None


def plugins_with_templates(app: App) -> list[str]:
    return [info.name for info in app.plugins.plugins() if plugin_templates(app, info.name) is not None]


def locale_chain(*locales: str) -> list[str]:
    """``("es-ES", "en")`` -> ``["es_ES", "es", "en"]``: most specific first, ``en`` last."""
    chain: list[str] = []
    for tag in (*locales, FALLBACK_LOCALE):
        for candidate in _candidates(tag):
            if candidate not in chain:
                chain.append(candidate)
    return chain


def _candidates(tag: str) -> list[str]:
    tag = (tag or "").strip().replace("-", "_")
    if not tag:
        return []
    try:
        parsed = Locale.parse(tag)
    except (UnknownLocaleError, ValueError, TypeError):
        language = tag.split("_")[0].lower()
        return [language] if language.isalpha() else []
    full = str(parsed)
    return [full, parsed.language] if full != parsed.language else [full]


def template_names(roots: Iterable[Root]) -> dict[str, set[str]]:
    """Every mail template (not ``_`` pieces) in ``roots``, with the locales it exists in."""
    found: dict[str, set[str]] = {}
    for root in roots:
        if not root.path.is_dir():
            continue
        for locale_dir in sorted(p for p in root.path.iterdir() if p.is_dir()):
            for path in locale_dir.iterdir():
                name = _template_name(path.name)
                if name:
                    found.setdefault(name, set()).add(locale_dir.name)
    return found


def _template_name(filename: str) -> str:
    if filename.startswith("_"):
        return ""
    for suffix in PARTS.values():  # ".subject.txt" is checked before ".txt"
        if filename.endswith(suffix):
            return filename.removesuffix(suffix)
    return ""


def resolve(roots: Sequence[Root], template: str, chain: Sequence[str]) -> Resolved:
    """The first locale of ``chain`` that has ``template``; each part from the first root that has it."""
    if not _NAME.match(template):
        raise TemplateError(f"{template!r} is not a template name (letters, digits, '_' and '-')")
    for locale in chain:
        candidates = [root.path / locale / f"{template}{suffix}" for root in roots for suffix in PARTS.values()]
        if not any(path.is_file() for path in candidates):
            continue
        files, sources = {}, {}
        for part, suffix in PARTS.items():
            winner = next((r for r in roots if (r.path / locale / f"{template}{suffix}").is_file()), None)
            if winner is None:
                where = ", ".join(str(r.path / locale) for r in roots)
                raise TemplateError(f"template {template!r} in {locale!r} has no {template}{suffix} (in {where})")
            files[part], sources[part] = winner.path / locale / f"{template}{suffix}", winner.source
        return Resolved(template, locale, files, sources)
    where = ", ".join(str(r.path) for r in roots)
    raise TemplateError(f"no template {template!r} for locales {', '.join(chain)} (looked in {where})")


# -- rendering --------------------------------------------------------------------------


def environment(roots: Sequence[Root], chain: Sequence[str], format_locale: str, timezone: str) -> jinja2.Environment:
    """Jinja for one mail: search ``chain``'s locale folders root by root; HTML autoescaped;
    unknown variables are errors; ``money``, ``date``, ``datetime``, ``duration`` (``24|duration("month")``:
    "24 meses", "1 месец", Babel's units) and ``plural`` format for the reader; ``localized`` picks
    a per-locale setting's entry for the mail's language."""
    search = [str(root.path / locale) for locale in chain for root in roots]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    zone = ZoneInfo(timezone)
    env.filters["localized"] = lambda value: localized(value, chain)
    env.filters["duration"] = lambda value, unit="month": format_unit(
        value, f"duration-{unit}", length="long", locale=format_locale
    )
    env.filters["plural"] = lambda forms, count: plural(forms, count, format_locale)
    env.filters["money"] = lambda value, currency=None: format_money(value, format_locale, currency)
    env.filters["date"] = lambda value, format="long": format_date(_local(value, zone), format, locale=format_locale)
    env.filters["datetime"] = lambda value, format="medium": format_datetime(
        _aware(value), format, tzinfo=zone, locale=format_locale
    )
    return env


def localized(value: Any, chain: Sequence[str]) -> Any:
    """A setting that holds prose, in the mail's language: ``{en = [...], es = [...]}`` gives the
    entry of the first locale of ``chain`` it has (``es_ES`` then ``es`` ... ``en``), else its first
    entry; anything else (a plain list: the same for every language) is returned as it is."""
    if not isinstance(value, Mapping):
        return value
    by_locale = {str(key).replace("-", "_").lower(): entry for key, entry in value.items()}
    for locale in chain:
        if locale.lower() in by_locale:
            return by_locale[locale.lower()]
    return next(iter(by_locale.values()), [])


def plural(forms: Mapping[str, str], count: int, locale: str) -> str:
    """``{"one": "{n} día", "other": "{n} días"}|plural(n)``: the form the language's CLDR plural
    rules give ``count`` (``one``, ``few``, ``many``, ``other``...), ``other`` when it lacks that one."""
    form = Locale.parse(locale).plural_form(count)
    return str(forms.get(form, forms["other"])).replace("{n}", str(count))


def format_money(value: Any, locale: str, currency: str | None = None) -> str:
    """A :class:`Money`, ``{"amount": "19.99", "currency": "EUR"}``, or an amount plus ``currency``."""
    if isinstance(value, Money):
        amount, code = value.amount, value.currency
    elif isinstance(value, Mapping):
        amount, code = Money.parse(value["amount"], value["currency"]).amount, str(value["currency"]).upper()
    else:
        if currency is None:
            raise ValueError(f"money filter: {value!r} needs a currency: {{{{ amount|money('EUR') }}}}")
        amount, code = Money.parse(value, currency).amount, currency.upper()
    return format_currency(amount, code, locale=locale)


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise TypeError(f"expected a date-time, got {value!r}")


def _local(value: Any, zone: ZoneInfo) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    return _aware(value).astimezone(zone).date()


def format_locale_for(requested: str, chosen: str) -> str:
    """Numbers and dates follow the text's language, as precisely as the request says:
    an ``es_ES`` reader of the ``es`` template gets Spain's formats."""
    for candidate in _candidates(requested):
        if candidate == chosen or candidate.startswith(chosen + "_"):
            return candidate
    return chosen


def render_email(
    app: App,
    shop_id: str,
    template: str,
    *,
    locale: str,
    context: Mapping[str, Any],
    plugin: str = "",
) -> RenderedEmail:
    """Render the three parts of ``template`` for the reader's ``locale`` (with fallbacks)."""
    shop = app.shop(shop_id).profile
    roots = template_roots(app, shop_id, plugin)
    chain = locale_chain(locale, shop.locale)
    resolved = resolve(roots, template, chain)
    return render_resolved(roots, chain, resolved, locale, shop.timezone, context)


def render_resolved(
    roots: Sequence[Root],
    chain: Sequence[str],
    resolved: Resolved,
    requested_locale: str,
    timezone: str,
    context: Mapping[str, Any],
) -> RenderedEmail:
    chain = list(chain[chain.index(resolved.locale) :])
    env = environment(roots, chain, format_locale_for(requested_locale, resolved.locale), timezone)
    variables = {**context, "locale": resolved.locale}
    parts = {}
    for part, suffix in PARTS.items():
        name = f"{resolved.template}{suffix}"
        try:
            parts[part] = env.get_template(name).render(variables)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename}:{exc.lineno}: syntax error: {exc.message}") from exc
        except Exception as exc:  # UndefinedError, a filter given the wrong type...
            raise TemplateError(f"{_where(exc, resolved.files[part])}: {type(exc).__name__}: {exc}") from exc
    return RenderedEmail(
        template=resolved.template,
        locale=resolved.locale,
        subject=" ".join(parts["subject"].split()),
        text=parts["text"].strip() + "\n",
        html=parts["html"],
        files=resolved.files,
    )


def _where(exc: BaseException, default: Path) -> str:
    """The template file and line an error was raised from (Jinja maps its frames back to them)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith((".html", ".txt")) and Path(frame.filename).is_file():
            return f"{frame.filename}:{frame.lineno}"
    return str(default)


# -- what a template sees --------------------------------------------------------------


def default_context(order: Order | None, shop: ShopProfile) -> dict[str, Any]:
    """What every template can use: the shop, and the order with its customer, lines and parcels.

    The one place the order becomes template variables: the channel and
    ``aftercare preview`` both call it. Money stays :class:`Money` (format it
    with ``|money``), times stay aware datetimes (``|date``, ``|datetime``).
    """
    context: dict[str, Any] = {
        "shop": {"id": shop.id, "name": shop.name or shop.id, "locale": shop.locale, "timezone": shop.timezone}
    }
    if order is None:
        return context
    customer = order.customer
    context["customer"] = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "name": customer.name,
        "email": customer.email,
    }
    context["order"] = {
        "id": order.platform_id,
        "number": order.number,
        "created_at": order.created_at,
        "total": order.total,
        "subtotal": order.subtotal,
        "currency": order.currency,
        "lines": [
            {
                "title": line.title,
                "quantity": line.quantity,
                "sku": line.sku,
                "unit_price": line.unit_price,
                "total": Money(line.unit_price.amount * line.quantity, line.unit_price.currency),
            }
            for line in order.lines
        ],
        "shipments": [
            {
                "carrier": s.carrier,
                "tracking_number": s.tracking_number,
                "tracking_url": s.tracking_url,
                "status": s.status.value,
                "shipped_at": s.shipped_at,
                "delivered_at": s.delivered_at,
            }
            for s in order.shipments
        ],
    }
    return context


def mail_context(
    base: Mapping[str, Any],
    plugin_context: Mapping[str, Any],
    *,
    transactional: bool,
    unsubscribe_url: str | None,
    brand: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The plugin's variables over the defaults; the mail's own (unsubscribe link, the shop's
    ``brand``, see :mod:`aftercare.mail.brand`) over both."""
    if brand is None:
        brand = brand_context(BrandSettings(), base.get("shop", {}).get("name", ""))
    return {
        **base,
        **plugin_context,
        "transactional": transactional,
        "unsubscribe_url": unsubscribe_url,
        "brand": brand,
    }


#: The brand ``check_templates`` renders with: every optional part set, so each branch of a layout runs.
SAMPLE_BRAND = BrandSettings(
    logo_url="https://shop.example/logo.png",
    accent_color="#1d4ed8",
    shop_url="https://shop.example",
    postal_address="Sample Shop Ltd\n1 Sample Street\n00000 Sample Town",
    support_email="help@shop.example",
    support_url="https://shop.example/help",
)


def samples(roots: Sequence[Root], template: str) -> dict[str, Any]:
    """Sample plugin variables for ``template`` from the roots' ``samples.json`` (first root wins)."""
    merged: dict[str, Any] = {}
    for root in reversed(roots):
        path = root.path / SAMPLES_FILE
        if path.is_file():
            merged.update(json.loads(path.read_text(encoding="utf-8")).get(template, {}))
    return merged


def sample_order(shop: ShopProfile) -> Order:
    """A believable order for checks and previews without a real one."""
    created = datetime(2026, 3, 14, 10, 30, tzinfo=UTC)
    return Order(
        platform=shop.platform,
        shop_id=shop.id,
        platform_id="sample-1001",
        number="1001",
        created_at=created,
        updated_at=created,
        customer=Customer(email="ana@example.com", first_name="Ana", last_name="García", locale=shop.locale),
        total=Money(Decimal("59.90"), "EUR"),
        subtotal=Money(Decimal("54.90"), "EUR"),
        financial_status=FinancialStatus.PAID,
        lines=(LineItem("line-1", "Espresso cups", 2, Money(Decimal("27.45"), "EUR"), sku="CUP-2"),),
        shipments=(
            Shipment(
                "ship-1",
                "DHL",
                "JJD000390007",
                "https://www.dhl.com/track?JJD000390007",
                ShipmentStatus.DELIVERED,
                shipped_at=created + timedelta(days=1),
                delivered_at=created + timedelta(days=3),
            ),
        ),
        locale=shop.locale,
    )


# -- checking and listing ----------------------------------------------------------------


def check_templates(app: App) -> list[str]:
    """Every problem in every template a shop can send, one line each, ``path:line: problem``.

    Syntax errors come from parsing every file; unknown variables from
    rendering each template in each locale with the sample order and the
    ``samples.json`` variables, as marketing and as transactional mail, with a
    brand that has every optional part set. ``aftercare check`` adds the
    brand's own problems (:func:`aftercare.mail.brand.brand_problems`).
    """
    profiles = [(shop.profile, shop.id) for shop in app.shops.values()] or [(ShopProfile("example", "none"), None)]
    return _check(app, [(profile, functools.partial(template_roots, app, shop_id)) for profile, shop_id in profiles])


def check_bundle_templates(app: App, bundle: Bundle) -> list[str]:
    """:func:`check_templates` for a bundle on its own: its folder above the plugins' and built-in ones,
    and its ``[mail.brand] css`` file, which must be readable."""

    def roots(plugin: str = "") -> list[Root]:
        return [bundle_root(bundle), *template_roots(app, None, plugin)]

    problems = []
    css = bundle.mail.brand.css
    if css and not Path(css).is_file():
        problems.append(f"{bundle.label}: mail.brand.css: no such file {css}")
    if not bundle.templates.is_dir():
        return problems
    return problems + _check(app, [(ShopProfile(bundle.name, "none", name=bundle.name), roots)])


def _check(app: App, shops: Sequence[tuple[ShopProfile, Callable[..., list[Root]]]]) -> list[str]:
    problems: list[str] = []
    for profile, roots_for in shops:
        for plugin, roots in _root_sets(app, roots_for):
            problems.extend(_syntax_problems(roots))
            for template, locales in sorted(_owned_names(app, plugin, roots).items()):
                if FALLBACK_LOCALE not in locales:
                    problems.append(f"{roots[-1].path}: template {template!r} has no {FALLBACK_LOCALE!r} version")
                for locale in sorted(locales):
                    problems.extend(_render_problems(roots, template, locale, profile))
    return list(dict.fromkeys(problems))


def _root_sets(app: App, roots_for: Callable[..., list[Root]]) -> list[tuple[str, list[Root]]]:
    return [("", roots_for())] + [(name, roots_for(name)) for name in plugins_with_templates(app)]


def _owned_names(app: App, plugin: str, roots: Sequence[Root]) -> dict[str, set[str]]:
    """Templates a plugin ships (or, for ``""``, every other one these roots hold)."""
    if plugin:
        own = template_names([r for r in roots if r.source == f"plugin {plugin}"])
        return {name: locales for name, locales in template_names(roots).items() if name in own}
    plugin_owned: set[str] = set()
    for name in plugins_with_templates(app):
        folder = plugin_templates(app, name)
        assert folder is not None
        plugin_owned |= set(template_names([Root(folder, name)]))
    return {name: locales for name, locales in template_names(roots).items() if name not in plugin_owned}


def _syntax_problems(roots: Sequence[Root]) -> list[str]:
    env = jinja2.Environment()
    problems = []
    for root in roots:
        if not root.path.is_dir():
            if root.source != "built-in":
                problems.append(f"{root.path}: templates folder ({root.source}) does not exist")
            continue
        for path in sorted(root.path.glob("*/*")):
            if not path.name.endswith((".html", ".txt", ".sms")):  # .sms: a text's body (mail/sms.py)
                continue
            try:
                env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
            except jinja2.TemplateSyntaxError as exc:
                problems.append(f"{path}:{exc.lineno}: syntax error: {exc.message}")
            except UnicodeDecodeError:
                problems.append(f"{path}: not UTF-8 text")
    return problems


def _render_problems(roots: Sequence[Root], template: str, locale: str, shop: ShopProfile) -> list[str]:
    chain = locale_chain(locale, shop.locale)
    try:
        resolved = resolve(roots, template, chain)
    except TemplateError as exc:
        return [str(exc)]
    base = default_context(sample_order(shop), shop)
    extra = samples(roots, template)
    problems = []
    for transactional in (False, True):
        url = None if transactional else f"https://shop.example/unsubscribe/sample-token-for-{template}"
        brand = brand_context(SAMPLE_BRAND, shop.name or shop.id)
        context = mail_context(base, extra, transactional=transactional, unsubscribe_url=url, brand=brand)
        try:
            render_resolved(roots, chain, resolved, locale, shop.timezone, context)
        except TemplateError as exc:
            problems.append(str(exc))
    return problems


def list_templates(app: App, shop_id: str | None = None) -> list[dict[str, Any]]:
    """For each shop, template and locale: which file wins for each part, and from where."""
    rows = []
    for shop in app.shops.values():
        if shop_id and shop.id != shop_id:
            continue
        for plugin, roots in _root_sets(app, functools.partial(template_roots, app, shop.id)):
            for template, locales in sorted(_owned_names(app, plugin, roots).items()):
                wanted = sorted(set(locales) | {FALLBACK_LOCALE} | set(_candidates(shop.profile.locale)[-1:]))
                for locale in wanted:
                    row: dict[str, Any] = {"shop": shop.id, "plugin": plugin, "template": template, "locale": locale}
                    try:
                        resolved = resolve(roots, template, locale_chain(locale, shop.profile.locale))
                    except TemplateError as exc:
                        rows.append({**row, "used_locale": "", "parts": {}, "problem": str(exc)})
                        continue
                    parts = {
                        part: {"path": str(resolved.files[part]), "source": resolved.sources[part]} for part in PARTS
                    }
                    rows.append({**row, "used_locale": resolved.locale, "parts": parts, "problem": ""})
    return rows
