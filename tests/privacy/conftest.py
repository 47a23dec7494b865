"""The end-to-end deployment of tests/e2e (sandbox shops, the real receiver and worker), for privacy tests."""

from ..e2e.conftest import deploy, hours  # noqa: F401 - fixtures used by the tests here
