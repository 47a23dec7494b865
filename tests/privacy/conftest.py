"""The end-to-end deployment of tests/e2e (sandbox shops, the real receiver and worker), and a bare
store on SQLite and on PostgreSQL (a schema of its own per test), for privacy tests."""

import uuid

import pytest
import sqlalchemy as sa

from aftercare.clock import ManualClock
from aftercare.store import Store
from aftercare.testing import START

from ..core.test_store import POSTGRES, postgres_or_skip
from ..e2e.conftest import deploy, hours  # noqa: F401 - fixtures used by the tests here


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}", ManualClock(START))
        s.upgrade()
        yield s
        s.close()
        return
    postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    s = Store(f"{POSTGRES}?options=-csearch_path%3D{schema}", ManualClock(START))
    s.upgrade()
    yield s
    s.close()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
