"""The compatibility suites run against the same live server fixtures as the end-to-end tests."""

from tests.e2e.conftest import events, import_root, personalize, runtime, server  # noqa: F401
