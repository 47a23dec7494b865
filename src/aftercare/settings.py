"""The base of every plugin's settings model.

A plugin declares ``Settings`` (a subclass of :class:`PluginSettings`) at
module level. Defaults live in the model; the merchant tunes them under
``[plugins.<name>]`` and per shop under ``[shops.plugins.<name>]``. Unknown
keys are errors, so a typo is reported with its TOML path instead of being
silently ignored. Mark secrets with pydantic's ``SecretStr``: they are never
printed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from aftercare.models import LineItem


class PluginSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Turn the plugin on or off, globally or for one shop.
    enabled: bool = True

    def longest_delay(self) -> timedelta:
        """The longest these settings let the plugin wait after an event before it acts.

        A delayed action re-reads its order when it falls due, and Shopify lets an app
        read orders older than 60 days only with ``read_all_orders``, so ``check --live``
        asks for that scope when an enabled plugin may wait longer. Override it in a
        plugin whose delays can pass 60 days.
        """
        return timedelta(0)


class ProductGroup(BaseModel):
    """Products a plugin treats alike (tips for coffee makers, a 24-month warranty),
    matched by SKU (case-insensitive), product id, or a keyword in the line's title.

    Subclass it for a plugin's groups and add the group's own settings::

        class Tips(ProductGroup):
            template: str = ""

        class Settings(PluginSettings):
            groups: dict[str, Tips] = {}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    skus: list[str] = []
    product_ids: list[str] = []
    title_keywords: list[str] = []

    @model_validator(mode="after")
    def _matches_something(self) -> ProductGroup:
        if not (self.skus or self.product_ids or self.title_keywords):
            raise ValueError("a group needs at least one of skus, product_ids or title_keywords")
        return self

    def matches(self, line: LineItem) -> bool:
        if line.sku and line.sku.strip().casefold() in {s.strip().casefold() for s in self.skus}:
            return True
        if line.product_id and line.product_id in self.product_ids:
            return True
        title = line.title.casefold()
        return any(word.strip() and word.strip().casefold() in title for word in self.title_keywords)


G = TypeVar("G", bound=ProductGroup)


def matched_groups(groups: Mapping[str, G], lines: Sequence[LineItem]) -> list[tuple[str, G, list[LineItem]]]:
    """Each group that matches some of ``lines``, with those lines, in the groups' order."""
    matched = []
    for name, group in groups.items():
        mine = [line for line in lines if group.matches(line)]
        if mine:
            matched.append((name, group, mine))
    return matched


def _locale_keys(value: list[str] | dict[str, list[str]]) -> list[str] | dict[str, list[str]]:
    """A per-language table's keys must be locales: ``espanol`` would never be picked."""
    if isinstance(value, dict):
        from babel import Locale, UnknownLocaleError

        for key in value:
            try:
                Locale.parse(key.replace("-", "_"))
            except (UnknownLocaleError, ValueError, TypeError):
                raise ValueError(f"{key!r} is not a locale (en, es, es-ES, bg ...)") from None
    return value


#: A setting that holds prose the customer reads: one list of lines for every language, or a
#: table of lists by locale (``{ en = [...], es = [...] }``). Templates pick the mail's language
#: with the ``localized`` filter (docs/mail.md).
LocalizedLines = Annotated[list[str] | dict[str, list[str]], AfterValidator(_locale_keys)]
