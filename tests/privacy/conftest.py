"""The end-to-end deployment of tests/e2e (sandbox shops, the real receiver and worker), and a bare
store on SQLite and on PostgreSQL (a schema of its own per test), for privacy tests."""


import pytest

from aftercare.clock import ManualClock
from aftercare.store import Store
from aftercare.testing import START

from ..core.test_store import postgres_schema
from ..e2e.conftest import deploy, hours  # noqa: F401 - fixtures used by the tests here


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}", ManualClock(START))
        s.upgrade()
        yield s
        s.close()
        return
    with postgres_schema() as (_, url):
        s = Store(url, ManualClock(START))
        s.upgrade()
        yield s
        s.close()
