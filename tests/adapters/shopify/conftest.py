import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from aftercare.adapters.shopify import ShopifyAdapter, ShopifySettings
from aftercare.clock import ManualClock
from aftercare.platform import MemoryShopState, ShopInfo

from .shopify_support import NOW, SECRET, SHOP_DOMAIN


@pytest.fixture
def shopify_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "shopify"


@pytest.fixture
def load(shopify_dir):
    def _load(name: str):
        return json.loads((shopify_dir / name).read_text())

    return _load


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_adapter(sleeps):
    def _make(**settings) -> ShopifyAdapter:
        clock = ManualClock(NOW)
        return ShopifyAdapter(
            ShopInfo(id="acme", webhook_secret=SecretStr(SECRET)),
            ShopifySettings(
                shop_domain=SHOP_DOMAIN, access_token=SecretStr("shpat_test"), **settings
            ),
            MemoryShopState(),
            clock.now,
            sleep=sleeps.append,
        )

    return _make


@pytest.fixture
def adapter(make_adapter) -> ShopifyAdapter:
    return make_adapter()
